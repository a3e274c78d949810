// Backward induction and policy evaluation on the CPU: the batch of MDPs is split over threads, one MDP per thread.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "toolbox/parallel.h"
#include "toolbox/shaping.h"

namespace toolbox {
namespace {

// V(s) from Q_h(s, .): T * logsumexp(log_prior + Q/T) (stable, max-shifted) or the hard max at T = 0.
double state_value(const double* q, const double* log_prior, int64_t actions, double temperature) {
  double m = -std::numeric_limits<double>::infinity();
  if (temperature == 0.0) {
    for (int64_t a = 0; a < actions; ++a) m = std::max(m, q[a]);
    return m;
  }
  for (int64_t a = 0; a < actions; ++a) m = std::max(m, log_prior[a] + q[a] / temperature);
  double sum = 0.0;
  for (int64_t a = 0; a < actions; ++a) sum += std::exp(log_prior[a] + q[a] / temperature - m);
  return temperature * (m + std::log(sum));
}

// Q_h(s, .) = R(s, .) + P(.|s, .) V_{h+1} for all (s, a): the one dot product per pair both recursions share.
void bellman_q(const double* R, const double* P, const double* v_next, int64_t S, int64_t A, double* q) {
  for (int64_t sa = 0; sa < S * A; ++sa) {
    const double* p = P + sa * S;
    double acc = 0.0;
    for (int64_t t = 0; t < S; ++t) acc += p[t] * v_next[t];
    q[sa] = R[sa] + acc;
  }
}

// Horizon steps per chunk: about 2^22 multiply-adds over the batch, at least one.
int64_t chunk_steps(int64_t batch, int64_t S, int64_t A) {
  return std::max<int64_t>(1, (int64_t{1} << 22) / std::max<int64_t>(1, batch * S * A * S));
}

// Steps h = top - 1 down to bottom of one MDP's backward induction; V[top] is known (V[H] = 0).
void solve_steps(const double* R, const double* P, const double* log_prior, int64_t S, int64_t A, int64_t top,
                 int64_t bottom, double temperature, double* Q, double* V) {
  for (int64_t h = top - 1; h >= bottom; --h) {
    double* q = Q + h * S * A;
    bellman_q(R, P, V + (h + 1) * S, S, A, q);
    for (int64_t s = 0; s < S; ++s) V[h * S + s] = state_value(q + s * A, log_prior + s * A, A, temperature);
  }
}

void evaluate_steps(const double* R, const double* P, const double* policy, const double* log_prior, int64_t S,
                    int64_t A, int64_t top, int64_t bottom, double temperature, double* q, double* V) {
  for (int64_t h = top - 1; h >= bottom; --h) {
    bellman_q(R, P, V + (h + 1) * S, S, A, q);
    const double* pi = policy + h * S * A;
    for (int64_t s = 0; s < S; ++s) {
      double v = 0.0;
      for (int64_t a = s * A; a < (s + 1) * A; ++a) {
        if (pi[a] <= 0.0) continue;
        v += pi[a] * (q[a] - (temperature > 0.0 ? temperature * (std::log(pi[a]) - log_prior[a]) : 0.0));
      }
      V[h * S + s] = v;
    }
  }
}

// Runs body(top, bottom) over the horizon in chunks from H down to 0, polling between chunks.
template <class Body>
void over_horizon(int64_t H, int64_t chunk, const Poll& poll, Body&& body) {
  for (int64_t top = H; top > 0; top -= chunk) {
    body(top, std::max<int64_t>(0, top - chunk));
    if (top > chunk && poll) poll();
  }
}

}  // namespace

void shaping_policy_evaluation_cpu(const double* R, const double* P, const double* policy, const double* log_prior,
                                   int64_t batch, int64_t states, int64_t actions, int64_t horizon,
                                   double temperature, double* V, const Poll& poll) {
  const int64_t S = states, A = actions, H = horizon;
  for (int64_t b = 0; b < batch; ++b) std::fill(V + b * (H + 1) * S + H * S, V + (b + 1) * (H + 1) * S, 0.0);
  over_horizon(H, chunk_steps(batch, S, A), poll, [&](int64_t top, int64_t bottom) {
    parallel_for(batch, 1, [&](int64_t begin, int64_t end) {
      std::vector<double> q(S * A);
      for (int64_t b = begin; b < end; ++b)
        evaluate_steps(R + b * S * A, P + b * S * A * S, policy + b * H * S * A, log_prior, S, A, top, bottom,
                       temperature, q.data(), V + b * (H + 1) * S);
    });
  });
}

void shaping_backward_induction_cpu(const double* R, const double* P, const double* log_prior, int64_t batch,
                                    int64_t states, int64_t actions, int64_t horizon, double temperature, double* Q,
                                    double* V, const Poll& poll) {
  const int64_t S = states, A = actions, H = horizon;
  for (int64_t b = 0; b < batch; ++b) std::fill(V + b * (H + 1) * S + H * S, V + (b + 1) * (H + 1) * S, 0.0);
  over_horizon(H, chunk_steps(batch, S, A), poll, [&](int64_t top, int64_t bottom) {
    parallel_for(batch, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b)
        solve_steps(R + b * S * A, P + b * S * A * S, log_prior, S, A, top, bottom, temperature, Q + b * H * S * A,
                    V + b * (H + 1) * S);
    });
  });
}

}  // namespace toolbox
