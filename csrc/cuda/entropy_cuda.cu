// One block per row: each thread streams a strided slice of the row keeping an online (m, s, u) of entropy.h's (N1),
// rescaled by (N2), then the block merges the triples. Nothing of size V is written in the forward pass.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "toolbox/cuda_utils.h"
#include "toolbox/entropy.h"

namespace toolbox {
namespace {

constexpr int kThreads = 512;
constexpr float kFloor = -87.0f;  // the gradient's log p is clamped here so that p = 0 times it stays 0

__device__ __forceinline__ float load(const float* p, int64_t i) { return __ldg(p + i); }
__device__ __forceinline__ float load(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ float load(const __half* p, int64_t i) { return __half2float(p[i]); }

struct Online {
  float m, s, u;  // running max, sum exp(x - m), sum exp(x - m) (x - m); s = 0: empty, s = NaN: bad row
};

// (N2) and a sum: an empty side (s == 0, m == -inf) is the identity; a NaN s stays NaN.
__device__ __forceinline__ Online merge(Online a, Online b) {
  if (b.s == 0.f) return a;
  if (a.s == 0.f) return b;
  const float m = fmaxf(a.m, b.m);
  const float ea = __expf(a.m - m), eb = __expf(b.m - m);
  return Online{m, a.s * ea + b.s * eb, ea * (a.u + a.s * (a.m - m)) + eb * (b.u + b.s * (b.m - m))};
}

__device__ __forceinline__ Online warp_merge(Online v) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    const Online o{__shfl_xor_sync(0xffffffffu, v.m, offset), __shfl_xor_sync(0xffffffffu, v.s, offset),
                   __shfl_xor_sync(0xffffffffu, v.u, offset)};
    v = merge(v, o);
  }
  return v;
}

__device__ Online block_merge(Online v) {
  __shared__ Online warp_vals[kThreads / 32];
  v = warp_merge(v);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) warp_vals[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = warp_merge(lane < kThreads / 32 ? warp_vals[lane] : Online{-INFINITY, 0.f, 0.f});
    if (lane == 0) warp_vals[0] = v;
  }
  __syncthreads();
  return warp_vals[0];
}

template <class T>
__global__ void __launch_bounds__(kThreads) forward_kernel(const T* __restrict__ logits, const int64_t* labels,
                                                           int64_t vocab, float* entropy, float* logp,
                                                           float* row_max, float* log_sum) {
  const int64_t row = blockIdx.x;
  const T* x = logits + row * vocab;
  Online acc{-INFINITY, 0.f, 0.f};
  for (int64_t j = threadIdx.x; j < vocab; j += kThreads) {
    const float v = load(x, j);
    if (v == -INFINITY) continue;  // adds exactly 0 (x log x -> 0)
    if (v > acc.m) {               // (N2); a NaN v skips it and poisons s below
      const float a = __expf(acc.m - v);
      acc.u = acc.s == 0.f ? 0.f : a * (acc.u + acc.s * (acc.m - v));
      acc.s *= a;
      acc.m = v;
    }
    const float d = v - acc.m, e = __expf(d);  // (N1); +inf gives d = NaN
    acc.s += e;
    acc.u += e * d;
  }
  const Online total = block_merge(acc);
  if (threadIdx.x == 0) {
    float h, lp, mx, ls;
    if (isnan(total.s)) {  // NaN or +inf in the row
      h = lp = mx = ls = NAN;
    } else if (total.s == 0.f) {  // fully masked row
      h = 0.f;
      lp = mx = ls = -INFINITY;
    } else {  // (N3)
      mx = total.m;
      ls = logf(total.s);
      h = ls - total.u / total.s;
      lp = labels ? (load(x, labels[row]) - mx) - ls : 0.f;
    }
    entropy[row] = h;
    logp[row] = labels ? lp : 0.f;
    row_max[row] = mx;
    log_sum[row] = ls;
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads) backward_kernel(const T* __restrict__ logits, const int64_t* labels,
                                                            const float* entropy, const float* row_max,
                                                            const float* log_sum, const float* g_entropy,
                                                            const float* g_logp, const float* g_lse, int64_t vocab,
                                                            float* grad) {
  const int64_t row = blockIdx.x;
  const T* x = logits + row * vocab;
  float* out = grad + row * vocab;
  const float m = row_max[row], ls = log_sum[row], h = entropy[row];
  if (m == -INFINITY) {  // fully masked row: its outputs are constants
    for (int64_t j = threadIdx.x; j < vocab; j += kThreads) out[j] = 0.f;
    return;
  }
  const float gh = g_entropy ? g_entropy[row] : 0.f;
  const float glp = (g_logp && labels) ? g_logp[row] : 0.f;
  const float coef = (g_lse ? g_lse[row] : 0.f) - glp;
  const int64_t label = labels ? labels[row] : -1;
  for (int64_t j = threadIdx.x; j < vocab; j += kThreads) {
    const float lp = (load(x, j) - m) - ls;  // (N3); -inf at masked entries, where p = 0
    const float p = __expf(lp);
    out[j] = p * (coef - gh * (fmaxf(lp, kFloor) + h)) + (j == label ? glp : 0.f);
  }
}

template <class T>
void launch_forward(uintptr_t logits, uintptr_t labels, int64_t rows, int64_t vocab, uintptr_t entropy,
                    uintptr_t logp, uintptr_t row_max, uintptr_t log_sum, uintptr_t stream) {
  forward_kernel<T><<<rows, kThreads, 0, as_stream(stream)>>>(
      reinterpret_cast<const T*>(logits), reinterpret_cast<const int64_t*>(labels), vocab,
      reinterpret_cast<float*>(entropy), reinterpret_cast<float*>(logp), reinterpret_cast<float*>(row_max),
      reinterpret_cast<float*>(log_sum));
}

template <class T>
void launch_backward(uintptr_t logits, uintptr_t labels, uintptr_t entropy, uintptr_t row_max, uintptr_t log_sum,
                     uintptr_t grad_entropy, uintptr_t grad_logp, uintptr_t grad_lse, int64_t rows, int64_t vocab,
                     uintptr_t grad_logits, uintptr_t stream) {
  backward_kernel<T><<<rows, kThreads, 0, as_stream(stream)>>>(
      reinterpret_cast<const T*>(logits), reinterpret_cast<const int64_t*>(labels),
      reinterpret_cast<const float*>(entropy), reinterpret_cast<const float*>(row_max),
      reinterpret_cast<const float*>(log_sum), reinterpret_cast<const float*>(grad_entropy),
      reinterpret_cast<const float*>(grad_logp), reinterpret_cast<const float*>(grad_lse), vocab,
      reinterpret_cast<float*>(grad_logits));
}

}  // namespace

void row_entropy_forward_cuda(uintptr_t logits, int dtype, uintptr_t labels, int64_t rows, int64_t vocab,
                              uintptr_t entropy, uintptr_t logp, uintptr_t row_max, uintptr_t log_sum,
                              uintptr_t stream) {
  if (rows == 0) return;
  if (dtype == kLogitsFloat32)
    launch_forward<float>(logits, labels, rows, vocab, entropy, logp, row_max, log_sum, stream);
  else if (dtype == kLogitsBFloat16)
    launch_forward<__nv_bfloat16>(logits, labels, rows, vocab, entropy, logp, row_max, log_sum, stream);
  else
    launch_forward<__half>(logits, labels, rows, vocab, entropy, logp, row_max, log_sum, stream);
  check_launch("row_entropy_forward_cuda");
}

void row_entropy_backward_cuda(uintptr_t logits, int dtype, uintptr_t labels, uintptr_t entropy, uintptr_t row_max,
                               uintptr_t log_sum, uintptr_t grad_entropy, uintptr_t grad_logp, uintptr_t grad_lse,
                               int64_t rows, int64_t vocab, uintptr_t grad_logits, uintptr_t stream) {
  if (rows == 0) return;
  if (dtype == kLogitsFloat32)
    launch_backward<float>(logits, labels, entropy, row_max, log_sum, grad_entropy, grad_logp, grad_lse, rows, vocab,
                           grad_logits, stream);
  else if (dtype == kLogitsBFloat16)
    launch_backward<__nv_bfloat16>(logits, labels, entropy, row_max, log_sum, grad_entropy, grad_logp, grad_lse,
                                   rows, vocab, grad_logits, stream);
  else
    launch_backward<__half>(logits, labels, entropy, row_max, log_sum, grad_entropy, grad_logp, grad_lse, rows,
                            vocab, grad_logits, stream);
  check_launch("row_entropy_backward_cuda");
}

}  // namespace toolbox
