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

// Particles [lo, hi) of a call, eight at a time in SIMD lanes (d = DIM <= 4): a group's states and outputs are
// gathered into lanes, advanced by the shared routine and scattered back. A last, partial group repeats particle
// hi - 1 in its spare lanes; they compute and store the same bits, so a particle's results do not depend on its
// lane, its group or the batch. AVX-512 / AVX2 clones picked at load time (no FMA: the same bits as the default);
// flatten inlines the whole routine into each clone, so no 64-byte vector crosses a call between ISAs.
template <int DIM>
__attribute__((flatten, target_clones("avx512f", "avx2", "default"))) void lanes_steps(
    const GmmParams& g, const LangevinParams& p, int64_t lo, int64_t hi, int64_t begin, int64_t end, double* x,
    double* f, double* heat, double* heat_discrete, double* logp_start, double* logp_end, double* snapshots) {
  double* outputs[4] = {heat, heat_discrete, logp_start, logp_end};
  for (int64_t i0 = lo; i0 < hi; i0 += kLanes) {
    vec8l idx;
    for (int l = 0; l < kLanes; ++l) idx[l] = std::min<int64_t>(i0 + l, hi - 1);
    vec8d xs[DIM], fs[DIM], out[4];
    for (int l = 0; l < kLanes; ++l) {
      for (int j = 0; j < DIM; ++j) {
        xs[j][l] = x[idx[l] * DIM + j];
        fs[j][l] = f ? f[idx[l] * DIM + j] : 0.0;
      }
      for (int o = 0; o < 4; ++o) out[o][l] = outputs[o][idx[l]];
    }
    langevin_particle_steps<DIM, vec8d>(g, p, idx, begin, end, xs, fs, nullptr, &out[0], &out[1], &out[2], &out[3],
                                        snapshots);
    for (int l = 0; l < kLanes; ++l) {
      for (int j = 0; j < DIM; ++j) {
        x[idx[l] * DIM + j] = xs[j][l];
        if (f) f[idx[l] * DIM + j] = fs[j][l];
      }
      for (int o = 0; o < 4; ++o) outputs[o][idx[l]] = out[o][l];
    }
  }
}

template <int DIM>
void run(const GmmParams& g, const LangevinParams& p, int64_t n, double* x, double* work, double* heat,
         double* heat_discrete, double* logp_start, double* logp_end, double* snapshots, const Poll& poll) {
  if (n == 0) return;
  const int64_t d = g.dim, chunk = chunk_steps(g, n);
  std::vector<double> f(p.steps > chunk ? n * d : 0);  // the drift of each particle between chunks
  double* fp = f.empty() ? nullptr : f.data();
  int64_t begin = 0;
  do {
    const int64_t end = p.steps - begin > chunk ? begin + chunk : p.steps;
    // threads take whole lane groups, so no group is split between two threads
    parallel_for((n + kLanes - 1) / kLanes, 2, [&](int64_t g0, int64_t g1) {
      const int64_t lo = g0 * kLanes, hi = std::min(n, g1 * kLanes);
      if constexpr (DIM > 0) {
        lanes_steps<DIM>(g, p, lo, hi, begin, end, x, fp, heat, heat_discrete, logp_start, logp_end, snapshots);
      } else {  // d > 4: one particle at a time on its workspace
        for (int64_t i = lo; i < hi; ++i)
          langevin_particle_steps<0>(g, p, i, begin, end, x + i * d, fp ? fp + i * d : nullptr, work + i * 4 * d,
                                     heat + i, heat_discrete + i, logp_start + i, logp_end + i, snapshots);
      }
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
