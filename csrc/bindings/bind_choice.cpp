// choice_effects (numpy, C++ threads) and choice_effects_cuda (device pointers) for toolbox.choice.misspec.
#include <algorithm>
#include <cmath>
#include <string>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "checks.h"
#include "toolbox/choice.h"

namespace py = pybind11;
using namespace toolbox::bind;

namespace {

void check_sizes(int64_t trials, int64_t options, int64_t dim, int64_t hypotheses) {
  require(trials >= 0, "trials must be >= 0");
  require(options > 0, "features: the options axis is empty");
  require(dim > 0 && dim <= toolbox::kChoiceMaxDim,
          "features: dim must be in 1.." + std::to_string(toolbox::kChoiceMaxDim));
  require(hypotheses > 0, "thetas: no reward hypotheses");
}

// A normalised prior in log space: entries -inf (weight 0) or finite, logsumexp = 0.
void check_log_prior(const double* lp, int64_t k) {
  double top = -INFINITY;
  for (int64_t i = 0; i < k; ++i) {
    require(!std::isnan(lp[i]) && lp[i] < INFINITY, "log_prior: entries must be finite or -inf");
    top = std::max(top, lp[i]);
  }
  require(top > -INFINITY, "log_prior: every hypothesis has prior 0");
  double sum = 0.0;
  for (int64_t i = 0; i < k; ++i) sum += std::exp(lp[i] - top);
  require(std::abs(top + std::log(sum)) < 1e-6, "log_prior must be normalised: logsumexp(log_prior) = 0");
}

}  // namespace

void init_choice(py::module_& m) {
  m.def("choice_effects",
        [](py::handle features_obj, py::handle assumed_obj, py::handle truth_obj, py::handle star_obj,
           py::handle thetas_obj, py::handle log_prior_obj, double beta) {
          py::array features = require_array<double>(features_obj, "features", 3);
          const int64_t trials = features.shape(0), options = features.shape(1), dim = features.shape(2);
          py::array thetas = require_array<double>(thetas_obj, "thetas", 2, {-1, dim});
          const int64_t hypotheses = thetas.shape(0);
          check_sizes(trials, options, dim, hypotheses);
          py::array assumed = require_array<uint8_t>(assumed_obj, "assumed", 2, {trials, options});
          py::array truth = require_array<uint8_t>(truth_obj, "truth", 2, {trials, options});
          py::array star = require_array<int64_t>(star_obj, "star", 1, {trials});
          py::array log_prior = require_array<double>(log_prior_obj, "log_prior", 1, {hypotheses});
          require(std::isfinite(beta) && beta > 0, "beta must be positive and finite");
          require(all_finite<double>(features) && all_finite<double>(thetas), "features and thetas must be finite");
          check_log_prior(cptr<double>(log_prior), hypotheses);
          const int64_t* s = cptr<int64_t>(star);
          const uint8_t *h = cptr<uint8_t>(truth), *r = cptr<uint8_t>(assumed);
          for (int64_t t = 0; t < trials; ++t) {
            require(s[t] >= 0 && s[t] < hypotheses, "star: index out of range [0, hypotheses)");
            bool any_h = false, any_r = false;
            for (int64_t u = 0; u < options; ++u) {
              any_h = any_h || h[t * options + u];
              any_r = any_r || r[t * options + u];
            }
            require(any_h, "truth: a true choice set is empty");
            require(any_r, "assumed: an assumed choice set is empty");
          }
          py::array_t<double> out({trials, int64_t{toolbox::kChoiceOutputs}});
          py::array_t<double> work({std::max<int64_t>(trials, 1), hypotheses});
          toolbox::ChoiceEffectsArgs a;
          a.trials = trials;
          a.options = options;
          a.dim = dim;
          a.hypotheses = hypotheses;
          a.features = cptr<double>(features);
          a.assumed = r;
          a.truth = h;
          a.star = s;
          a.thetas = cptr<double>(thetas);
          a.log_prior = cptr<double>(log_prior);
          a.beta = beta;
          a.log_z = work.mutable_data();
          a.out = out.mutable_data();
          {
            py::gil_scoped_release release;
            toolbox::choice_effects_cpu(a);
          }
          return out;
        },
        py::arg("features"), py::arg("assumed"), py::arg("truth"), py::arg("star"), py::arg("thetas"),
        py::arg("log_prior"), py::arg("beta"),
        "Exact expected misspecification effects per trial: float64 features [T, n, d], uint8 masks [T, n], "
        "int64 star [T], thetas [K, d], log_prior [K] -> [T, 6] (P_mis, P_cor, H_mis, H_cor, regret_mis, "
        "regret_cor).");
  m.def("choice_effects_cuda",
        [](uintptr_t features, uintptr_t assumed, uintptr_t truth, uintptr_t star, uintptr_t thetas,
           uintptr_t log_prior, double beta, int64_t trials, int64_t options, int64_t dim, int64_t hypotheses,
           uintptr_t log_z, uintptr_t out, uintptr_t stream) {
          check_sizes(trials, options, dim, hypotheses);
          require(std::isfinite(beta) && beta > 0, "beta must be positive and finite");
          require(trials == 0 || (features && assumed && truth && star && thetas && log_prior && log_z && out),
                  "a device pointer is null");
#if defined(TOOLBOX_WITH_CUDA)
          toolbox::ChoiceEffectsArgs a;
          a.trials = trials;
          a.options = options;
          a.dim = dim;
          a.hypotheses = hypotheses;
          a.features = reinterpret_cast<const double*>(features);
          a.assumed = reinterpret_cast<const uint8_t*>(assumed);
          a.truth = reinterpret_cast<const uint8_t*>(truth);
          a.star = reinterpret_cast<const int64_t*>(star);
          a.thetas = reinterpret_cast<const double*>(thetas);
          a.log_prior = reinterpret_cast<const double*>(log_prior);
          a.beta = beta;
          a.log_z = reinterpret_cast<double*>(log_z);
          a.out = reinterpret_cast<double*>(out);
          toolbox::choice_effects_cuda(a, stream);
#else
          (void)features; (void)assumed; (void)truth; (void)star; (void)thetas; (void)log_prior; (void)log_z;
          (void)out; (void)stream;
          no_cuda();
#endif
        },
        py::arg("features_ptr"), py::arg("assumed_ptr"), py::arg("truth_ptr"), py::arg("star_ptr"),
        py::arg("thetas_ptr"), py::arg("log_prior_ptr"), py::arg("beta"), py::arg("trials"), py::arg("options"),
        py::arg("dim"), py::arg("hypotheses"), py::arg("log_z_ptr"), py::arg("out_ptr"), py::arg("cuda_stream"),
        "CUDA version of choice_effects on device pointers (float64 / uint8 / int64), on the given stream; the "
        "star indices and both sets must be valid (checked by the caller).");
}
