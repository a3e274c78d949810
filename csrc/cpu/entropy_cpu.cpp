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
constexpr float kFloor = kExpFloor;  // further below the max, e_j is taken as exactly 0 (exp(-87) < 2e-38)
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

struct RowStats { float max, log_sum, entropy; };  // m, log s, H of (N3)

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

// bfloat16 is the top half of a float32.
__attribute__((target_clones("avx2", "default")))
void widen_bf16(const uint16_t* src, int64_t n, float* dst) {
  for (int64_t j = 0; j < n; ++j) {
    const uint32_t bits = uint32_t{src[j]} << 16;
    std::memcpy(dst + j, &bits, sizeof bits);
  }
}

// float16: exponent and mantissa shifted into place and rebiased by 2^(127 - 15) (subnormals included); the
// all-ones exponent maps back to inf / NaN.
__attribute__((target_clones("avx2", "default")))
void widen_f16(const uint16_t* src, int64_t n, float* dst) {
  for (int64_t j = 0; j < n; ++j) {
    const uint32_t h = src[j], magnitude = (h & 0x7fffu) << 13;
    float f;
    std::memcpy(&f, &magnitude, sizeof f);
    f *= 0x1p112f;
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    bits |= ((h & 0x7c00u) == 0x7c00u ? 0x7f800000u : 0u) | (h & 0x8000u) << 16;
    std::memcpy(dst + j, &bits, sizeof bits);
  }
}

int64_t element_size(int dtype) { return dtype == kLogitsFloat32 ? 4 : 2; }

// Elements [b, b + n) of a row as float32: in place for float32 logits, else widened into buf.
const float* block_f32(const void* row, int dtype, int64_t b, int64_t n, float* buf) {
  if (dtype == kLogitsFloat32) return static_cast<const float*>(row) + b;
  const uint16_t* src = static_cast<const uint16_t*>(row) + b;
  if (dtype == kLogitsBFloat16)
    widen_bf16(src, n, buf);
  else
    widen_f16(src, n, buf);
  return buf;
}

// v where `below` is false, else 0 (an and-not on the vector lanes).
inline float zero_where(bool below, float v) { return below ? 0.0f : v; }
inline vec8f zero_where(vec8i below, vec8f v) { return reinterpret_cast<vec8f>(~below & reinterpret_cast<vec8i>(v)); }

// exp(d) and d clamped at the floor, for a float or 8 lanes: exactly 0 (times a finite d) below it, -inf included.
template <class F>
inline F exp_floored(F d, F& dc) {
  const F floor = F{} + kFloor;
  const auto below = d < floor;
  dc = below ? floor : d;
  return zero_where(below, exp_in_range(dc));
}

// s and u of (N1) over one block, 8 lanes at a time (AVX2 clone where available). in_range: every x_j - m is
// known to lie in [floor, 0], so the clamp and the mask are skipped (the common case of unmasked logits).
__attribute__((target_clones("avx2", "default")))
void block_sums(const float* x, int64_t n, float m, bool in_range, float& sum, float& weighted) {
  const vec8f mv = vec8f{} + m;
  vec8f s = {}, u = {}, dc;
  int64_t j = 0;
  if (in_range) {
    for (; j + 8 <= n; j += 8) {
      const vec8f d = load8(x + j) - mv, e = exp_in_range(d);
      s += e;
      u += e * d;
    }
  } else {
    for (; j + 8 <= n; j += 8) {
      const vec8f e = exp_floored(load8(x + j) - mv, dc);
      s += e;
      u += e * dc;
    }
  }
  float ts = hsum(s), tu = hsum(u), dc1;
  for (; j < n; ++j) {
    const float e = exp_floored(x[j] - m, dc1);
    ts += e;
    tu += e * dc1;
  }
  sum = ts;
  weighted = tu;
}

struct Range { float lo, hi; };

// Smallest and largest entry of a block (a NaN may or may not show).
__attribute__((target_clones("avx2", "default")))
Range block_range(const float* x, int64_t n) {
  vec8f lo = vec8f{} + kInf, hi = vec8f{} - kInf;
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const vec8f v = load8(x + j);
    lo = lo < v ? lo : v;
    hi = hi > v ? hi : v;
  }
  Range r{kInf, -kInf};
  for (int k = 0; k < 8; ++k) r = {std::min(r.lo, lo[k]), std::max(r.hi, hi[k])};
  for (; j < n; ++j) r = {std::min(r.lo, x[j]), std::max(r.hi, x[j])};
  return r;
}

bool has_nan(const float* x, int64_t n) {
  for (int64_t j = 0; j < n; ++j)
    if (std::isnan(x[j])) return true;
  return false;
}

// One streaming pass over a row: per block, rescale the running sums to the new max (N2), then add (N1).
RowStats row_stats(const void* row, int dtype, int64_t vocab) {
  float buf[kChunk];
  double m = -kInf, s = 0.0, u = 0.0;
  for (int64_t b = 0; b < vocab; b += kChunk) {
    const int64_t n = std::min(kChunk, vocab - b);
    const float* x = block_f32(row, dtype, b, n, buf);
    const Range range = block_range(x, n);
    const double bm = range.hi;
    if (bm > m) {
      if (s > 0.0) {  // s = 0: nothing seen yet; NaN: the row is already bad
        const double a = std::exp(m - bm);
        u = a * (u + s * (m - bm));
        s *= a;
      }
      m = bm;
    }
    if (m == -kInf) {  // every entry so far is -inf and adds 0, but a NaN the max passed over must not vanish
      if (has_nan(x, n)) s = kNaN;
      continue;
    }
    float bs, bu;
    const float mf = static_cast<float>(m);
    block_sums(x, n, mf, range.lo - mf >= kFloor, bs, bu);
    s += bs;
    u += bu;
  }
  if (std::isnan(s)) return {kNaN, kNaN, kNaN};  // NaN or +inf in the row (d = inf - inf)
  if (m == -kInf) return {-kInf, -kInf, 0.0f};    // fully masked row
  const double ls = std::log(s);
  return {static_cast<float>(m), static_cast<float>(ls), static_cast<float>(ls - u / s)};
}

// The gradient of one block (entropy.h), log p_j = (x_j - m) - log s; p_j = 0 below the floor (-inf included).
__attribute__((target_clones("avx2", "default")))
void block_grad(const float* x, int64_t n, float m, float ls, float h, float g_h, float c, float* out) {
  const vec8f zero = {}, m_v = zero + m, ls_v = zero + ls, h_v = zero + h, gh_v = zero + g_h, c_v = zero + c;
  vec8f lpc;
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const vec8f p = exp_floored((load8(x + j) - m_v) - ls_v, lpc);
    const vec8f g = p * (c_v - gh_v * (lpc + h_v));
    std::memcpy(out + j, &g, sizeof g);
  }
  float lpc1;
  for (; j < n; ++j) {
    const float p = exp_floored((x[j] - m) - ls, lpc1);
    out[j] = p * (c - g_h * (lpc1 + h));
  }
}

}  // namespace

void row_entropy_forward_cpu(const void* logits, int dtype, const int64_t* labels, int64_t rows, int64_t vocab,
                             float* entropy, float* logp, float* row_max, float* log_sum) {
  const int64_t row_bytes = vocab * element_size(dtype);
  parallel_for(rows, 8, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const void* row = static_cast<const char*>(logits) + r * row_bytes;
      const RowStats st = row_stats(row, dtype, vocab);
      entropy[r] = st.entropy;
      row_max[r] = st.max;
      log_sum[r] = st.log_sum;
      if (labels != nullptr) {
        float buf;
        const float x_y = *block_f32(row, dtype, labels[r], 1, &buf);
        logp[r] = st.max == -kInf ? -kInf : (x_y - st.max) - st.log_sum;  // (N3)
      }
    }
  });
}

void row_entropy_backward_cpu(const void* logits, int dtype, const int64_t* labels, const float* entropy,
                              const float* row_max, const float* log_sum, const float* grad_entropy,
                              const float* grad_logp, const float* grad_lse, int64_t rows, int64_t vocab,
                              float* grad_logits) {
  const int64_t row_bytes = vocab * element_size(dtype);
  parallel_for(rows, 8, [&](int64_t begin, int64_t end) {
    float buf[kChunk];
    for (int64_t r = begin; r < end; ++r) {
      float* out = grad_logits + r * vocab;
      if (row_max[r] == -kInf) {  // fully masked row: its outputs are constants
        std::fill_n(out, vocab, 0.0f);
        continue;
      }
      const float g_h = grad_entropy ? grad_entropy[r] : 0.0f;
      const float g_logp = (grad_logp && labels) ? grad_logp[r] : 0.0f;
      const float g_lse = grad_lse ? grad_lse[r] : 0.0f;
      const void* row = static_cast<const char*>(logits) + r * row_bytes;
      for (int64_t b = 0; b < vocab; b += kChunk) {
        const int64_t n = std::min(kChunk, vocab - b);
        // d logp_y / dx = onehot(y) - p, d lse / dx = p: the p-coefficient is g_lse - g_logp.
        block_grad(block_f32(row, dtype, b, n, buf), n, row_max[r], log_sum[r], entropy[r], g_h, g_lse - g_logp,
                   out + b);
      }
      if (labels != nullptr) out[labels[r]] += g_logp;
    }
  });
}

}  // namespace toolbox
