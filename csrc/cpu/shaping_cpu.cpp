// Backward induction and policy evaluation on the CPU: the batch of MDPs is split over threads, one MDP per thread.
#include <algorithm>
#include <cmath>
#include <cstring>
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

typedef double vec4d __attribute__((vector_size(32)));

inline vec4d load4(const double* p) {
  vec4d v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// q[r] = R[r] + sum_t P[r, t] v[t] for NR consecutive rows (row length S): four-lane partial sums per row, each
// load of v serving all NR rows; the lanes are added pairwise, then the S mod 4 tail.
template <int NR>
inline void bellman_rows(const double* R, const double* P, const double* v, int64_t S, double* q) {
  const int64_t S4 = S - S % 4;
  vec4d acc[NR] = {};
  for (int64_t t = 0; t < S4; t += 4) {
    const vec4d vt = load4(v + t);
    for (int r = 0; r < NR; ++r) acc[r] += load4(P + r * S + t) * vt;
  }
  for (int r = 0; r < NR; ++r) {
    double sum = (acc[r][0] + acc[r][1]) + (acc[r][2] + acc[r][3]);
    for (int64_t t = S4; t < S; ++t) sum += P[r * S + t] * v[t];
    q[r] = R[r] + sum;
  }
}

// Q_h(s, .) = R(s, .) + P(.|s, .) V_{h+1} for all (s, a): the matrix-vector product [S A, S] x [S] both recursions
// share, four rows at a time (AVX-512 / AVX2 clones; flatten keeps the vectors inside one clone).
__attribute__((flatten, target_clones("avx512f", "avx2", "default"))) void bellman_q(
    const double* R, const double* P, const double* v_next, int64_t S, int64_t A, double* q) {
  int64_t sa = 0;
  for (; sa + 4 <= S * A; sa += 4) bellman_rows<4>(R + sa, P + sa * S, v_next, S, q + sa);
  for (; sa < S * A; ++sa) bellman_rows<1>(R + sa, P + sa * S, v_next, S, q + sa);
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

// MDPs per thread for steps [bottom, top): at least about 2^18 multiply-adds each, so that a small batch runs
// inline rather than paying for thread starts (tens of microseconds, milliseconds on a loaded machine).
int64_t batch_grain(int64_t S, int64_t A, int64_t steps) {
  return std::max<int64_t>(1, (int64_t{1} << 18) / std::max<int64_t>(1, S * A * S * steps));
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
    parallel_for(batch, batch_grain(S, A, top - bottom), [&](int64_t begin, int64_t end) {
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
    parallel_for(batch, batch_grain(S, A, top - bottom), [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b)
        solve_steps(R + b * S * A, P + b * S * A * S, log_prior, S, A, top, bottom, temperature, Q + b * H * S * A,
                    V + b * (H + 1) * S);
    });
  });
}

}  // namespace toolbox
