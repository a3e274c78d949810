// The rejection epilogue on the GPU: three tiny launches on the caller's stream, mirroring entrocraft_cpu.cpp.
//   1. sums: grid-stride over tokens, atomicAdd (double) of H into the per-sequence / total accumulators;
//   2. finalize: one block reduces to the batch entropy and writes H and the mode m;
//   3. accept: one thread per sequence reads m, writes accept_i = (m * A_i >= 0) and counts kept per group.
#include <algorithm>

#include "toolbox/cuda_utils.h"
#include "toolbox/entrocraft.h"

namespace toolbox {
namespace {

constexpr int kThreads = 256;

__global__ void sums_kernel(const float* __restrict__ h, const int64_t* __restrict__ seq, int64_t tokens,
                            int64_t seqs, bool seq_mean, double* ws) {
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < tokens; t += int64_t(gridDim.x) * blockDim.x) {
    const double v = h[t];
    if (seq_mean) {
      atomicAdd(ws + seq[t], v);
      atomicAdd(ws + seqs + seq[t], 1.0);
    } else {
      atomicAdd(ws + 2 * seqs, v);
    }
  }
}

__global__ void __launch_bounds__(kThreads) finalize_kernel(const double* ws, int64_t tokens, int64_t seqs,
                                                            bool seq_mean, float h_low, float h_high,
                                                            double* entropy, int32_t* mode) {
  __shared__ double total[kThreads], nonempty[kThreads];
  double t_sum = 0.0, t_cnt = 0.0;
  if (seq_mean) {
    for (int64_t s = threadIdx.x; s < seqs; s += kThreads) {
      const double c = ws[seqs + s];
      if (c > 0.0) {
        t_sum += ws[s] / c;
        t_cnt += 1.0;
      }
    }
  }
  total[threadIdx.x] = t_sum;
  nonempty[threadIdx.x] = t_cnt;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) {
      total[threadIdx.x] += total[threadIdx.x + stride];
      nonempty[threadIdx.x] += nonempty[threadIdx.x + stride];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    double h;
    if (seq_mean) {
      h = nonempty[0] > 0.0 ? total[0] / nonempty[0] : 0.0;
    } else {
      h = tokens > 0 ? ws[2 * seqs] / static_cast<double>(tokens) : 0.0;
    }
    *entropy = h;
    *mode = static_cast<int32_t>(h > h_high) - static_cast<int32_t>(h < h_low);
  }
}

__global__ void accept_kernel(const float* __restrict__ adv, const int64_t* __restrict__ group_ids, int64_t seqs,
                              const int32_t* mode, uint8_t* accept, unsigned long long* kept_per_group) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= seqs) return;
  const bool keep = static_cast<float>(*mode) * adv[i] >= 0.0f;
  accept[i] = keep ? 1 : 0;
  if (keep && group_ids != nullptr) atomicAdd(kept_per_group + group_ids[i], 1ULL);
}

}  // namespace

void rejection_epilogue_cuda(uintptr_t token_entropy, uintptr_t token_seq, int64_t tokens, uintptr_t advantages,
                             uintptr_t group_ids, int64_t seqs, int64_t groups, bool seq_mean, float h_low,
                             float h_high, uintptr_t workspace, uintptr_t accept, uintptr_t kept_per_group,
                             uintptr_t entropy, uintptr_t mode, uintptr_t stream) {
  (void)groups;
  cudaStream_t s = as_stream(stream);
  double* ws = reinterpret_cast<double*>(workspace);
  if (tokens > 0) {
    const int64_t blocks = std::min<int64_t>((tokens + kThreads - 1) / kThreads, 1024);
    sums_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, s>>>(
        reinterpret_cast<const float*>(token_entropy), reinterpret_cast<const int64_t*>(token_seq), tokens, seqs,
        seq_mean, ws);
    check_launch("rejection_epilogue sums");
  }
  finalize_kernel<<<1, kThreads, 0, s>>>(ws, tokens, seqs, seq_mean, h_low, h_high,
                                         reinterpret_cast<double*>(entropy), reinterpret_cast<int32_t*>(mode));
  check_launch("rejection_epilogue finalize");
  if (seqs > 0) {
    accept_kernel<<<static_cast<unsigned>((seqs + kThreads - 1) / kThreads), kThreads, 0, s>>>(
        reinterpret_cast<const float*>(advantages), reinterpret_cast<const int64_t*>(group_ids), seqs,
        reinterpret_cast<const int32_t*>(mode), reinterpret_cast<uint8_t*>(accept),
        reinterpret_cast<unsigned long long*>(kept_per_group));
    check_launch("rejection_epilogue accept");
  }
}

}  // namespace toolbox
