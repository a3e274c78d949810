#include <algorithm>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "checks.h"
#include "toolbox/entropy.h"

namespace py = pybind11;
using namespace toolbox::bind;

namespace {

// Optional int64 labels of shape [rows], each in [0, vocab).
const int64_t* checked_labels(const py::object& obj, int64_t rows, int64_t vocab) {
  if (obj.is_none()) return nullptr;
  py::array labels = require_array<int64_t>(obj, "labels", 1, {rows});
  const int64_t* y = cptr<int64_t>(labels);
  for (int64_t r = 0; r < rows; ++r)
    if (y[r] < 0 || y[r] >= vocab) throw py::value_error("labels: index out of range [0, vocab)");
  return y;
}

const float* optional_rows(const py::object& obj, const char* name, int64_t rows) {
  if (obj.is_none()) return nullptr;
  return cptr<float>(require_array<float>(obj, name, 1, {rows}));
}

}  // namespace

void init_entropy(py::module_& m) {
  m.def("row_entropy_forward",
        [](py::handle logits_obj, py::object labels_obj) {
          py::array logits = require_array<float>(logits_obj, "logits", 2);
          const int64_t rows = logits.shape(0), vocab = logits.shape(1);
          require(vocab > 0, "logits: the vocabulary axis is empty");
          const int64_t* labels = checked_labels(labels_obj, rows, vocab);
          py::array_t<float> entropy(rows), logp(rows), lse(rows);
          const float* x = cptr<float>(logits);
          float *h = entropy.mutable_data(), *lp = logp.mutable_data(), *ls = lse.mutable_data();
          std::fill_n(lp, rows, 0.0f);  // stays 0 without labels
          {
            py::gil_scoped_release release;
            toolbox::row_entropy_forward_cpu(x, labels, rows, vocab, h, lp, ls);
          }
          return py::make_tuple(entropy, logp, lse);
        },
        py::arg("logits"), py::arg("labels") = py::none(),
        "Per-row (entropy, log-prob of label, logsumexp) of float32 logits [T, V] in one streaming pass.");
  m.def("row_entropy_backward",
        [](py::handle logits_obj, py::object labels_obj, py::handle entropy_obj, py::handle lse_obj,
           py::object grad_entropy, py::object grad_logp, py::object grad_lse) {
          py::array logits = require_array<float>(logits_obj, "logits", 2);
          const int64_t rows = logits.shape(0), vocab = logits.shape(1);
          require(vocab > 0, "logits: the vocabulary axis is empty");
          const int64_t* labels = checked_labels(labels_obj, rows, vocab);
          py::array entropy = require_array<float>(entropy_obj, "entropy", 1, {rows});
          py::array lse = require_array<float>(lse_obj, "lse", 1, {rows});
          const float* g_h = optional_rows(grad_entropy, "grad_entropy", rows);
          const float* g_lp = optional_rows(grad_logp, "grad_logp", rows);
          const float* g_ls = optional_rows(grad_lse, "grad_lse", rows);
          py::array_t<float> grad({rows, vocab});
          const float* x = cptr<float>(logits);
          const float *h = cptr<float>(entropy), *ls = cptr<float>(lse);
          float* out = grad.mutable_data();
          {
            py::gil_scoped_release release;
            toolbox::row_entropy_backward_cpu(x, labels, h, ls, g_h, g_lp, g_ls, rows, vocab, out);
          }
          return grad;
        },
        py::arg("logits"), py::arg("labels"), py::arg("entropy"), py::arg("lse"), py::arg("grad_entropy"),
        py::arg("grad_logp"), py::arg("grad_lse"),
        "Gradient of the row statistics w.r.t. the logits, recomputing p from the saved logsumexp.");
  m.def("row_entropy_forward_cuda",
        [](uintptr_t logits, int dtype, uintptr_t labels, int64_t rows, int64_t vocab, uintptr_t entropy,
           uintptr_t logp, uintptr_t lse, uintptr_t stream) {
          require(dtype == 0 || dtype == 1, "dtype must be 0 (float32) or 1 (bfloat16)");
          require(rows >= 0 && vocab > 0, "rows must be >= 0 and vocab > 0");
#if defined(TOOLBOX_WITH_CUDA)
          toolbox::row_entropy_forward_cuda(logits, dtype, labels, rows, vocab, entropy, logp, lse, stream);
#else
          (void)logits; (void)labels; (void)entropy; (void)logp; (void)lse; (void)stream;
          no_cuda();
#endif
        },
        py::arg("logits_ptr"), py::arg("dtype"), py::arg("labels_ptr"), py::arg("rows"), py::arg("vocab"),
        py::arg("entropy_ptr"), py::arg("logp_ptr"), py::arg("lse_ptr"), py::arg("cuda_stream"));
  m.def("row_entropy_backward_cuda",
        [](uintptr_t logits, int dtype, uintptr_t labels, uintptr_t entropy, uintptr_t lse, uintptr_t grad_entropy,
           uintptr_t grad_logp, uintptr_t grad_lse, int64_t rows, int64_t vocab, uintptr_t grad_logits,
           uintptr_t stream) {
          require(dtype == 0 || dtype == 1, "dtype must be 0 (float32) or 1 (bfloat16)");
          require(rows >= 0 && vocab > 0, "rows must be >= 0 and vocab > 0");
#if defined(TOOLBOX_WITH_CUDA)
          toolbox::row_entropy_backward_cuda(logits, dtype, labels, entropy, lse, grad_entropy, grad_logp, grad_lse,
                                             rows, vocab, grad_logits, stream);
#else
          (void)logits; (void)labels; (void)entropy; (void)lse; (void)grad_entropy; (void)grad_logp; (void)grad_lse;
          (void)grad_logits; (void)stream;
          no_cuda();
#endif
        },
        py::arg("logits_ptr"), py::arg("dtype"), py::arg("labels_ptr"), py::arg("entropy_ptr"), py::arg("lse_ptr"),
        py::arg("grad_entropy_ptr"), py::arg("grad_logp_ptr"), py::arg("grad_lse_ptr"), py::arg("rows"),
        py::arg("vocab"), py::arg("grad_logits_ptr"), py::arg("cuda_stream"));
}
