#include <vector>

#include "toolbox/entrocraft.h"

namespace toolbox {

void rejection_epilogue_cpu(const float* token_entropy, const int64_t* token_seq, int64_t tokens,
                            const float* advantages, const int64_t* group_ids, int64_t seqs, int64_t groups,
                            bool seq_mean, float h_low, float h_high, uint8_t* accept, int64_t* kept_per_group,
                            double* entropy, int32_t* mode) {
  double h = 0.0;
  if (seq_mean) {  // the paper's definition: mean over sequences of each sequence's token mean [P §2.2]
    std::vector<double> sum(seqs, 0.0), count(seqs, 0.0);
    for (int64_t t = 0; t < tokens; ++t) {
      sum[token_seq[t]] += token_entropy[t];
      count[token_seq[t]] += 1.0;
    }
    double total = 0.0, nonempty = 0.0;
    for (int64_t s = 0; s < seqs; ++s) {
      if (count[s] > 0.0) {
        total += sum[s] / count[s];
        nonempty += 1.0;
      }
    }
    h = nonempty > 0.0 ? total / nonempty : 0.0;
  } else {  // token-mean over all response tokens (verl's default loss_agg_mode) [R ray_trainer]
    for (int64_t t = 0; t < tokens; ++t) h += token_entropy[t];
    h = tokens > 0 ? h / static_cast<double>(tokens) : 0.0;
  }
  const int32_t m = static_cast<int32_t>(h > h_high) - static_cast<int32_t>(h < h_low);
  if (group_ids != nullptr)
    for (int64_t g = 0; g < groups; ++g) kept_per_group[g] = 0;
  for (int64_t i = 0; i < seqs; ++i) {
    const bool keep = static_cast<float>(m) * advantages[i] >= 0.0f;  // keep iff m * A >= 0
    accept[i] = keep ? 1 : 0;
    if (keep && group_ids != nullptr) ++kept_per_group[group_ids[i]];
  }
  *entropy = h;
  *mode = m;
}

}  // namespace toolbox
