// One thread per particle running the shared langevin_particle routine (toolbox/diffusion.h) over all steps.
#include "toolbox/cuda_utils.h"
#include "toolbox/diffusion.h"

namespace toolbox {
namespace {

constexpr int kThreads = 128;

template <int DIM>
__global__ void __launch_bounds__(kThreads) langevin_kernel(GmmParams g, LangevinParams p, int64_t n, double* x,
                                                            double* work, double* heat, double* heat_discrete,
                                                            double* logp_start, double* logp_end,
                                                            double* snapshots) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const int64_t d = g.dim;
  langevin_particle<DIM>(g, p, i, x + i * d, DIM > 0 ? nullptr : work + i * 4 * d, heat + i, heat_discrete + i,
                         logp_start + i, logp_end + i, snapshots);
}

template <int DIM>
void launch(const GmmParams& g, const LangevinParams& p, int64_t n, double* x, double* work, double* heat,
            double* heat_discrete, double* logp_start, double* logp_end, double* snapshots, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>((n + kThreads - 1) / kThreads);
  langevin_kernel<DIM><<<blocks, kThreads, 0, stream>>>(g, p, n, x, work, heat, heat_discrete, logp_start, logp_end,
                                                        snapshots);
}

__global__ void __launch_bounds__(kThreads) external_step_kernel(LangevinParams p, int64_t n, int64_t d, int64_t step,
                                                                 bool move, double* x, const double* f, double* dx,
                                                                 double* heat) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  langevin_external_step(p, i, d, step, move, x + i * d, f + i * d, dx + i * d, heat + i);
}

}  // namespace

void langevin_external_step_cuda(const LangevinParams& p, int64_t n, int64_t d, int64_t step, bool move,
                                 uintptr_t x, uintptr_t f, uintptr_t dx, uintptr_t heat, uintptr_t stream) {
  if (n == 0) return;
  const unsigned blocks = static_cast<unsigned>((n + kThreads - 1) / kThreads);
  external_step_kernel<<<blocks, kThreads, 0, as_stream(stream)>>>(
      p, n, d, step, move, reinterpret_cast<double*>(x), reinterpret_cast<const double*>(f),
      reinterpret_cast<double*>(dx), reinterpret_cast<double*>(heat));
  check_launch("langevin_external_step_cuda");
}

void langevin_cuda(uintptr_t means, uintptr_t log_weights, uintptr_t variances, int64_t components, int64_t dim,
                   const LangevinParams& p, int64_t n, uintptr_t x, uintptr_t work, uintptr_t heat,
                   uintptr_t heat_discrete, uintptr_t logp_start, uintptr_t logp_end, uintptr_t snapshots,
                   uintptr_t stream) {
  if (n == 0) return;
  const GmmParams g{reinterpret_cast<const double*>(means), reinterpret_cast<const double*>(log_weights),
                    reinterpret_cast<const double*>(variances), components, dim};
  auto* xs = reinterpret_cast<double*>(x);
  auto* ws = reinterpret_cast<double*>(work);
  auto* h = reinterpret_cast<double*>(heat);
  auto* hd = reinterpret_cast<double*>(heat_discrete);
  auto* l0 = reinterpret_cast<double*>(logp_start);
  auto* l1 = reinterpret_cast<double*>(logp_end);
  auto* snap = reinterpret_cast<double*>(snapshots);
  const cudaStream_t s = as_stream(stream);
  switch (dim) {
    case 1: launch<1>(g, p, n, xs, ws, h, hd, l0, l1, snap, s); break;
    case 2: launch<2>(g, p, n, xs, ws, h, hd, l0, l1, snap, s); break;
    case 3: launch<3>(g, p, n, xs, ws, h, hd, l0, l1, snap, s); break;
    case 4: launch<4>(g, p, n, xs, ws, h, hd, l0, l1, snap, s); break;
    default: launch<0>(g, p, n, xs, ws, h, hd, l0, l1, snap, s); break;
  }
  check_launch("langevin_cuda");
}

}  // namespace toolbox
