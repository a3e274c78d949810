// One block per row: each thread streams a strided slice of the row keeping an online (max, sum, weighted sum),
// then the block merges the triples. Nothing of size V is written in the forward pass.
#include <cuda_bf16.h>

#include <cfloat>

#include "toolbox/cuda_utils.h"
#include "toolbox/entropy.h"

namespace toolbox {
namespace {

constexpr int kThreads = 512;

__device__ __forceinline__ float load(const float* p, int64_t i) { return __ldg(p + i); }
__device__ __forceinline__ float load(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }

struct Online {
  float m, s, w;  // running max, sum exp(x - m), sum exp(x - m) * x
};

__device__ __forceinline__ Online merge(Online a, Online b) {
  if (b.m == -FLT_MAX) return a;
  if (a.m == -FLT_MAX) return b;
  const float m = fmaxf(a.m, b.m);
  const float ea = __expf(a.m - m), eb = __expf(b.m - m);
  return Online{m, a.s * ea + b.s * eb, a.w * ea + b.w * eb};
}

__device__ Online block_merge(Online v) {
  __shared__ Online warp_vals[kThreads / 32];
  for (int offset = 16; offset > 0; offset >>= 1) {
    Online o{__shfl_xor_sync(0xffffffffu, v.m, offset), __shfl_xor_sync(0xffffffffu, v.s, offset),
             __shfl_xor_sync(0xffffffffu, v.w, offset)};
    v = merge(v, o);
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) warp_vals[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kThreads / 32 ? warp_vals[lane] : Online{-FLT_MAX, 0.f, 0.f};
    for (int offset = 16; offset > 0; offset >>= 1) {
      Online o{__shfl_xor_sync(0xffffffffu, v.m, offset), __shfl_xor_sync(0xffffffffu, v.s, offset),
               __shfl_xor_sync(0xffffffffu, v.w, offset)};
      v = merge(v, o);
    }
    if (lane == 0) warp_vals[0] = v;
  }
  __syncthreads();
  return warp_vals[0];
}

template <class T>
__global__ void __launch_bounds__(kThreads) forward_kernel(const T* __restrict__ logits, const int64_t* labels,
                                                           int64_t vocab, float* entropy, float* logp, float* lse) {
  const int64_t row = blockIdx.x;
  const T* x = logits + row * vocab;
  Online acc{-FLT_MAX, 0.f, 0.f};
  for (int64_t j = threadIdx.x; j < vocab; j += kThreads) {
    const float v = load(x, j);
    if (v > acc.m) {
      const float scale = acc.m == -FLT_MAX ? 0.f : __expf(acc.m - v);
      acc.s *= scale;
      acc.w *= scale;
      acc.m = v;
    }
    const float e = __expf(v - acc.m);
    acc.s += e;
    acc.w += e * v;
  }
  const Online total = block_merge(acc);
  if (threadIdx.x == 0) {
    const float l = total.m + logf(total.s);
    lse[row] = l;
    entropy[row] = l - total.w / total.s;
    logp[row] = labels ? load(x, labels[row]) - l : 0.f;
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads) backward_kernel(const T* __restrict__ logits, const int64_t* labels,
                                                            const float* entropy, const float* lse,
                                                            const float* g_entropy, const float* g_logp,
                                                            const float* g_lse, int64_t vocab, float* grad) {
  const int64_t row = blockIdx.x;
  const T* x = logits + row * vocab;
  float* out = grad + row * vocab;
  const float l = lse[row], h = entropy[row];
  const float gh = g_entropy ? g_entropy[row] : 0.f;
  const float glp = (g_logp && labels) ? g_logp[row] : 0.f;
  const float coef = (g_lse ? g_lse[row] : 0.f) - glp;
  const int64_t label = labels ? labels[row] : -1;
  for (int64_t j = threadIdx.x; j < vocab; j += kThreads) {
    const float lp = load(x, j) - l;
    const float p = __expf(lp);
    out[j] = p * (coef - gh * (lp + h)) + (j == label ? glp : 0.f);
  }
}

}  // namespace

void row_entropy_forward_cuda(uintptr_t logits, int dtype, uintptr_t labels, int64_t rows, int64_t vocab,
                              uintptr_t entropy, uintptr_t logp, uintptr_t lse, uintptr_t stream) {
  if (rows == 0) return;
  const auto* y = reinterpret_cast<const int64_t*>(labels);
  auto* h = reinterpret_cast<float*>(entropy);
  auto* lp = reinterpret_cast<float*>(logp);
  auto* ls = reinterpret_cast<float*>(lse);
  if (dtype == 0)
    forward_kernel<float><<<rows, kThreads, 0, as_stream(stream)>>>(reinterpret_cast<const float*>(logits), y, vocab,
                                                                      h, lp, ls);
  else
    forward_kernel<__nv_bfloat16><<<rows, kThreads, 0, as_stream(stream)>>>(
        reinterpret_cast<const __nv_bfloat16*>(logits), y, vocab, h, lp, ls);
  check_launch("row_entropy_forward_cuda");
}

void row_entropy_backward_cuda(uintptr_t logits, int dtype, uintptr_t labels, uintptr_t entropy, uintptr_t lse,
                               uintptr_t grad_entropy, uintptr_t grad_logp, uintptr_t grad_lse, int64_t rows,
                               int64_t vocab, uintptr_t grad_logits, uintptr_t stream) {
  if (rows == 0) return;
  const auto* y = reinterpret_cast<const int64_t*>(labels);
  const auto* h = reinterpret_cast<const float*>(entropy);
  const auto* ls = reinterpret_cast<const float*>(lse);
  const auto* gh = reinterpret_cast<const float*>(grad_entropy);
  const auto* glp = reinterpret_cast<const float*>(grad_logp);
  const auto* gls = reinterpret_cast<const float*>(grad_lse);
  auto* out = reinterpret_cast<float*>(grad_logits);
  if (dtype == 0)
    backward_kernel<float><<<rows, kThreads, 0, as_stream(stream)>>>(reinterpret_cast<const float*>(logits), y, h, ls,
                                                                       gh, glp, gls, vocab, out);
  else
    backward_kernel<__nv_bfloat16><<<rows, kThreads, 0, as_stream(stream)>>>(
        reinterpret_cast<const __nv_bfloat16*>(logits), y, h, ls, gh, glp, gls, vocab, out);
  check_launch("row_entropy_backward_cuda");
}

}  // namespace toolbox
