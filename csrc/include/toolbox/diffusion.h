// Fused Langevin sampling for diffusion models (Yu & Huang, PRE 111, 014111): forward OU dX = -X dt + sqrt(2) dW,
// reverse SDE dY = [Y + 2 score] ds + sqrt(2) dW and probability-flow ODE dY = [Y + score] ds, with the score of an
// isotropic Gaussian mixture (Gaussian data, the paper's symmetric mixture, K components, or the empirical measure
// of a training set when every variance is 0). One particle per thread: state in registers (small d) or in a
// per-particle workspace, Philox noise keyed by (seed, stream, particle, step), and in the same pass the
// Stratonovich heat (medium entropy, trapezoid rule), its exact discrete-kernel counterpart and the endpoint
// log-densities. The per-particle routine below is shared verbatim by the C++ and CUDA kernels; on the CPU it runs
// eight particles at once in SIMD lanes for d <= 4.
#pragma once
#include <cmath>
#include <cstdint>

#include "toolbox/interrupt.h"
#include "toolbox/philox.h"
#if !defined(__CUDACC__)
#include "toolbox/simd.h"
#endif

namespace toolbox {

enum DiffusionDirection : int { kForward = 0, kReverse = 1, kFlow = 2 };
enum DiffusionScheme : int { kEuler = 0, kExactOU = 1, kHeun = 2 };

// Data p_0 = sum_k w_k N(mean_k, var_k I_d); its OU marginal at time t is sum_k w_k N(e^-t mean_k, v_k(t) I_d),
// v_k(t) = 1 - e^-2t + var_k e^-2t.
struct GmmParams {
  const double* means;        // [K, d]
  const double* log_weights;  // [K]
  const double* variances;    // [K], >= 0
  int64_t components;
  int64_t dim;
};

struct LangevinParams {
  int direction;            // DiffusionDirection
  int scheme;               // DiffusionScheme
  double t_start;           // physical time of the first state (forward: t_lo; reverse/flow: t_hi)
  double h;                 // step size > 0; physical time moves by +h (forward) or -h (reverse, flow)
  int64_t steps;
  uint64_t seed;
  uint32_t stream;
  int64_t first_particle;   // global index of particle 0 of this call (chunking keeps the noise)
  int64_t snapshot_stride;  // 0: no snapshots; else x after steps 0, s, 2s, ... (steps / s + 1 of them)
  int64_t total_particles;  // particle-axis length of the snapshot array
};

// The per-particle routine is written once for a lane type T: double (one particle: the CUDA kernel and d > 4 on
// the CPU) or vec8d (eight particles in SIMD lanes, toolbox/simd.h: the CPU kernel for d <= 4). Index<T> is the
// particle index type; the overloads below are the scalar side of the lane operations simd.h provides for vec8d.
template <class T> struct LaneIndex { using type = int64_t; };
#if !defined(__CUDACC__)
template <> struct LaneIndex<vec8d> { using type = vec8l; };
#endif
template <class T> using Index = typename LaneIndex<T>::type;

template <class T> TOOLBOX_HD T lane(double v) { return v; }  // v in every lane
#if !defined(__CUDACC__)
template <> inline vec8d lane<vec8d>(double v) { return splat(v); }
#endif

TOOLBOX_HD double lane_exp(double x) { return exp(x); }
TOOLBOX_HD double lane_log(double x) { return log(x); }
#if !defined(__CUDACC__)
inline vec8d lane_exp(vec8d x) { return vexp(x); }
inline vec8d lane_log(vec8d x) { return vlog(x); }
#endif
TOOLBOX_HD void philox_normal4(uint64_t seed, uint32_t stream, int64_t particle, uint64_t b, double z[4]) {
  philox_normal4(seed, stream, static_cast<uint64_t>(particle), b, z);
}
// base[index] = value, per lane (lanes that share an index carry the same value).
TOOLBOX_HD void lane_store(double* base, int64_t index, double value) { base[index] = value; }
#if !defined(__CUDACC__)
inline void lane_store(double* base, vec8l index, vec8d value) {
  for (int l = 0; l < kLanes; ++l) base[index[l]] = value[l];
}
#endif

// The particle's k-th standard normal (k = step * d + j for coordinate j): normal k mod 4 of Philox counter
// (particle, k / 4). Called with k = 0, 1, 2, ... in order, so z[4] caches the current block of four.
template <class T>
TOOLBOX_HD T langevin_normal(const LangevinParams& p, Index<T> particle, uint64_t k, T z[4]) {
  if ((k & 3) == 0) philox_normal4(p.seed, p.stream, particle, k >> 2, z);
  return z[k & 3];
}

// log p_t(x); writes score(x, t) = grad log p_t(x) into out[d]. One pass over the components (online softmax:
// with e = exp(-|logit - m|), a larger logit rescales the sums by e and adds 1, a smaller one adds e; the same
// bits as exp(m - logit) and exp(logit - m) with one exp and no branch, so that SIMD lanes can take either side).
template <class T>
TOOLBOX_HD T gmm_logp_score(const GmmParams& g, const T* x, double t, T* out) {
  const int64_t d = g.dim;
  const double e = exp(-t), e2 = e * e;
  T m = lane<T>(-INFINITY), s = lane<T>(0.0);
  for (int64_t j = 0; j < d; ++j) out[j] = s;
  double var_k = NAN, v = 1.0, log_v = 0.0;  // v_k(t) and its log, recomputed only when var_k changes
  for (int64_t k = 0; k < g.components; ++k) {
    const double* mean = g.means + k * d;
    if (!(g.variances[k] == var_k)) {
      var_k = g.variances[k];
      v = 1.0 - e2 + var_k * e2;
      log_v = log(v);
    }
    T dist2 = lane<T>(0.0);
    for (int64_t j = 0; j < d; ++j) {
      const T r = x[j] - e * mean[j];
      dist2 += r * r;
    }
    const T logit = g.log_weights[k] - 0.5 * dist2 / v - 0.5 * static_cast<double>(d) * log_v;
    const T gap = logit - m;
    const auto larger = gap > 0.0;
    const T ex = lane_exp(larger ? -gap : gap);  // exp(-|logit - m|); exp(-inf) = 0 on the first component
    const T one = lane<T>(1.0), scale = larger ? ex : one, r = larger ? one : ex;
    m = larger ? logit : m;
    s = s * scale + r;
    for (int64_t j = 0; j < d; ++j) out[j] = out[j] * scale + r * (e * mean[j] - x[j]) / v;
  }
  for (int64_t j = 0; j < d; ++j) out[j] /= s;
  return m + lane_log(s) - 0.5 * static_cast<double>(d) * 1.8378770664093453;  // ln(2 pi)
}

// Drift at (x, t) into f[d]: forward -x; reverse x + 2 score; flow x + score. Returns log p_t(x) when the score
// was evaluated (reverse, flow), NAN for the forward drift (which needs no score).
template <class T>
TOOLBOX_HD T langevin_drift(const GmmParams& g, int direction, const T* x, double t, T* f) {
  const int64_t d = g.dim;
  if (direction == kForward) {
    for (int64_t j = 0; j < d; ++j) f[j] = -x[j];
    return lane<T>(NAN);
  }
  const T logp = gmm_logp_score(g, x, t, f);
  const double c = direction == kReverse ? 2.0 : 1.0;
  for (int64_t j = 0; j < d; ++j) f[j] = x[j] + c * f[j];
  return logp;
}

// Per-particle buffers: x (state), f (drift at x), dx (last increment), xt (Heun predictor). DIM > 0 keeps them
// in registers; DIM == 0 uses 4d doubles of the caller's workspace (scalar lanes only).
template <class T, int DIM>
struct ParticleBuffers {
  T x[DIM], f[DIM], dx[DIM], xt[DIM];
  TOOLBOX_HD ParticleBuffers(T*, int64_t) {}
};
template <class T>
struct ParticleBuffers<T, 0> {  // the workspace carved as x | f | dx | xt
  T *x, *f, *dx, *xt;
  TOOLBOX_HD ParticleBuffers(T* work, int64_t d) : x(work), f(work + d), dx(work + 2 * d), xt(work + 3 * d) {}
};

// Advance particle i (local index within this call; a vector of them for SIMD lanes) through steps [begin, end)
// of p.steps. x_io[d] holds the start state on entry to step 0 and the state after step end - 1 on return. heat:
// trapezoid Stratonovich sum of f . dx; heat_discrete: the log-ratio of the actual Gaussian transition kernels
// (EM: heat + h/4 (|f_end|^2 - |f_start|^2); exact OU: equal to heat; Heun: NaN). Between chunks (end < p.steps)
// f_io[d] keeps the drift and the outputs keep the running values (heat, heat_discrete: |f_start|^2, logp_end: the
// last log p), so a run split into chunks computes the same bits as one call over [0, p.steps).
template <int DIM, class T = double>
TOOLBOX_HD void langevin_particle_steps(const GmmParams& g, const LangevinParams& p, Index<T> i, int64_t begin,
                                        int64_t end, T* x_io, T* f_io, T* work, T* heat_out,
                                        T* heat_discrete_out, T* logp_start_out, T* logp_end_out,
                                        double* snapshots) {
  const int64_t d = DIM > 0 ? DIM : g.dim;
  ParticleBuffers<T, DIM> b(work, d);
  const Index<T> particle = p.first_particle + i;
  const double sign = p.direction == kForward ? 1.0 : -1.0;
  const double noise = p.direction == kFlow ? 0.0 : sqrt(2.0 * p.h);
  const double decay = exp(-p.h), ou_noise = sqrt(1.0 - exp(-2.0 * p.h));
  const bool draws = p.scheme == kExactOU || noise > 0.0;
  T z[4];
  uint64_t k = draws ? static_cast<uint64_t>(begin) * static_cast<uint64_t>(d) : 0;  // index of the next normal
  if (k & 3) philox_normal4(p.seed, p.stream, particle, k >> 2, z);
  for (int64_t j = 0; j < d; ++j) b.x[j] = x_io[j];
  T logp, f2_start, heat;
  if (begin == 0) {
    logp = langevin_drift(g, p.direction, b.x, p.t_start, b.f);
    *logp_start_out = p.direction == kForward ? gmm_logp_score(g, b.x, p.t_start, b.dx) : logp;
    f2_start = lane<T>(0.0);
    for (int64_t j = 0; j < d; ++j) f2_start += b.f[j] * b.f[j];
    heat = lane<T>(0.0);
    if (p.snapshot_stride > 0)
      for (int64_t j = 0; j < d; ++j) lane_store(snapshots, particle * d + j, b.x[j]);
  } else {
    for (int64_t j = 0; j < d; ++j) b.f[j] = f_io[j];
    logp = *logp_end_out;
    f2_start = *heat_discrete_out;
    heat = *heat_out;
  }
  for (int64_t step = begin; step < end; ++step) {
    const double t_next = p.t_start + sign * p.h * static_cast<double>(step + 1);
    if (p.scheme == kExactOU) {  // X' = e^-h X + sqrt(1 - e^-2h) xi (forward only)
      for (int64_t j = 0; j < d; ++j)
        b.dx[j] = (decay - 1.0) * b.x[j] + ou_noise * langevin_normal(p, particle, k++, z);
    } else if (p.scheme == kHeun) {  // predictor with the step's noise, trapezoid drift corrector, same noise
      for (int64_t j = 0; j < d; ++j) {
        b.xt[j] = b.x[j] + b.f[j] * p.h;
        if (noise > 0.0) b.xt[j] += noise * langevin_normal(p, particle, k++, z);
      }
      langevin_drift(g, p.direction, b.xt, t_next, b.dx);
      for (int64_t j = 0; j < d; ++j)
        b.dx[j] = 0.5 * (b.f[j] + b.dx[j]) * p.h + (b.xt[j] - b.x[j] - b.f[j] * p.h);
    } else if (p.direction == kFlow) {  // Euler step of the probability-flow ODE (no noise)
      for (int64_t j = 0; j < d; ++j) b.dx[j] = b.f[j] * p.h;
    } else {  // Euler-Maruyama
      for (int64_t j = 0; j < d; ++j) b.dx[j] = b.f[j] * p.h + noise * langevin_normal(p, particle, k++, z);
    }
    T work_in = lane<T>(0.0);
    for (int64_t j = 0; j < d; ++j) {
      work_in += b.f[j] * b.dx[j];
      b.x[j] += b.dx[j];
    }
    logp = langevin_drift(g, p.direction, b.x, t_next, b.f);
    for (int64_t j = 0; j < d; ++j) work_in += b.f[j] * b.dx[j];
    heat += 0.5 * work_in;
    if (p.snapshot_stride > 0 && (step + 1) % p.snapshot_stride == 0) {
      double* snap = snapshots + ((step + 1) / p.snapshot_stride) * p.total_particles * d;
      for (int64_t j = 0; j < d; ++j) lane_store(snap, particle * d + j, b.x[j]);
    }
  }
  for (int64_t j = 0; j < d; ++j) x_io[j] = b.x[j];
  if (end < p.steps) {
    for (int64_t j = 0; j < d; ++j) f_io[j] = b.f[j];
    *logp_end_out = logp;
    *heat_discrete_out = f2_start;
    *heat_out = heat;
    return;
  }
  const double t = p.steps > 0 ? p.t_start + sign * p.h * static_cast<double>(p.steps) : p.t_start;
  T f2_end = lane<T>(0.0);
  for (int64_t j = 0; j < d; ++j) f2_end += b.f[j] * b.f[j];
  *logp_end_out = p.direction == kForward ? gmm_logp_score(g, b.x, t, b.dx) : logp;
  *heat_out = heat;
  *heat_discrete_out = p.scheme == kEuler    ? heat + 0.25 * p.h * (f2_end - f2_start)
                       : p.scheme == kExactOU ? heat
                                              : lane<T>(NAN);
}

// All steps of particle i in one call (the CUDA kernel's per-thread routine).
template <int DIM>
TOOLBOX_HD void langevin_particle(const GmmParams& g, const LangevinParams& p, int64_t i, double* x_io,
                                  double* work, double* heat_out, double* heat_discrete_out,
                                  double* logp_start_out, double* logp_end_out, double* snapshots) {
  langevin_particle_steps<DIM, double>(g, p, i, 0, p.steps, x_io, nullptr, work, heat_out, heat_discrete_out,
                                       logp_start_out, logp_end_out, snapshots);
}

// The fused epilogue for an external drift f (e.g. x + 2 s_theta(x, t) from a network run in torch), one EM step
// of particle i: close the heat of the previous increment with f at the current state (step > 0), then (move) draw
// the step's noise (the same Philox layout as langevin_particle), move, and open the heat of the new increment.
TOOLBOX_HD void langevin_external_step(const LangevinParams& p, int64_t i, int64_t d, int64_t step, bool move,
                                       double* x, const double* f, double* dx, double* heat) {
  double work_in = 0.0;
  if (step > 0)
    for (int64_t j = 0; j < d; ++j) work_in += f[j] * dx[j];
  if (move) {
    const double noise = p.direction == kFlow ? 0.0 : sqrt(2.0 * p.h);
    const uint64_t particle = static_cast<uint64_t>(p.first_particle + i);
    double z[4] = {0.0, 0.0, 0.0, 0.0};
    for (int64_t j = 0; j < d; ++j) {
      const uint64_t k = static_cast<uint64_t>(step) * static_cast<uint64_t>(d) + static_cast<uint64_t>(j);
      if (noise > 0.0 && (j == 0 || (k & 3) == 0)) philox_normal4(p.seed, p.stream, particle, k >> 2, z);
      dx[j] = f[j] * p.h + noise * z[k & 3];
      x[j] += dx[j];
      work_in += f[j] * dx[j];
    }
  }
  *heat += 0.5 * work_in;
}

void langevin_external_step_cpu(const LangevinParams& p, int64_t n, int64_t d, int64_t step, bool move, double* x,
                                const double* f, double* dx, double* heat);

#if defined(TOOLBOX_WITH_CUDA)
void langevin_external_step_cuda(const LangevinParams& p, int64_t n, int64_t d, int64_t step, bool move,
                                 uintptr_t x, uintptr_t f, uintptr_t dx, uintptr_t heat, uintptr_t stream);
#endif

// x: [n, d] start states in, end states out (particles first_particle .. first_particle + n). work: [n, 4d]
// doubles, used when d > 4. snapshots: null or [steps / stride + 1, total_particles, d]. The steps run in chunks
// of about 2^23 particle-component-coordinate updates with `poll` (toolbox/interrupt.h) between chunks.
void langevin_cpu(const GmmParams& g, const LangevinParams& p, int64_t n, double* x, double* work, double* heat,
                  double* heat_discrete, double* logp_start, double* logp_end, double* snapshots,
                  const Poll& poll = nullptr);

#if defined(TOOLBOX_WITH_CUDA)
// Same contract with device pointers; the GMM arrays are device pointers too.
void langevin_cuda(uintptr_t means, uintptr_t log_weights, uintptr_t variances, int64_t components, int64_t dim,
                   const LangevinParams& p, int64_t n, uintptr_t x, uintptr_t work, uintptr_t heat,
                   uintptr_t heat_discrete, uintptr_t logp_start, uintptr_t logp_end, uintptr_t snapshots,
                   uintptr_t stream);
#endif

// Largest d that keeps the per-particle state in registers (a template instance per value).
constexpr int64_t kLangevinRegisterDim = 4;

}  // namespace toolbox
