// The one extension module, toolbox._core; each area adds its functions (OpenSpiel's one-file-per-area layout).
#include <pybind11/pybind11.h>

namespace py = pybind11;

void init_core(py::module_& m);
void init_entropy(py::module_& m);
void init_gpoe(py::module_& m);
void init_ises(py::module_& m);
void init_diffusion(py::module_& m);
void init_noisynn(py::module_& m);
void init_shaping(py::module_& m);
void init_choice(py::module_& m);
void init_entrocraft(py::module_& m);

PYBIND11_MODULE(_core, m) {
  m.doc() = "toolbox native kernels (C++ threads, optional CUDA)";
  init_core(m);
  init_entropy(m);
  init_gpoe(m);
  init_ises(m);
  init_diffusion(m);
  init_noisynn(m);
  init_shaping(m);
  init_choice(m);
  init_entrocraft(m);
}
