#include <algorithm>
#include <vector>

#include "toolbox/diffusion.h"
#include "toolbox/parallel.h"

namespace toolbox {
namespace {

// Steps per chunk: about 2^23 particle-component-coordinate updates (tens of milliseconds), at least one.
int64_t chunk_steps(const GmmParams& g, int64_t n) {
  const int64_t per_step = std::max<int64_t>(1, n) * (g.components + 1) * g.dim;
  return std::max<int64_t>(1, (int64_t{1} << 23) / per_step);
}

template <int DIM>
void run(const GmmParams& g, const LangevinParams& p, int64_t n, double* x, double* work, double* heat,
         double* heat_discrete, double* logp_start, double* logp_end, double* snapshots, const Poll& poll) {
  if (n == 0) return;
  const int64_t d = g.dim, chunk = chunk_steps(g, n);
  std::vector<double> f(p.steps > chunk ? n * d : 0);  // the drift of each particle between chunks
  int64_t begin = 0;
  do {
    const int64_t end = p.steps - begin > chunk ? begin + chunk : p.steps;
    parallel_for(n, 16, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i)
        langevin_particle_steps<DIM>(g, p, i, begin, end, x + i * d, f.empty() ? nullptr : f.data() + i * d,
                                     DIM > 0 ? nullptr : work + i * 4 * d, heat + i, heat_discrete + i,
                                     logp_start + i, logp_end + i, snapshots);
    });
    begin = end;
    if (begin < p.steps && poll) poll();
  } while (begin < p.steps);
}

}  // namespace

void langevin_cpu(const GmmParams& g, const LangevinParams& p, int64_t n, double* x, double* work, double* heat,
                  double* heat_discrete, double* logp_start, double* logp_end, double* snapshots, const Poll& poll) {
  switch (g.dim) {
    case 1: return run<1>(g, p, n, x, work, heat, heat_discrete, logp_start, logp_end, snapshots, poll);
    case 2: return run<2>(g, p, n, x, work, heat, heat_discrete, logp_start, logp_end, snapshots, poll);
    case 3: return run<3>(g, p, n, x, work, heat, heat_discrete, logp_start, logp_end, snapshots, poll);
    case 4: return run<4>(g, p, n, x, work, heat, heat_discrete, logp_start, logp_end, snapshots, poll);
    default: return run<0>(g, p, n, x, work, heat, heat_discrete, logp_start, logp_end, snapshots, poll);
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
