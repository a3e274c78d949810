// Fused per-row softmax statistics over logits [T, V] (Entrocraft's entropy kernel).
// For each row: entropy H = lse - sum_j p_j x_j, log-prob of the label x_y - lse, and lse itself,
// from one streaming pass (online max / sum / weighted sum), without any [T, V] temporary.
#pragma once
#include <cstdint>

namespace toolbox {

void row_entropy_forward_cpu(const float* logits, const int64_t* labels, int64_t rows, int64_t vocab,
                             float* entropy, float* logp, float* lse);

// grad_logits = g_H * (-p (log p + H)) + g_logp * (onehot(y) - p) + g_lse * p, with p recomputed from lse.
void row_entropy_backward_cpu(const float* logits, const int64_t* labels, const float* entropy, const float* lse,
                              const float* grad_entropy, const float* grad_logp, const float* grad_lse,
                              int64_t rows, int64_t vocab, float* grad_logits);

#if defined(TOOLBOX_WITH_CUDA)
// dtype: 0 = float32, 1 = bfloat16 logits; outputs are float32. All pointers are device pointers.
void row_entropy_forward_cuda(uintptr_t logits, int dtype, uintptr_t labels, int64_t rows, int64_t vocab,
                              uintptr_t entropy, uintptr_t logp, uintptr_t lse, uintptr_t stream);
void row_entropy_backward_cuda(uintptr_t logits, int dtype, uintptr_t labels, uintptr_t entropy, uintptr_t lse,
                               uintptr_t grad_entropy, uintptr_t grad_logp, uintptr_t grad_lse, int64_t rows,
                               int64_t vocab, uintptr_t grad_logits, uintptr_t stream);
#endif

}  // namespace toolbox
