// CUDA gPoE fusion: one thread per test point (grid-stride), one pass over the M experts with the running sums in
// registers. Inputs are expert-major, so a warp's loads of one expert row are coalesced; the kernel is
// bandwidth-bound (8 M bytes read per point in float32). Same gpoe_accumulate / gpoe_finalize as the C++ kernel.
#include <algorithm>

#include "toolbox/cuda_utils.h"
#include "toolbox/gpoe.h"

namespace toolbox {
namespace {

constexpr int kThreads = 256;

template <int kWeight, class T>
__global__ void __launch_bounds__(kThreads) fuse_kernel(const GpoeFuseArgs<T> a) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t n = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; n < a.points; n += stride) {
    GpoeSums sums;
    for (int64_t i = 0; i < a.experts; ++i) {
      const int64_t at = i * a.points + n;
      T beta, precision, weighted_mean;
      gpoe_terms<kWeight>(__ldg(a.mean + at), __ldg(a.var + at),
                          __ldg(a.weight_prior + i * a.wp_stride_e + n * a.wp_stride_p), beta, precision,
                          weighted_mean);
      gpoe_add(sums, beta, precision, weighted_mean);
    }
    gpoe_write_point(a, n, sums);
  }
}

template <class T>
void launch(const GpoeFuseArgs<T>& a, uintptr_t stream) {
  if (a.points == 0) return;
  int device = 0, sms = 0;
  check_cuda(cudaGetDevice(&device), "gpoe_fuse_cuda: cudaGetDevice");
  check_cuda(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "gpoe_fuse_cuda: SM count");
  const int64_t needed = (a.points + kThreads - 1) / kThreads;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(needed, static_cast<int64_t>(sms) * 16));
  if (a.weight == kWeightEntropy) {
    fuse_kernel<kWeightEntropy, T><<<blocks, kThreads, 0, as_stream(stream)>>>(a);
  } else {
    fuse_kernel<kWeightOne, T><<<blocks, kThreads, 0, as_stream(stream)>>>(a);
  }
  check_launch("gpoe_fuse_cuda");
}

}  // namespace

void gpoe_fuse_cuda(const GpoeFuseArgs<float>& args, uintptr_t stream) { launch(args, stream); }
void gpoe_fuse_cuda(const GpoeFuseArgs<double>& args, uintptr_t stream) { launch(args, stream); }

}  // namespace toolbox
