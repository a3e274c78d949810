// Fused per-row softmax statistics over logits [T, V] (Entrocraft's entropy kernel), one streaming pass per row
// and no [T, V] temporary. Everything is taken relative to the running row max m (docs/entrocraft.md, "Numerics"):
//   e_j = exp(x_j - m),  s = sum_j e_j,  u = sum_j e_j (x_j - m)                         (N1)
//   when m grows to m':  s <- a s,  u <- a (u + s (m - m')),  a = exp(m - m')           (N2)
//   H = log s - u / s,  log p_y = (x_y - m) - log s,  lse = m + log s                    (N3)
// Conventions: an entry at -inf contributes exactly 0 (the x log x -> 0 limit). A row whose entries are all -inf
// (padding) gives H = 0, log p_y = -inf, m = log s = -inf (lse = -inf) and a zero gradient. A row holding NaN or
// +inf gives NaN in all four outputs (and its gradient), for the caller to report.
// Logits are read in their own type (float32, bfloat16, float16) and accumulated in float32 or wider.
#pragma once
#include <cstdint>

namespace toolbox {

enum LogitsDtype : int { kLogitsFloat32 = 0, kLogitsBFloat16 = 1, kLogitsFloat16 = 2 };

// logits: [rows, vocab] of `dtype` (bfloat16 / float16 as their 16-bit patterns); labels may be null (logp = 0).
// Outputs per row: entropy, logp, row_max = m and log_sum = log s, so lse = row_max + log_sum (N3).
void row_entropy_forward_cpu(const void* logits, int dtype, const int64_t* labels, int64_t rows, int64_t vocab,
                             float* entropy, float* logp, float* row_max, float* log_sum);

// grad_logits = g_H * (-p (log p + H)) + g_logp * (onehot(y) - p) + g_lse * p, with log p = (x - m) - log s
// recomputed from the saved row_max and log_sum (N3). Null grads count as zero.
void row_entropy_backward_cpu(const void* logits, int dtype, const int64_t* labels, const float* entropy,
                              const float* row_max, const float* log_sum, const float* grad_entropy,
                              const float* grad_logp, const float* grad_lse, int64_t rows, int64_t vocab,
                              float* grad_logits);

#if defined(TOOLBOX_WITH_CUDA)
// The same on device pointers, on `stream`.
void row_entropy_forward_cuda(uintptr_t logits, int dtype, uintptr_t labels, int64_t rows, int64_t vocab,
                              uintptr_t entropy, uintptr_t logp, uintptr_t row_max, uintptr_t log_sum,
                              uintptr_t stream);
void row_entropy_backward_cuda(uintptr_t logits, int dtype, uintptr_t labels, uintptr_t entropy, uintptr_t row_max,
                               uintptr_t log_sum, uintptr_t grad_entropy, uintptr_t grad_logp, uintptr_t grad_lse,
                               int64_t rows, int64_t vocab, uintptr_t grad_logits, uintptr_t stream);
#endif

}  // namespace toolbox
