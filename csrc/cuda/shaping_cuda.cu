// Backward induction on the GPU, mirroring shaping_cpu.cpp: one block per MDP; per step the threads compute the
// S*A entries of Q_h (one dot product with V_{h+1} each), synchronise, then the S state values, and synchronise.
#include <cmath>

#include "toolbox/cuda_utils.h"
#include "toolbox/shaping.h"

namespace toolbox {
namespace {

constexpr int kThreads = 256;

__device__ double state_value(const double* q, const double* log_prior, int64_t actions, double temperature) {
  double m = -INFINITY;
  if (temperature == 0.0) {
    for (int64_t a = 0; a < actions; ++a) m = fmax(m, q[a]);
    return m;
  }
  for (int64_t a = 0; a < actions; ++a) m = fmax(m, log_prior[a] + q[a] / temperature);
  double sum = 0.0;
  for (int64_t a = 0; a < actions; ++a) sum += exp(log_prior[a] + q[a] / temperature - m);
  return temperature * (m + log(sum));
}

__global__ void __launch_bounds__(kThreads) backward_kernel(const double* __restrict__ R,
                                                            const double* __restrict__ P,
                                                            const double* __restrict__ log_prior, int64_t S,
                                                            int64_t A, int64_t H, double temperature, double* Q,
                                                            double* V) {
  const int64_t b = blockIdx.x;
  R += b * S * A;
  P += b * S * A * S;
  Q += b * H * S * A;
  V += b * (H + 1) * S;
  for (int64_t s = threadIdx.x; s < S; s += blockDim.x) V[H * S + s] = 0.0;
  __syncthreads();
  for (int64_t h = H - 1; h >= 0; --h) {
    const double* v_next = V + (h + 1) * S;
    double* q = Q + h * S * A;
    for (int64_t sa = threadIdx.x; sa < S * A; sa += blockDim.x) {
      const double* p = P + sa * S;
      double acc = 0.0;
      for (int64_t t = 0; t < S; ++t) acc += p[t] * v_next[t];
      q[sa] = R[sa] + acc;
    }
    __syncthreads();
    for (int64_t s = threadIdx.x; s < S; s += blockDim.x)
      V[h * S + s] = state_value(q + s * A, log_prior + s * A, A, temperature);
    __syncthreads();
  }
}

}  // namespace

void shaping_backward_induction_cuda(uintptr_t R, uintptr_t P, uintptr_t log_prior, int64_t batch, int64_t states,
                                     int64_t actions, int64_t horizon, double temperature, uintptr_t Q, uintptr_t V,
                                     uintptr_t stream) {
  if (batch == 0) return;
  backward_kernel<<<static_cast<unsigned>(batch), kThreads, 0, as_stream(stream)>>>(
      reinterpret_cast<const double*>(R), reinterpret_cast<const double*>(P),
      reinterpret_cast<const double*>(log_prior), states, actions, horizon, temperature,
      reinterpret_cast<double*>(Q), reinterpret_cast<double*>(V));
  check_launch("shaping_backward_induction_cuda");
}

}  // namespace toolbox
