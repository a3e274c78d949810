#include "toolbox/diffusion.h"
#include "toolbox/parallel.h"

namespace toolbox {
namespace {

template <int DIM>
void run(const GmmParams& g, const LangevinParams& p, int64_t n, double* x, double* work, double* heat,
         double* heat_discrete, double* logp_start, double* logp_end, double* snapshots) {
  const int64_t d = g.dim;
  parallel_for(n, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      langevin_particle<DIM>(g, p, i, x + i * d, DIM > 0 ? nullptr : work + i * 4 * d, heat + i,
                             heat_discrete + i, logp_start + i, logp_end + i, snapshots);
  });
}

}  // namespace

void langevin_cpu(const GmmParams& g, const LangevinParams& p, int64_t n, double* x, double* work, double* heat,
                  double* heat_discrete, double* logp_start, double* logp_end, double* snapshots) {
  switch (g.dim) {
    case 1: return run<1>(g, p, n, x, work, heat, heat_discrete, logp_start, logp_end, snapshots);
    case 2: return run<2>(g, p, n, x, work, heat, heat_discrete, logp_start, logp_end, snapshots);
    case 3: return run<3>(g, p, n, x, work, heat, heat_discrete, logp_start, logp_end, snapshots);
    case 4: return run<4>(g, p, n, x, work, heat, heat_discrete, logp_start, logp_end, snapshots);
    default: return run<0>(g, p, n, x, work, heat, heat_discrete, logp_start, logp_end, snapshots);
  }
}

void langevin_external_step_cpu(const LangevinParams& p, int64_t n, int64_t d, int64_t step, bool move, double* x,
                                const double* f, double* dx, double* heat) {
  parallel_for(n, 256, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      langevin_external_step(p, i, d, step, move, x + i * d, f + i * d, dx + i * d, heat + i);
  });
}

}  // namespace toolbox
