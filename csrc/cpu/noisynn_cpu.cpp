#include <algorithm>
#include <vector>

#include "toolbox/noisynn.h"
#include "toolbox/parallel.h"
#include "toolbox/philox.h"

namespace toolbox {
namespace {

constexpr int64_t kColumns = 1024;  // columns per task: the K rows of a column block stay in cache

// Keyed Philox draws for elements [4g, 4g + 4) of the row with key `key`, as in the numpy reference.
inline void normal_group(uint64_t seed, uint32_t stream, int64_t key, int64_t g, double z[4]) {
  philox_normal4(seed, stream, static_cast<uint64_t>(key), static_cast<uint64_t>(g), z);
}

}  // namespace

void noisynn_mix_optimal_cpu(const float* x, int64_t k, int64_t m, float* out) {
  const float inv = 1.0f / static_cast<float>(k + 1);
  parallel_for((m + kColumns - 1) / kColumns, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> column_sum(kColumns);
    for (int64_t blk = begin; blk < end; ++blk) {
      const int64_t c0 = blk * kColumns, n = std::min(kColumns, m - c0);
      std::fill_n(column_sum.begin(), n, 0.0);
      for (int64_t i = 0; i < k; ++i)
        for (int64_t j = 0; j < n; ++j) column_sum[j] += x[i * m + c0 + j];
      for (int64_t i = 0; i < k; ++i)
        for (int64_t j = 0; j < n; ++j)
          out[i * m + c0 + j] = (x[i * m + c0 + j] + static_cast<float>(column_sum[j])) * inv;
    }
  });
}

void noisynn_mix_circulant_cpu(const float* x, int64_t k, int64_t m, float alpha, int64_t shift, float* out) {
  parallel_for(k, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, m)), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t partner = (i + (shift % k + k) % k) % k;
      const float* xi = x + i * m;
      const float* xp = x + partner * m;
      float* oi = out + i * m;
      for (int64_t j = 0; j < m; ++j) oi[j] = xi[j] + alpha * (xp[j] - xi[j]);
    }
  });
}

void noisynn_gaussian_cpu(const float* x, const int64_t* keys, int64_t b, int64_t m, uint64_t seed, uint32_t stream,
                          float shift, float scale, float* out) {
  const int64_t groups = (m + 3) / 4;
  parallel_for(b * groups, 2048, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t row = t / groups, g = t % groups;
      double z[4];
      normal_group(seed, stream, keys[row], g, z);
      for (int64_t c = 0; c < 4 && 4 * g + c < m; ++c) {
        const int64_t idx = row * m + 4 * g + c;
        out[idx] = x[idx] + (shift + scale * static_cast<float>(z[c]));
      }
    }
  });
}

void noisynn_impulse_cpu(const float* x, const int64_t* keys, int64_t b, int64_t m, uint64_t seed, uint32_t stream,
                         float p, float salt, float pepper, float* out, uint8_t* kept) {
  const int64_t groups = (m + 3) / 4;
  const float low = 0.5f * p, high = 1.0f - 0.5f * p;
  parallel_for(b * groups, 2048, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t row = t / groups, g = t % groups;
      double u[4];
      philox_uniform4(seed, stream, static_cast<uint64_t>(keys[row]), static_cast<uint64_t>(g), u);
      for (int64_t c = 0; c < 4 && 4 * g + c < m; ++c) {
        const int64_t idx = row * m + 4 * g + c;
        const float v = static_cast<float>(u[c]);  // compared in float32, as the reference
        out[idx] = v < low ? salt : (v > high ? pepper : x[idx]);
        kept[idx] = !(v < low || v > high);
      }
    }
  });
}

}  // namespace toolbox
