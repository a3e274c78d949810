// gpoe_fuse (numpy, C++ threads) and gpoe_fuse_cuda (device pointers) for toolbox.gpoe.fusion.
#include <cmath>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "checks.h"
#include "toolbox/gpoe.h"

namespace py = pybind11;
using namespace toolbox::bind;

namespace {

// A C-contiguous array of dtype T broadcastable to [experts, points] (rank 2) or [points] (rank 1):
// each axis is full size or 1. Returns (pointer, stride per expert, stride per point).
template <class T>
std::tuple<const T*, int64_t, int64_t> broadcast(const py::handle& obj, const char* name, int64_t experts,
                                                 int64_t points, bool per_expert) {
  if (!py::isinstance<py::array>(obj)) throw py::value_error(std::string(name) + ": expected a numpy array");
  const int ndim = py::reinterpret_borrow<py::array>(obj).ndim();
  require(ndim == 1 || (per_expert && ndim == 2),
          std::string(name) + (per_expert ? ": expected shape [points], [1], [M, points] or [M|1, 1|points]"
                                          : ": expected shape [points] or [1]"));
  py::array arr = require_array<T>(obj, name, ndim);
  const int64_t p = arr.shape(ndim - 1), e = ndim == 2 ? arr.shape(0) : 1;
  require((p == points || p == 1) && (e == experts || e == 1),
          std::string(name) + ": shape does not broadcast to the experts' [M, points]");
  const int64_t stride_p = p == 1 ? 0 : 1;
  const int64_t stride_e = e == 1 ? 0 : p;
  return {cptr<T>(arr), stride_e, stride_p};
}

// Every element of a small parameter array satisfies `ok` (NaN fails any comparison).
template <class T, class Ok>
bool all_of(const py::handle& obj, Ok ok) {
  const py::array arr = py::reinterpret_borrow<py::array>(obj);
  const T* p = cptr<T>(arr);
  for (int64_t i = 0; i < arr.size(); ++i)
    if (!ok(static_cast<double>(p[i]))) return false;
  return true;
}

template <class T>
py::tuple fuse(py::handle mean_obj, py::handle var_obj, py::handle weight_prior_obj, py::handle prior_var_obj,
               py::object prior_mean_obj, int weight, int combine, double eps, bool with_stats) {
  py::array mean = require_array<T>(mean_obj, "mean", 2);
  const int64_t experts = mean.shape(0), points = mean.shape(1);
  py::array var = require_array<T>(var_obj, "var", 2, {experts, points});
  require(weight == toolbox::kWeightOne || weight == toolbox::kWeightEntropy, "weight must be 0 (one) or 1 (entropy)");
  require(combine >= toolbox::kCombineProduct && combine <= toolbox::kCombinePriorCorrected,
          "combine must be 0 (product), 1 (normalised) or 2 (prior-corrected)");
  require(eps >= 0.0 && eps < INFINITY, "eps must be finite and >= 0");
  toolbox::GpoeFuseArgs<T> a;
  a.experts = experts;
  a.points = points;
  a.mean = cptr<T>(mean);
  a.var = cptr<T>(var);
  std::tie(a.weight_prior, a.wp_stride_e, a.wp_stride_p) = broadcast<T>(weight_prior_obj, "weight_prior", experts,
                                                                         points, true);
  int64_t unused;
  std::tie(a.prior_var, unused, a.pv_stride) = broadcast<T>(prior_var_obj, "prior_var", 1, points, false);
  if (!prior_mean_obj.is_none())
    std::tie(a.prior_mean, unused, a.pm_stride) = broadcast<T>(prior_mean_obj, "prior_mean", 1, points, false);
  // The prior is returned where fusion falls back, so it must be a finite Gaussian; v** of the weights >= 0.
  require(all_of<T>(prior_var_obj, [](double v) { return v > 0.0 && v < INFINITY; }),
          "prior_var must be finite and > 0");
  require(prior_mean_obj.is_none() || all_of<T>(prior_mean_obj, [](double m) { return std::isfinite(m); }),
          "prior_mean must be finite");
  require(all_of<T>(weight_prior_obj, [](double v) { return v >= 0.0 && v <= INFINITY; }),
          "weight_prior must be >= 0 (not NaN)");
  a.weight = weight;
  a.combine = combine;
  a.eps = eps;
  py::array_t<T> out_mean(points), out_var(points);
  py::array_t<uint8_t> fallback(points);
  a.out_mean = out_mean.mutable_data();
  a.out_var = out_var.mutable_data();
  a.out_fallback = fallback.mutable_data();
  py::object stats = py::none();
  if (with_stats) {
    py::array_t<double> s({int64_t{4}, points});
    a.out_stats = s.mutable_data();
    stats = s;
  }
  {
    py::gil_scoped_release release;
    toolbox::gpoe_fuse_cpu(a);
  }
  return py::make_tuple(out_mean, out_var, fallback, stats);
}

}  // namespace

void init_gpoe(py::module_& m) {
  m.def("gpoe_fuse",
        [](py::handle mean, py::handle var, py::handle weight_prior, py::handle prior_var, py::object prior_mean,
           int weight, int combine, double eps, bool with_stats) {
          if (py::isinstance<py::array>(mean) && py::reinterpret_borrow<py::array>(mean).dtype().is(
                                                     py::dtype::of<double>()))
            return fuse<double>(mean, var, weight_prior, prior_var, prior_mean, weight, combine, eps, with_stats);
          return fuse<float>(mean, var, weight_prior, prior_var, prior_mean, weight, combine, eps, with_stats);
        },
        py::arg("mean"), py::arg("var"), py::arg("weight_prior"), py::arg("prior_var"), py::arg("prior_mean"),
        py::arg("weight"), py::arg("combine"), py::arg("eps"), py::arg("with_stats") = false,
        "Fuse Gaussian experts [M, N] (float32 or float64, all inputs one dtype) into (mean, var, fallback, "
        "stats [4, N] or None); see toolbox/gpoe.h.");
  m.def("gpoe_fuse_cuda",
        [](int dtype, int64_t experts, int64_t points, uintptr_t mean, uintptr_t var, uintptr_t weight_prior,
           int64_t wp_stride_e, int64_t wp_stride_p, uintptr_t prior_var, int64_t pv_stride, uintptr_t prior_mean,
           int64_t pm_stride, int weight, int combine, double eps, uintptr_t out_mean, uintptr_t out_var,
           uintptr_t out_fallback, uintptr_t out_stats, uintptr_t stream) {
          require(dtype == 0 || dtype == 1, "dtype must be 0 (float32) or 1 (float64)");
          require(experts >= 0 && points >= 0, "experts and points must be non-negative");
          require(weight == toolbox::kWeightOne || weight == toolbox::kWeightEntropy, "weight must be 0 or 1");
          require(combine >= 0 && combine <= 2, "combine must be 0, 1 or 2");
          require(eps >= 0.0 && eps < INFINITY, "eps must be finite and >= 0");
          require(mean && var && weight_prior && prior_var && out_mean && out_var, "a required pointer is null");
#if defined(TOOLBOX_WITH_CUDA)
          auto run = [&](auto tag) {
            using T = decltype(tag);
            toolbox::GpoeFuseArgs<T> a;
            a.experts = experts;
            a.points = points;
            a.mean = reinterpret_cast<const T*>(mean);
            a.var = reinterpret_cast<const T*>(var);
            a.weight_prior = reinterpret_cast<const T*>(weight_prior);
            a.wp_stride_e = wp_stride_e;
            a.wp_stride_p = wp_stride_p;
            a.prior_var = reinterpret_cast<const T*>(prior_var);
            a.pv_stride = pv_stride;
            a.prior_mean = reinterpret_cast<const T*>(prior_mean);
            a.pm_stride = pm_stride;
            a.weight = weight;
            a.combine = combine;
            a.eps = eps;
            a.out_mean = reinterpret_cast<T*>(out_mean);
            a.out_var = reinterpret_cast<T*>(out_var);
            a.out_fallback = reinterpret_cast<uint8_t*>(out_fallback);
            a.out_stats = reinterpret_cast<double*>(out_stats);
            toolbox::gpoe_fuse_cuda(a, stream);
          };
          if (dtype == 0) run(float{}); else run(double{});
#else
          (void)wp_stride_e; (void)wp_stride_p; (void)pv_stride; (void)prior_mean; (void)pm_stride; (void)eps;
          (void)out_fallback; (void)out_stats; (void)stream;
          no_cuda();
#endif
        },
        py::arg("dtype"), py::arg("experts"), py::arg("points"), py::arg("mean_ptr"), py::arg("var_ptr"),
        py::arg("weight_prior_ptr"), py::arg("wp_stride_e"), py::arg("wp_stride_p"), py::arg("prior_var_ptr"),
        py::arg("pv_stride"), py::arg("prior_mean_ptr"), py::arg("pm_stride"), py::arg("weight"), py::arg("combine"),
        py::arg("eps"), py::arg("out_mean_ptr"), py::arg("out_var_ptr"), py::arg("out_fallback_ptr"),
        py::arg("out_stats_ptr"), py::arg("cuda_stream"),
        "CUDA twin of gpoe_fuse on device buffers (dtype 0 float32, 1 float64; out_fallback/out_stats may be 0).");
}
