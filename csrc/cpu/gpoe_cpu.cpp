// C++ gPoE fusion: threads own disjoint blocks of test points; within a block the experts are the outer loop, so
// every read of the [M, N] inputs is contiguous, and the sums of the block stay in L1.
#include <algorithm>

#include "toolbox/gpoe.h"
#include "toolbox/parallel.h"

namespace toolbox {
namespace {

constexpr int64_t kBlock = 512;  // test points per block: 4 x 512 doubles of running sums

template <class T>
void fuse_block(const GpoeFuseArgs<T>& a, int64_t begin, int64_t count) {
  GpoeSums sums[kBlock] = {};
  for (int64_t i = 0; i < a.experts; ++i) {
    const T* m = a.mean + i * a.points + begin;
    const T* v = a.var + i * a.points + begin;
    const T* vp = a.weight_prior + i * a.wp_stride_e + begin * a.wp_stride_p;
    for (int64_t j = 0; j < count; ++j) gpoe_accumulate(sums[j], m[j], v[j], vp[j * a.wp_stride_p], a.weight);
  }
  for (int64_t j = 0; j < count; ++j) {
    const int64_t n = begin + j;
    const double prior_var = a.prior_var[n * a.pv_stride];
    const double prior_mean = a.prior_mean ? static_cast<double>(a.prior_mean[n * a.pm_stride]) : 0.0;
    double mean, var;
    const bool fallback = gpoe_finalize(sums[j], a.combine, prior_var, prior_mean, a.eps, mean, var);
    a.out_mean[n] = static_cast<T>(mean);
    a.out_var[n] = static_cast<T>(var);
    if (a.out_fallback) a.out_fallback[n] = fallback;
    if (a.out_stats) {
      a.out_stats[n] = sums[j].t;
      a.out_stats[a.points + n] = sums[j].tm;
      a.out_stats[2 * a.points + n] = sums[j].b;
      a.out_stats[3 * a.points + n] = sums[j].b2;
    }
  }
}

template <class T>
void fuse(const GpoeFuseArgs<T>& a) {
  const int64_t blocks = (a.points + kBlock - 1) / kBlock;
  parallel_for(blocks, 4, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t begin = b * kBlock;
      fuse_block(a, begin, std::min(kBlock, a.points - begin));
    }
  });
}

}  // namespace

void gpoe_fuse_cpu(const GpoeFuseArgs<float>& args) { fuse(args); }
void gpoe_fuse_cpu(const GpoeFuseArgs<double>& args) { fuse(args); }

}  // namespace toolbox
