#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "checks.h"
#include "toolbox/parallel.h"
#include "toolbox/philox.h"

#if defined(TOOLBOX_WITH_CUDA)
#include <cuda_runtime.h>
#endif

namespace py = pybind11;
using namespace toolbox::bind;

namespace {

py::dict build_info() {
  py::dict info;
#if defined(TOOLBOX_WITH_CUDA)
  info["cuda"] = true;
  info["cuda_version"] = std::string(TOOLBOX_CUDA_VERSION);
  info["cuda_archs"] = std::string(TOOLBOX_CUDA_ARCHS);
#else
  info["cuda"] = false;
  info["cuda_version"] = py::none();
  info["cuda_archs"] = py::none();
#endif
  info["threads"] = toolbox::num_threads();
  return info;
}

// (usable, device name or the reason it is not usable). Never throws: no driver is a normal answer.
py::tuple cuda_status() {
#if defined(TOOLBOX_WITH_CUDA)
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) return py::make_tuple(false, std::string(cudaGetErrorString(err)));
  if (count == 0) return py::make_tuple(false, std::string("no CUDA device"));
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  return py::make_tuple(true, std::string(prop.name));
#else
  return py::make_tuple(false, std::string("built without CUDA"));
#endif
}

}  // namespace

void init_core(py::module_& m) {
  m.def("build_info", &build_info, "What this build contains: CUDA, its version and architectures, threads.");
  m.def("cuda_status", &cuda_status, "(usable, device name or reason) for CUDA device 0.");
  m.def("philox4x32_10",
        [](uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
          const auto r = toolbox::philox4x32_10(c0, c1, c2, c3, k0, k1);
          return py::make_tuple(r.v[0], r.v[1], r.v[2], r.v[3]);
        },
        py::arg("c0"), py::arg("c1"), py::arg("c2"), py::arg("c3"), py::arg("k0"), py::arg("k1"),
        "One Philox4x32-10 block: four 32-bit words for counter (c0..c3) and key (k0, k1).");
  m.def("philox_uniform",
        [](uint64_t seed, uint32_t stream, uint64_t a0, uint64_t b, py::handle out_obj) {
          py::array out = require_array<double>(out_obj, "out", 1);
          const int64_t n = out.shape(0);
          double* dst = mptr<double>(out);
          py::gil_scoped_release release;
          toolbox::parallel_for((n + 3) / 4, 4096, [&](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) {
              double u[4];
              toolbox::philox_uniform4(seed, stream, a0 + static_cast<uint64_t>(i), b, u);
              for (int k = 0; k < 4 && 4 * i + k < n; ++k) dst[4 * i + k] = u[k];
            }
          });
        },
        py::arg("seed"), py::arg("stream"), py::arg("a0"), py::arg("b"), py::arg("out"),
        "Fill out[4i + k] with uniform k of counter (a0 + i, b) under (seed, stream).");
  m.def("philox_uniform_cuda",
        [](uint64_t seed, uint32_t stream, uint64_t a0, uint64_t b, int64_t n, uintptr_t out, uintptr_t cuda_stream) {
          require(n >= 0, "n must be non-negative");
          require(n == 0 || out != 0, "out_ptr is null");
#if defined(TOOLBOX_WITH_CUDA)
          toolbox::philox_uniform_cuda(seed, stream, a0, b, n, out, cuda_stream);
#else
          (void)seed; (void)stream; (void)a0; (void)b; (void)n; (void)out; (void)cuda_stream;
          no_cuda();
#endif
        },
        py::arg("seed"), py::arg("stream"), py::arg("a0"), py::arg("b"), py::arg("n"), py::arg("out_ptr"),
        py::arg("cuda_stream"), "CUDA twin of philox_uniform on a float64 device buffer.");
}
