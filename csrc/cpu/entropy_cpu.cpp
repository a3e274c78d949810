#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "toolbox/entropy.h"
#include "toolbox/fastmath.h"
#include "toolbox/parallel.h"

namespace toolbox {
namespace {

constexpr int64_t kChunk = 2048;  // 8 KiB of floats: one L1-resident block of the streaming pass

struct RowStats { float max, lse, entropy; };

// Loads of 8 floats (unaligned) into a GCC vector.
inline vec8f load8(const float* p) {
  vec8f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline float hsum(vec8f v) {
  float total = 0.0f;
  for (int k = 0; k < 8; ++k) total += v[k];
  return total;
}

// Sum of exp(x - m) and of exp(x - m) * x over one block, 8 lanes at a time (AVX2 clone where available).
__attribute__((target_clones("avx2", "default")))
void block_sums(const float* x, int64_t n, float m, float& sum, float& weighted) {
  vec8f s = {}, w = {};
  const vec8f mv = s + m;
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const vec8f v = load8(x + j);
    const vec8f e = exp_nonpos(v - mv);
    s += e;
    w += e * v;
  }
  float ts = hsum(s), tw = hsum(w);
  for (; j < n; ++j) {
    const float e = exp_nonpos(x[j] - m);
    ts += e;
    tw += e * x[j];
  }
  sum = ts;
  weighted = tw;
}

__attribute__((target_clones("avx2", "default")))
float block_max(const float* x, int64_t n) {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  vec8f m = vec8f{} + neg_inf;
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const vec8f v = load8(x + j);
    m = m > v ? m : v;
  }
  float best = neg_inf;
  for (int k = 0; k < 8; ++k) best = std::max(best, m[k]);
  for (; j < n; ++j) best = std::max(best, x[j]);
  return best;
}

// One streaming pass over a row: per block, rescale the running sums to the new max (online softmax).
RowStats row_stats(const float* x, int64_t vocab) {
  double m = -std::numeric_limits<double>::infinity(), s = 0.0, w = 0.0;
  for (int64_t b = 0; b < vocab; b += kChunk) {
    const int64_t n = std::min(kChunk, vocab - b);
    const double bm = block_max(x + b, n);
    if (bm > m) {
      const double scale = std::isinf(m) ? 0.0 : std::exp(m - bm);
      s *= scale;
      w *= scale;
      m = bm;
    }
    float bs, bw;
    block_sums(x + b, n, static_cast<float>(m), bs, bw);
    s += bs;
    w += bw;
  }
  const double lse = m + std::log(s);
  return RowStats{static_cast<float>(m), static_cast<float>(lse), static_cast<float>(lse - w / s)};
}

__attribute__((target_clones("avx2", "default")))
void row_grad(const float* x, int64_t vocab, float lse, float h, float g_h, float g_lse_minus_logp, float* out) {
  const vec8f zero = {};
  const vec8f lse_v = zero + lse, h_v = zero + h, gh_v = zero + g_h, c_v = zero + g_lse_minus_logp;
  int64_t j = 0;
  for (; j + 8 <= vocab; j += 8) {
    const vec8f logp = load8(x + j) - lse_v;
    const vec8f g = exp_nonpos(logp < zero ? logp : zero) * (c_v - gh_v * (logp + h_v));
    std::memcpy(out + j, &g, sizeof g);
  }
  for (; j < vocab; ++j) {
    const float logp = x[j] - lse;
    out[j] = exp_nonpos(std::min(logp, 0.0f)) * (g_lse_minus_logp - g_h * (logp + h));
  }
}

}  // namespace

void row_entropy_forward_cpu(const float* logits, const int64_t* labels, int64_t rows, int64_t vocab,
                             float* entropy, float* logp, float* lse) {
  parallel_for(rows, 8, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* x = logits + r * vocab;
      const RowStats st = row_stats(x, vocab);
      entropy[r] = st.entropy;
      lse[r] = st.lse;
      if (labels != nullptr) logp[r] = x[labels[r]] - st.lse;
    }
  });
}

void row_entropy_backward_cpu(const float* logits, const int64_t* labels, const float* entropy, const float* lse,
                              const float* grad_entropy, const float* grad_logp, const float* grad_lse,
                              int64_t rows, int64_t vocab, float* grad_logits) {
  parallel_for(rows, 8, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float g_h = grad_entropy ? grad_entropy[r] : 0.0f;
      const float g_logp = (grad_logp && labels) ? grad_logp[r] : 0.0f;
      const float g_lse = grad_lse ? grad_lse[r] : 0.0f;
      float* out = grad_logits + r * vocab;
      // d logp_y / dx = onehot(y) - p, d lse / dx = p: the p-coefficient is g_lse - g_logp.
      row_grad(logits + r * vocab, vocab, lse[r], entropy[r], g_h, g_lse - g_logp, out);
      if (labels != nullptr) out[labels[r]] += g_logp;
    }
  });
}

}  // namespace toolbox
