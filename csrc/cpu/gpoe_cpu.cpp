// C++ gPoE fusion: threads own disjoint blocks of test points; within a block the experts are the outer loop, so
// every read of the [M, N] inputs is contiguous, the block's running sums (structure of arrays) stay in L1, and
// the inner loop over points vectorises (gpoe_terms selects instead of branching; log_ge1 is branch-free),
// with an AVX2 clone picked at load time.
#include <algorithm>

// Non-trapping IEEE semantics (the default would be to assume comparisons may trap) let GCC turn the selects of
// gpoe_terms into vector blends; results are unchanged: nothing here inspects floating-point exception flags.
#pragma GCC optimize("no-trapping-math")

#include "toolbox/gpoe.h"
#include "toolbox/parallel.h"

namespace toolbox {
namespace {

constexpr int64_t kBlock = 512;  // test points per block: 4 x 512 doubles of running sums

struct BlockSums {
  double t[kBlock], tm[kBlock], b[kBlock], b2[kBlock];
};

// One expert row of a block; the weight prior is per point (kPointPrior) or one value for the row.
template <int kWeight, bool kPointPrior, class T>
__attribute__((target_clones("avx2", "default"))) void accumulate_row(const T* __restrict m, const T* __restrict v, const T* __restrict vp, int64_t count,
                    BlockSums& s) {
  for (int64_t j = 0; j < count; ++j) {
    T beta, precision, weighted_mean;
    gpoe_terms<kWeight>(m[j], v[j], kPointPrior ? vp[j] : vp[0], beta, precision, weighted_mean);
    s.t[j] += static_cast<double>(precision);
    s.tm[j] += static_cast<double>(weighted_mean);
    s.b[j] += static_cast<double>(beta);
    s.b2[j] += static_cast<double>(beta) * static_cast<double>(beta);
  }
}

template <int kWeight, bool kPointPrior, class T>
void fuse_block(const GpoeFuseArgs<T>& a, int64_t begin, int64_t count) {
  BlockSums s;
  std::fill_n(&s.t[0], 4 * kBlock, 0.0);
  for (int64_t i = 0; i < a.experts; ++i) {
    const int64_t row = i * a.points + begin;
    accumulate_row<kWeight, kPointPrior>(a.mean + row, a.var + row,
                                         a.weight_prior + i * a.wp_stride_e + begin * a.wp_stride_p, count, s);
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
