#include <algorithm>
#include <cmath>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "checks.h"
#include "toolbox/diffusion.h"

namespace py = pybind11;
using namespace toolbox::bind;

namespace {

constexpr int64_t kMaxIndex = int64_t{1} << 62;  // Philox normal indices step * d and particle numbers stay below

// Enums, step size and index ranges shared by the fused run and the external-drift epilogue.
toolbox::LangevinParams checked_params(int direction, int scheme, double t_start, double h, int64_t steps, int64_t d,
                                       uint64_t seed, uint32_t stream, int64_t first_particle, int64_t n,
                                       int64_t snapshot_stride, int64_t total_particles) {
  require(direction >= 0 && direction <= 2, "direction must be 0 (forward), 1 (reverse) or 2 (flow)");
  require(scheme >= 0 && scheme <= 2, "scheme must be 0 (euler), 1 (exact OU) or 2 (heun)");
  require(scheme != toolbox::kExactOU || direction == toolbox::kForward, "the exact OU scheme is forward only");
  require(std::isfinite(t_start) && std::isfinite(h) && h > 0.0, "t_start must be finite and h > 0");
  require(steps >= 0 && first_particle >= 0 && snapshot_stride >= 0, "steps, first_particle, stride must be >= 0");
  require(d >= 1, "the dimension d must be >= 1");
  require(n >= 0 && first_particle <= kMaxIndex - n, "first_particle + n is too large");
  require(steps <= kMaxIndex / d, "steps * d is too large for the Philox noise index");
  return toolbox::LangevinParams{direction, scheme, t_start, h, steps, seed, stream, first_particle,
                                 snapshot_stride, total_particles};
}

// Physical time stays in [0, inf): forward starts at t_start >= 0, reverse and flow end at t_start - steps h >= 0
// (up to the rounding of h = (t_hi - t_lo) / steps). Returns the earliest time of the run.
double checked_times(const toolbox::LangevinParams& p) {
  require(p.t_start >= 0.0, "t_start must be >= 0 (physical time of the OU process)");
  const double span = p.h * static_cast<double>(p.steps);
  require(std::isfinite(p.t_start + span), "t_start + steps * h must be finite");
  if (p.direction == toolbox::kForward) return p.t_start;
  const double t_end = p.t_start - span;
  require(t_end >= -1e-12 * p.t_start, "a reverse or flow run must end at t >= 0: need steps * h <= t_start");
  return std::max(t_end, 0.0);
}

}  // namespace

void init_diffusion(py::module_& m) {
  m.def("langevin",
        [](py::handle means_obj, py::handle log_weights_obj, py::handle variances_obj, py::handle x_obj,
           int direction, int scheme, double t_start, double h, int64_t steps, uint64_t seed, uint32_t stream,
           int64_t first_particle, int64_t snapshot_stride, py::object snapshots_obj) {
          py::array means = require_array<double>(means_obj, "means", 2);
          const int64_t components = means.shape(0), dim = means.shape(1);
          require(components > 0 && dim > 0, "means: need at least one component and one dimension");
          py::array log_weights = require_array<double>(log_weights_obj, "log_weights", 1, {components});
          py::array variances = require_array<double>(variances_obj, "variances", 1, {components});
          const double* lw = cptr<double>(log_weights);
          const double* var = cptr<double>(variances);
          require(all_finite<double>(means), "means must be finite");
          double top = -INFINITY;
          for (int64_t k = 0; k < components; ++k) {
            require(var[k] >= 0.0 && std::isfinite(var[k]), "variances must be finite and >= 0");
            require(!std::isnan(lw[k]) && lw[k] < INFINITY, "log_weights must be < +inf (not NaN)");
            top = std::max(top, lw[k]);
          }
          double total_weight = 0.0;
          for (int64_t k = 0; k < components; ++k) total_weight += std::exp(lw[k] - top);
          require(std::isfinite(top) && std::abs(top + std::log(total_weight)) < 1e-6,
                  "log_weights must be normalised: logsumexp(log_weights) = 0");
          py::array x = require_array<double>(x_obj, "x", 2, {-1, dim});
          require(all_finite<double>(x), "x: start states must be finite");
          const int64_t n = x.shape(0);
          const auto p = checked_params(direction, scheme, t_start, h, steps, dim, seed, stream, first_particle, n,
                                        snapshot_stride, 0);
          const double t_min = checked_times(p);
          const double e2 = std::exp(-t_min) * std::exp(-t_min);
          for (int64_t k = 0; k < components; ++k)  // v_k(t) = 1 - e^-2t + var_k e^-2t, as gmm_logp_score
            require(1.0 - e2 + var[k] * e2 > 0.0, "a point-mass component (variance 0) has no density at t = 0: "
                                                   "the run must stay at t > 0");
          double* snapshots = nullptr;
          int64_t total = first_particle + n;
          if (snapshot_stride > 0) {
            py::array snap = require_array<double>(snapshots_obj, "snapshots", 3, {steps / snapshot_stride + 1, -1, dim});
            total = snap.shape(1);
            require(first_particle + n <= total, "snapshots: particle axis shorter than first_particle + n");
            snapshots = mptr<double>(snap);
          }
          auto params = p;
          params.total_particles = total;
          const toolbox::GmmParams g{cptr<double>(means), cptr<double>(log_weights), cptr<double>(variances),
                                     components, dim};
          py::array_t<double> heat(n), heat_discrete(n), logp_start(n), logp_end(n);
          std::vector<double> work(dim > toolbox::kLangevinRegisterDim ? n * 4 * dim : 0);
          double* xs = mptr<double>(x);
          double *hp = heat.mutable_data(), *hd = heat_discrete.mutable_data();
          double *l0 = logp_start.mutable_data(), *l1 = logp_end.mutable_data();
          const toolbox::Poll poll = signal_poll();
          {
            py::gil_scoped_release release;
            toolbox::langevin_cpu(g, params, n, xs, work.data(), hp, hd, l0, l1, snapshots, poll);
          }
          return py::make_tuple(heat, heat_discrete, logp_start, logp_end);
        },
        py::arg("means"), py::arg("log_weights"), py::arg("variances"), py::arg("x"), py::arg("direction"),
        py::arg("scheme"), py::arg("t_start"), py::arg("h"), py::arg("steps"), py::arg("seed"), py::arg("stream"),
        py::arg("first_particle") = 0, py::arg("snapshot_stride") = 0, py::arg("snapshots") = py::none(),
        "Fused Langevin run of float64 states x [n, d] in place under an isotropic-GMM score; returns (heat, "
        "heat_discrete, logp_start, logp_end) per particle. Snapshots [steps/stride + 1, N, d] are filled in place.");
  m.def("langevin_external_step",
        [](py::handle x_obj, py::handle f_obj, py::handle dx_obj, py::handle heat_obj, int direction, double h,
           int64_t step, bool move, uint64_t seed, uint32_t stream, int64_t first_particle) {
          py::array x = require_array<double>(x_obj, "x", 2);
          const int64_t n = x.shape(0), d = x.shape(1);
          py::array f = require_array<double>(f_obj, "f", 2, {n, d});
          py::array dx = require_array<double>(dx_obj, "dx", 2, {n, d});
          py::array heat = require_array<double>(heat_obj, "heat", 1, {n});
          require(step >= 0 && step < kMaxIndex, "step must be in [0, 2^62)");
          require(all_finite<double>(x) && all_finite<double>(f), "x and f must be finite");
          const auto p = checked_params(direction, toolbox::kEuler, 0.0, h, step + 1, d, seed, stream, first_particle,
                                        n, 0, 0);
          double *xs = mptr<double>(x), *dxs = mptr<double>(dx), *hs = mptr<double>(heat);
          const double* fs = cptr<double>(f);
          py::gil_scoped_release release;
          toolbox::langevin_external_step_cpu(p, n, d, step, move, xs, fs, dxs, hs);
        },
        py::arg("x"), py::arg("f"), py::arg("dx"), py::arg("heat"), py::arg("direction"), py::arg("h"),
        py::arg("step"), py::arg("move"), py::arg("seed"), py::arg("stream"), py::arg("first_particle") = 0,
        "Fused EM epilogue for an external drift f [n, d] at the current states x: closes the previous increment's "
        "heat, draws the step's Philox noise, moves x in place and opens the new increment's heat.");
  m.def("langevin_external_step_cuda",
        [](uintptr_t x, uintptr_t f, uintptr_t dx, uintptr_t heat, int64_t n, int64_t d, int direction, double h,
           int64_t step, bool move, uint64_t seed, uint32_t stream, int64_t first_particle, uintptr_t cuda_stream) {
          require(n >= 0 && d > 0, "need n >= 0 and d > 0");
          require(step >= 0 && step < kMaxIndex, "step must be in [0, 2^62)");
          require(n == 0 || (x && f && dx && heat), "a device pointer is null");
          const auto p = checked_params(direction, toolbox::kEuler, 0.0, h, step + 1, d, seed, stream, first_particle,
                                        n, 0, 0);
#if defined(TOOLBOX_WITH_CUDA)
          toolbox::langevin_external_step_cuda(p, n, d, step, move, x, f, dx, heat, cuda_stream);
#else
          (void)x; (void)f; (void)dx; (void)heat; (void)cuda_stream; (void)p; (void)move;
          no_cuda();
#endif
        },
        py::arg("x_ptr"), py::arg("f_ptr"), py::arg("dx_ptr"), py::arg("heat_ptr"), py::arg("n"), py::arg("d"),
        py::arg("direction"), py::arg("h"), py::arg("step"), py::arg("move"), py::arg("seed"), py::arg("stream"),
        py::arg("first_particle"), py::arg("cuda_stream"), "CUDA twin of langevin_external_step (device pointers).");
  m.def("langevin_cuda",
        [](uintptr_t means, uintptr_t log_weights, uintptr_t variances, int64_t components, int64_t dim, uintptr_t x,
           int64_t n, int direction, int scheme, double t_start, double h, int64_t steps, uint64_t seed,
           uint32_t stream, int64_t first_particle, int64_t snapshot_stride, int64_t total_particles, uintptr_t work,
           uintptr_t heat, uintptr_t heat_discrete, uintptr_t logp_start, uintptr_t logp_end, uintptr_t snapshots,
           uintptr_t cuda_stream) {
          require(components > 0 && dim > 0 && n >= 0, "need components > 0, dim > 0, n >= 0");
          require(dim <= toolbox::kLangevinRegisterDim || work != 0, "work buffer [n, 4d] needed for d > 4");
          require(n == 0 || (means && log_weights && variances && x && heat && heat_discrete && logp_start &&
                              logp_end), "a device pointer is null");
          const auto p = checked_params(direction, scheme, t_start, h, steps, dim, seed, stream, first_particle, n,
                                        snapshot_stride, total_particles);
          checked_times(p);
          require(snapshot_stride == 0 || (snapshots != 0 && first_particle + n <= total_particles),
                  "snapshots buffer missing or too short");
#if defined(TOOLBOX_WITH_CUDA)
          toolbox::langevin_cuda(means, log_weights, variances, components, dim, p, n, x, work, heat, heat_discrete,
                                 logp_start, logp_end, snapshots, cuda_stream);
#else
          (void)means; (void)log_weights; (void)variances; (void)x; (void)work; (void)heat; (void)heat_discrete;
          (void)logp_start; (void)logp_end; (void)snapshots; (void)cuda_stream; (void)p;
          no_cuda();
#endif
        },
        py::arg("means_ptr"), py::arg("log_weights_ptr"), py::arg("variances_ptr"), py::arg("components"),
        py::arg("dim"), py::arg("x_ptr"), py::arg("n"), py::arg("direction"), py::arg("scheme"), py::arg("t_start"),
        py::arg("h"), py::arg("steps"), py::arg("seed"), py::arg("stream"), py::arg("first_particle"),
        py::arg("snapshot_stride"), py::arg("total_particles"), py::arg("work_ptr"), py::arg("heat_ptr"),
        py::arg("heat_discrete_ptr"), py::arg("logp_start_ptr"), py::arg("logp_end_ptr"), py::arg("snapshots_ptr"),
        py::arg("cuda_stream"), "CUDA twin of langevin on float64 device buffers (one thread per particle).");
}
