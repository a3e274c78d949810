#include <cmath>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "checks.h"
#include "toolbox/noisynn.h"

namespace py = pybind11;
using namespace toolbox::bind;

namespace {

py::array matrix(const py::handle& obj) {
  py::array x = require_array<float>(obj, "x", 2);
  require(x.shape(0) > 0, "x: the mixed axis is empty");
  return x;
}

py::array keys_for(const py::handle& obj, int64_t rows) { return require_array<int64_t>(obj, "keys", 1, {rows}); }

void finite(float v, const char* message) { require(std::isfinite(v), message); }

}  // namespace

void init_noisynn(py::module_& m) {
  m.def("noisynn_mix_optimal",
        [](py::handle x_obj) {
          py::array x = matrix(x_obj);
          const int64_t k = x.shape(0), cols = x.shape(1);
          py::array_t<float> out({k, cols});
          const float* src = cptr<float>(x);
          float* dst = out.mutable_data();
          py::gil_scoped_release release;
          toolbox::noisynn_mix_optimal_cpu(src, k, cols, dst);
          return out;
        },
        py::arg("x"), "(x_i + sum_j x_j) / (K + 1) over the K rows of float32 x [K, M] (optimal Q, eq. 19).");
  m.def("noisynn_mix_circulant",
        [](py::handle x_obj, float alpha, int64_t shift) {
          py::array x = matrix(x_obj);
          finite(alpha, "alpha must be finite");
          const int64_t k = x.shape(0), cols = x.shape(1);
          py::array_t<float> out({k, cols});
          const float* src = cptr<float>(x);
          float* dst = out.mutable_data();
          py::gil_scoped_release release;
          toolbox::noisynn_mix_circulant_cpu(src, k, cols, alpha, shift, dst);
          return out;
        },
        py::arg("x"), py::arg("alpha"), py::arg("shift") = 1,
        "x_i + alpha (x_{(i + shift) mod K} - x_i) over the rows of float32 x [K, M] (circulant Q, eq. 17).");
  m.def("noisynn_gaussian",
        [](py::handle x_obj, py::handle keys_obj, uint64_t seed, uint32_t stream, float shift, float scale) {
          py::array x = matrix(x_obj);
          finite(shift, "shift must be finite");
          finite(scale, "scale must be finite");
          const int64_t b = x.shape(0), cols = x.shape(1);
          py::array keys = keys_for(keys_obj, b);
          py::array_t<float> out({b, cols});
          const float* src = cptr<float>(x);
          const int64_t* k = cptr<int64_t>(keys);
          float* dst = out.mutable_data();
          py::gil_scoped_release release;
          toolbox::noisynn_gaussian_cpu(src, k, b, cols, seed, stream, shift, scale, dst);
          return out;
        },
        py::arg("x"), py::arg("keys"), py::arg("seed"), py::arg("stream"), py::arg("shift"), py::arg("scale"),
        "x + shift + scale * z with z the Philox normals keyed by (keys[row], column / 4).");
  m.def("noisynn_impulse",
        [](py::handle x_obj, py::handle keys_obj, uint64_t seed, uint32_t stream, float p, float salt, float pepper) {
          py::array x = matrix(x_obj);
          const int64_t b = x.shape(0), cols = x.shape(1);
          py::array keys = keys_for(keys_obj, b);
          require(p >= 0.0f && p <= 1.0f, "p must be in [0, 1]");
          finite(salt, "salt must be finite");
          finite(pepper, "pepper must be finite");
          py::array_t<float> out({b, cols});
          py::array_t<uint8_t> kept({b, cols});
          const float* src = cptr<float>(x);
          const int64_t* k = cptr<int64_t>(keys);
          float* dst = out.mutable_data();
          uint8_t* keep = kept.mutable_data();
          {
            py::gil_scoped_release release;
            toolbox::noisynn_impulse_cpu(src, k, b, cols, seed, stream, p, salt, pepper, dst, keep);
          }
          return py::make_tuple(out, kept);
        },
        py::arg("x"), py::arg("keys"), py::arg("seed"), py::arg("stream"), py::arg("p"), py::arg("salt"),
        py::arg("pepper"), "Salt-and-pepper noise with keyed Philox uniforms; returns (out, kept mask).");
  m.def("noisynn_mix_optimal_cuda",
        [](uintptr_t x, int64_t k, int64_t cols, uintptr_t out, uintptr_t stream) {
          require(k > 0 && cols >= 0, "k must be > 0 and m >= 0");
          require(cols == 0 || (x && out), "a device pointer is null");
#if defined(TOOLBOX_WITH_CUDA)
          toolbox::noisynn_mix_optimal_cuda(x, k, cols, out, stream);
#else
          (void)x; (void)out; (void)stream;
          no_cuda();
#endif
        },
        py::arg("x_ptr"), py::arg("k"), py::arg("m"), py::arg("out_ptr"), py::arg("cuda_stream"));
  m.def("noisynn_mix_circulant_cuda",
        [](uintptr_t x, int64_t k, int64_t cols, float alpha, int64_t shift, uintptr_t out, uintptr_t stream) {
          require(k > 0 && cols >= 0, "k must be > 0 and m >= 0");
          require(cols == 0 || (x && out), "a device pointer is null");
          finite(alpha, "alpha must be finite");
#if defined(TOOLBOX_WITH_CUDA)
          toolbox::noisynn_mix_circulant_cuda(x, k, cols, alpha, shift, out, stream);
#else
          (void)x; (void)alpha; (void)shift; (void)out; (void)stream;
          no_cuda();
#endif
        },
        py::arg("x_ptr"), py::arg("k"), py::arg("m"), py::arg("alpha"), py::arg("shift"), py::arg("out_ptr"),
        py::arg("cuda_stream"));
  m.def("noisynn_gaussian_cuda",
        [](uintptr_t x, uintptr_t keys, int64_t b, int64_t cols, uint64_t seed, uint32_t stream, float shift,
           float scale, uintptr_t out, uintptr_t cuda_stream) {
          require(b > 0 && cols >= 0, "b must be > 0 and m >= 0");
          require(cols == 0 || (x && keys && out), "a device pointer is null");
          finite(shift, "shift must be finite");
          finite(scale, "scale must be finite");
#if defined(TOOLBOX_WITH_CUDA)
          toolbox::noisynn_gaussian_cuda(x, keys, b, cols, seed, stream, shift, scale, out, cuda_stream);
#else
          (void)x; (void)keys; (void)seed; (void)stream; (void)shift; (void)scale; (void)out; (void)cuda_stream;
          no_cuda();
#endif
        },
        py::arg("x_ptr"), py::arg("keys_ptr"), py::arg("b"), py::arg("m"), py::arg("seed"), py::arg("stream"),
        py::arg("shift"), py::arg("scale"), py::arg("out_ptr"), py::arg("cuda_stream"));
  m.def("noisynn_impulse_cuda",
        [](uintptr_t x, uintptr_t keys, int64_t b, int64_t cols, uint64_t seed, uint32_t stream, float p, float salt,
           float pepper, uintptr_t out, uintptr_t kept, uintptr_t cuda_stream) {
          require(b > 0 && cols >= 0, "b must be > 0 and m >= 0");
          require(p >= 0.0f && p <= 1.0f, "p must be in [0, 1]");
          require(cols == 0 || (x && keys && out && kept), "a device pointer is null");
          finite(salt, "salt must be finite");
          finite(pepper, "pepper must be finite");
#if defined(TOOLBOX_WITH_CUDA)
          toolbox::noisynn_impulse_cuda(x, keys, b, cols, seed, stream, p, salt, pepper, out, kept, cuda_stream);
#else
          (void)x; (void)keys; (void)seed; (void)stream; (void)salt; (void)pepper; (void)out; (void)kept;
          (void)cuda_stream;
          no_cuda();
#endif
        },
        py::arg("x_ptr"), py::arg("keys_ptr"), py::arg("b"), py::arg("m"), py::arg("seed"), py::arg("stream"),
        py::arg("p"), py::arg("salt"), py::arg("pepper"), py::arg("out_ptr"), py::arg("kept_ptr"),
        py::arg("cuda_stream"));
}
