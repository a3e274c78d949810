// Validation at the pybind11 boundary: wrong dtype, rank, shape or a non-contiguous array is a ValueError.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "toolbox/interrupt.h"

namespace toolbox::bind {

namespace py = pybind11;

// A C-contiguous array of dtype T and rank `ndim`; shape entries of -1 are free, others must match.
template <class T>
py::array require_array(const py::handle& obj, const char* name, int ndim, std::initializer_list<int64_t> shape = {}) {
  if (!py::isinstance<py::array>(obj)) throw py::value_error(std::string(name) + ": expected a numpy array");
  auto arr = py::reinterpret_borrow<py::array>(obj);
  if (!arr.dtype().is(py::dtype::of<T>()))
    throw py::value_error(std::string(name) + ": expected dtype " + std::string(py::str(py::dtype::of<T>())) +
                          ", got " + std::string(py::str(arr.dtype())));
  if (arr.ndim() != ndim)
    throw py::value_error(std::string(name) + ": expected " + std::to_string(ndim) + " dimensions, got " +
                          std::to_string(arr.ndim()));
  if (!(arr.flags() & py::array::c_style)) throw py::value_error(std::string(name) + ": array must be C-contiguous");
  int axis = 0;
  for (int64_t want : shape) {
    if (want >= 0 && arr.shape(axis) != want)
      throw py::value_error(std::string(name) + ": axis " + std::to_string(axis) + " has size " +
                            std::to_string(arr.shape(axis)) + ", expected " + std::to_string(want));
    ++axis;
  }
  return arr;
}

template <class T>
const T* cptr(const py::array& a) { return static_cast<const T*>(a.data()); }

template <class T>
T* mptr(py::array& a) { return static_cast<T*>(a.mutable_data()); }

// Takes a C string so that a check in a hot loop builds no std::string unless it fails.
inline void require(bool ok, const char* message) {
  if (!ok) throw py::value_error(message);
}

inline void require(bool ok, const std::string& message) {
  if (!ok) throw py::value_error(message);
}

// Every element finite (NaN and +-inf are nonsense for parameters and states).
template <class T>
bool all_finite(const py::array& a) {
  const T* p = cptr<T>(a);
  bool ok = true;
  for (int64_t i = 0; i < a.size(); ++i) ok &= std::isfinite(p[i]);
  return ok;
}

// The poll for long kernels (toolbox/interrupt.h): called with the GIL released, it takes the GIL and raises the
// pending signal's exception (Ctrl-C -> KeyboardInterrupt).
inline toolbox::Poll signal_poll() {
  return [] {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  };
}

[[noreturn]] inline void no_cuda() { throw std::runtime_error("toolbox._core was built without CUDA"); }

}  // namespace toolbox::bind
