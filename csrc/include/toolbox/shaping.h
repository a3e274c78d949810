// Finite-horizon soft (KL-regularised) / hard backward induction for a batch of tabular MDPs (shape-reward).
//   Q_h(s,a) = R(s,a) + sum_s' P(s'|s,a) V_{h+1}(s'),   V_H = 0,
//   V_h(s)   = T log sum_a exp(log_prior(s,a) + Q_h(s,a)/T)   (T > 0),   max_a Q_h(s,a)   (T = 0).
// Layouts (row-major, float64): R [B,S,A], P [B,S,A,S], log_prior [S,A], Q [B,H,S,A], V [B,H+1,S].
// The CPU versions run the horizon in chunks with `poll` (toolbox/interrupt.h) between them.
#pragma once
#include <cstdint>

#include "toolbox/interrupt.h"

namespace toolbox {

void shaping_backward_induction_cpu(const double* R, const double* P, const double* log_prior, int64_t batch,
                                    int64_t states, int64_t actions, int64_t horizon, double temperature, double* Q,
                                    double* V, const Poll& poll = nullptr);

// Value of a time-indexed policy [B,H,S,A] with the KL penalty T * KL(pi || pi0) per step (T = 0: plain return):
//   V_h(s) = sum_a pi_h(s,a) [Q_h(s,a) - T (log pi_h(s,a) - log_prior(s,a))],  0 log 0 = 0.   V: [B,H+1,S].
void shaping_policy_evaluation_cpu(const double* R, const double* P, const double* policy, const double* log_prior,
                                   int64_t batch, int64_t states, int64_t actions, int64_t horizon,
                                   double temperature, double* V, const Poll& poll = nullptr);

#if defined(TOOLBOX_WITH_CUDA)
// All pointers are device pointers; one block per MDP of the batch.
void shaping_backward_induction_cuda(uintptr_t R, uintptr_t P, uintptr_t log_prior, int64_t batch, int64_t states,
                                     int64_t actions, int64_t horizon, double temperature, uintptr_t Q, uintptr_t V,
                                     uintptr_t stream);
#endif

}  // namespace toolbox
