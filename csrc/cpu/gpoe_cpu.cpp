// C++ gPoE fusion: threads own disjoint blocks of test points; within a block the experts are the outer loop in
// groups of kGroup, so every read of the [M, N] inputs is contiguous (2 kGroup streams). A group's terms are summed
// in the input precision (float32: relative error <= 7 * 2^-24 ~ 4e-7 for the positive sums S_T, S_b, S_b2) and
// then added to the block's running sums in double (structure of arrays, in L1), loaded and stored once per group
// rather than once per expert: the float -> double conversions and double adds no longer dominate. The inner loop
// over points vectorises (gpoe_terms selects instead of branching; log_ge1 is branch-free), with AVX-512 and AVX2
// clones picked at load time.
#include <algorithm>

// Non-trapping IEEE semantics (the default would be to assume comparisons may trap) let GCC turn the selects of
// gpoe_terms into vector blends; results are unchanged: nothing here inspects floating-point exception flags.
#pragma GCC optimize("no-trapping-math")

#include "toolbox/gpoe.h"
#include "toolbox/parallel.h"

namespace toolbox {
namespace {

constexpr int64_t kBlock = 512;  // test points per block: 4 x 512 doubles of running sums
constexpr int kGroup = 8;        // experts per pass over the block's sums

struct BlockSums {
  double t[kBlock], tm[kBlock], b[kBlock], b2[kBlock];
};

// Experts i0 .. i0 + G - 1 over the block's points: row r of mean / var starts at m + r * row, its weight prior at
// vp + r * vp_row (per point when kPointPrior, else one value for the row).
template <int kWeight, bool kPointPrior, int G, class T>
__attribute__((target_clones("avx512f", "avx2", "default"))) void accumulate_rows(
    const T* __restrict m, const T* __restrict v, int64_t row, const T* __restrict vp, int64_t vp_row, int64_t count,
    BlockSums& s) {
  for (int64_t j = 0; j < count; ++j) {
    T t = 0, tm = 0, b = 0, b2 = 0;  // the group's partial sums, in the input precision
#pragma GCC unroll 16
    for (int r = 0; r < G; ++r) {
      T beta, precision, weighted_mean;
      gpoe_terms<kWeight>(m[r * row + j], v[r * row + j], kPointPrior ? vp[r * vp_row + j] : vp[r * vp_row], beta,
                          precision, weighted_mean);
      t += precision;
      tm += weighted_mean;
      b += beta;
      b2 += beta * beta;
    }
    s.t[j] += static_cast<double>(t);
    s.tm[j] += static_cast<double>(tm);
    s.b[j] += static_cast<double>(b);
    s.b2[j] += static_cast<double>(b2);
  }
}

template <int kWeight, bool kPointPrior, class T>
void fuse_block(const GpoeFuseArgs<T>& a, int64_t begin, int64_t count) {
  BlockSums s;
  std::fill_n(&s.t[0], 4 * kBlock, 0.0);
  for (int64_t i = 0; i < a.experts;) {
    const T* vp = a.weight_prior + i * a.wp_stride_e + begin * a.wp_stride_p;
    const int64_t row = i * a.points + begin;
    if (a.experts - i >= kGroup) {
      accumulate_rows<kWeight, kPointPrior, kGroup>(a.mean + row, a.var + row, a.points, vp, a.wp_stride_e, count, s);
      i += kGroup;
    } else {  // the last M mod kGroup experts one at a time
      accumulate_rows<kWeight, kPointPrior, 1>(a.mean + row, a.var + row, a.points, vp, a.wp_stride_e, count, s);
      i += 1;
    }
  }
  for (int64_t j = 0; j < count; ++j) {
    const int64_t n = begin + j;
    const GpoeSums sums{s.t[j], s.tm[j], s.b[j], s.b2[j]};
    gpoe_write_point(a, n, sums);
  }
}

template <int kWeight, bool kPointPrior, class T>
void fuse_blocks(const GpoeFuseArgs<T>& a) {
  const int64_t blocks = (a.points + kBlock - 1) / kBlock;
  parallel_for(blocks, 4, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t begin = b * kBlock;
      fuse_block<kWeight, kPointPrior>(a, begin, std::min(kBlock, a.points - begin));
    }
  });
}

template <class T>
void fuse(const GpoeFuseArgs<T>& a) {
  const bool point_prior = a.wp_stride_p != 0;
  if (a.weight == kWeightEntropy) {
    point_prior ? fuse_blocks<kWeightEntropy, true>(a) : fuse_blocks<kWeightEntropy, false>(a);
  } else {
    point_prior ? fuse_blocks<kWeightOne, true>(a) : fuse_blocks<kWeightOne, false>(a);
  }
}

}  // namespace

void gpoe_fuse_cpu(const GpoeFuseArgs<float>& args) { fuse(args); }
void gpoe_fuse_cpu(const GpoeFuseArgs<double>& args) { fuse(args); }

}  // namespace toolbox
