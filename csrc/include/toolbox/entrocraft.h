// Entrocraft's rejection epilogue (Li et al., Alg. 1 steps 1-3), run after the fused entropy pass over the logits:
// batch entropy over the response tokens (token-mean, or seq-mean = mean over sequences of their token means),
// mode m = 1[H > h_high] - 1[H < h_low], accept_i = (m * A_i >= 0) and the kept count of every prompt group.
// Only per-token and per-sequence scalars are read: the decision needs no second pass over the logits.
#pragma once
#include <cstdint>

namespace toolbox {

// token_seq[t] in [0, seqs) names the sequence of token t; group_ids may be null (then kept_per_group is unused).
void rejection_epilogue_cpu(const float* token_entropy, const int64_t* token_seq, int64_t tokens,
                            const float* advantages, const int64_t* group_ids, int64_t seqs, int64_t groups,
                            bool seq_mean, float h_low, float h_high, uint8_t* accept, int64_t* kept_per_group,
                            double* entropy, int32_t* mode);

#if defined(TOOLBOX_WITH_CUDA)
// Device pointers. workspace: 2 * seqs + 1 doubles and kept_per_group: `groups` int64, both zeroed by the caller;
// entropy: 1 double, mode: 1 int32, accept: seqs uint8. Everything stays on the stream (no host sync).
void rejection_epilogue_cuda(uintptr_t token_entropy, uintptr_t token_seq, int64_t tokens, uintptr_t advantages,
                             uintptr_t group_ids, int64_t seqs, int64_t groups, bool seq_mean, float h_low,
                             float h_high, uintptr_t workspace, uintptr_t accept, uintptr_t kept_per_group,
                             uintptr_t entropy, uintptr_t mode, uintptr_t stream);
#endif

}  // namespace toolbox
