#include "toolbox/cuda_utils.h"
#include "toolbox/philox.h"

namespace toolbox {
namespace {

__global__ void philox_uniform_kernel(uint64_t seed, uint32_t stream, uint64_t a0, uint64_t b, int64_t n,
                                      double* out) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (4 * i >= n) return;
  double u[4];
  philox_uniform4(seed, stream, a0 + static_cast<uint64_t>(i), b, u);
  for (int k = 0; k < 4 && 4 * i + k < n; ++k) out[4 * i + k] = u[k];
}

}  // namespace

void philox_uniform_cuda(uint64_t seed, uint32_t stream, uint64_t a0, uint64_t b, int64_t n, uintptr_t out,
                         uintptr_t cuda_stream) {
  if (n == 0) return;
  const int64_t groups = (n + 3) / 4;
  const int threads = 256;
  const unsigned blocks = static_cast<unsigned>((groups + threads - 1) / threads);
  philox_uniform_kernel<<<blocks, threads, 0, as_stream(cuda_stream)>>>(seed, stream, a0, b, n,
                                                                        reinterpret_cast<double*>(out));
  check_launch("philox_uniform_cuda");
}

}  // namespace toolbox
