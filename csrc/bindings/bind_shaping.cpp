#include <cmath>
#include <cstdint>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "checks.h"
#include "toolbox/shaping.h"

namespace py = pybind11;
using namespace toolbox::bind;

namespace {

// Every row of `width` entries of a C-contiguous float64 array is a probability distribution (NaN fails).
void require_stochastic_rows(const py::array& arr, int64_t width, const char* message) {
  const double* x = cptr<double>(arr);
  for (int64_t row = 0; row < arr.size() / width; ++row) {
    double sum = 0.0;
    bool ok = true;
    for (int64_t j = 0; j < width; ++j) {
      ok &= x[row * width + j] >= 0.0 && x[row * width + j] <= 1.0;
      sum += x[row * width + j];
    }
    require(ok && std::abs(sum - 1.0) <= 1e-6, message);
  }
}

// R finite, every row P(.|s, a) a probability distribution, log_prior finite (any reference measure).
void check_model(const py::array& R, const py::array& P, const py::array& log_prior, int64_t S) {
  require(all_finite<double>(R), "R must be finite");
  require(all_finite<double>(log_prior), "log_prior must be finite (the reference measure pi0 > 0)");
  require_stochastic_rows(P, S, "P: every row P(.|s, a) must be a probability distribution");
}

// Each pi_h(.|s) finite, non-negative and summing to 1.
void check_policy(const py::array& policy, int64_t A) {
  require_stochastic_rows(policy, A, "policy: every pi_h(.|s) must be a probability distribution");
}

}  // namespace

void init_shaping(py::module_& m) {
  m.def("shaping_backward_induction",
        [](py::handle R_obj, py::handle P_obj, py::handle log_prior_obj, int64_t horizon, double temperature) {
          py::array R = require_array<double>(R_obj, "R", 3);
          const int64_t B = R.shape(0), S = R.shape(1), A = R.shape(2);
          require(S > 0 && A > 0, "R: the state and action axes must be non-empty");
          py::array P = require_array<double>(P_obj, "P", 4, {B, S, A, S});
          py::array log_prior = require_array<double>(log_prior_obj, "log_prior", 2, {S, A});
          require(horizon >= 1, "horizon must be >= 1");
          require(std::isfinite(temperature) && temperature >= 0.0, "temperature must be finite and >= 0");
          check_model(R, P, log_prior, S);
          py::array_t<double> Q({B, horizon, S, A}), V({B, horizon + 1, S});
          const double *r = cptr<double>(R), *p = cptr<double>(P), *lp = cptr<double>(log_prior);
          double *q = Q.mutable_data(), *v = V.mutable_data();
          const toolbox::Poll poll = signal_poll();
          {
            py::gil_scoped_release release;
            toolbox::shaping_backward_induction_cpu(r, p, lp, B, S, A, horizon, temperature, q, v, poll);
          }
          return py::make_tuple(Q, V);
        },
        py::arg("R"), py::arg("P"), py::arg("log_prior"), py::arg("horizon"), py::arg("temperature"),
        "Soft (T > 0) or hard (T = 0) finite-horizon backward induction of float64 R [B,S,A], P [B,S,A,S]: "
        "returns (Q [B,H,S,A], V [B,H+1,S]).");
  m.def("shaping_policy_evaluation",
        [](py::handle R_obj, py::handle P_obj, py::handle policy_obj, py::handle log_prior_obj, double temperature) {
          py::array R = require_array<double>(R_obj, "R", 3);
          const int64_t B = R.shape(0), S = R.shape(1), A = R.shape(2);
          require(S > 0 && A > 0, "R: the state and action axes must be non-empty");
          py::array P = require_array<double>(P_obj, "P", 4, {B, S, A, S});
          py::array policy = require_array<double>(policy_obj, "policy", 4, {B, -1, S, A});
          const int64_t H = policy.shape(1);
          require(H >= 1, "policy: the horizon axis must be non-empty");
          py::array log_prior = require_array<double>(log_prior_obj, "log_prior", 2, {S, A});
          require(std::isfinite(temperature) && temperature >= 0.0, "temperature must be finite and >= 0");
          check_model(R, P, log_prior, S);
          check_policy(policy, A);
          py::array_t<double> V({B, H + 1, S});
          const double *r = cptr<double>(R), *p = cptr<double>(P), *pi = cptr<double>(policy),
                       *lp = cptr<double>(log_prior);
          double* v = V.mutable_data();
          const toolbox::Poll poll = signal_poll();
          {
            py::gil_scoped_release release;
            toolbox::shaping_policy_evaluation_cpu(r, p, pi, lp, B, S, A, H, temperature, v, poll);
          }
          return V;
        },
        py::arg("R"), py::arg("P"), py::arg("policy"), py::arg("log_prior"), py::arg("temperature"),
        "Value V [B,H+1,S] of time-indexed policies [B,H,S,A] with the per-step penalty T*KL(pi || pi0).");
  m.def("shaping_backward_induction_cuda",
        [](uintptr_t R, uintptr_t P, uintptr_t log_prior, int64_t batch, int64_t states, int64_t actions,
           int64_t horizon, double temperature, uintptr_t Q, uintptr_t V, uintptr_t stream) {
          require(batch >= 0 && states > 0 && actions > 0 && horizon >= 1,
                  "batch must be >= 0, states and actions > 0, horizon >= 1");
          require(batch == 0 || (R && P && log_prior && Q && V), "a device pointer is null");
          require(std::isfinite(temperature) && temperature >= 0.0, "temperature must be finite and >= 0");
#if defined(TOOLBOX_WITH_CUDA)
          toolbox::shaping_backward_induction_cuda(R, P, log_prior, batch, states, actions, horizon, temperature, Q,
                                                   V, stream);
#else
          (void)R; (void)P; (void)log_prior; (void)Q; (void)V; (void)stream;
          no_cuda();
#endif
        },
        py::arg("R_ptr"), py::arg("P_ptr"), py::arg("log_prior_ptr"), py::arg("batch"), py::arg("states"),
        py::arg("actions"), py::arg("horizon"), py::arg("temperature"), py::arg("Q_ptr"), py::arg("V_ptr"),
        py::arg("cuda_stream"));
}
