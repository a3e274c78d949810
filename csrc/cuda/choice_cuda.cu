// CUDA kernel of the batched exact misspecification effects: one thread per trial (grid-stride), the same
// choice_trial_effects routine as the C++ kernel; the per-trial log-partition workspace lives in global memory.
#include <algorithm>

#include "toolbox/choice.h"
#include "toolbox/cuda_utils.h"

namespace toolbox {
namespace {

constexpr int kThreads = 128;

__global__ void __launch_bounds__(kThreads) effects_kernel(const ChoiceEffectsArgs a) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < a.trials; t += stride)
    choice_trial_effects(a, t);
}

}  // namespace

void choice_effects_cuda(const ChoiceEffectsArgs& args, uintptr_t stream) {
  if (args.trials == 0) return;
  int device = 0, sms = 0;
  check_cuda(cudaGetDevice(&device), "choice_effects_cuda: cudaGetDevice");
  check_cuda(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "choice_effects_cuda: SM count");
  const int64_t needed = (args.trials + kThreads - 1) / kThreads;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(needed, static_cast<int64_t>(sms) * 8));
  effects_kernel<<<blocks, kThreads, 0, as_stream(stream)>>>(args);
  check_launch("choice_effects_cuda");
}

}  // namespace toolbox
