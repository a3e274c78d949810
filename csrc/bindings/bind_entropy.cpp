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

// Logits [rows, vocab] with at least one column: float32 for dtype 0, the uint16 bit patterns of bfloat16 (1) or
// float16 (2) otherwise.
py::array checked_logits(py::handle obj, int dtype) {
  require(dtype >= 0 && dtype <= 2, "dtype must be 0 (float32), 1 (bfloat16) or 2 (float16)");
  py::array logits = dtype == toolbox::kLogitsFloat32 ? require_array<float>(obj, "logits", 2)
                                                      : require_array<uint16_t>(obj, "logits", 2);
  require(logits.shape(1) > 0, "logits: the vocabulary axis is empty");
  return logits;
}

const float* optional_rows(const py::object& obj, const char* name, int64_t rows) {
  if (obj.is_none()) return nullptr;
  return cptr<float>(require_array<float>(obj, name, 1, {rows}));
}

}  // namespace

void init_entropy(py::module_& m) {
  m.def("row_entropy_forward",
        [](py::handle logits_obj, py::object labels_obj, int dtype) {
          py::array logits = checked_logits(logits_obj, dtype);
          const int64_t rows = logits.shape(0), vocab = logits.shape(1);
          const int64_t* labels = checked_labels(labels_obj, rows, vocab);
          py::array_t<float> entropy(rows), logp(rows), row_max(rows), log_sum(rows);
          const void* x = logits.data();
          float *h = entropy.mutable_data(), *lp = logp.mutable_data();
          float *mx = row_max.mutable_data(), *ls = log_sum.mutable_data();
          std::fill_n(lp, rows, 0.0f);  // stays 0 without labels
          {
            py::gil_scoped_release release;
            toolbox::row_entropy_forward_cpu(x, dtype, labels, rows, vocab, h, lp, mx, ls);
          }
          return py::make_tuple(entropy, logp, row_max, log_sum);
        },
        py::arg("logits"), py::arg("labels") = py::none(), py::arg("dtype") = 0,
        "Per-row (entropy, log-prob of label, row max m, log-sum log s) of logits [T, V] in one streaming pass;\n"
        "lse = m + log s. dtype: 0 float32, 1 bfloat16, 2 float16 (16-bit logits as uint16 bit patterns).\n"
        "Fully masked rows (all -inf): H = 0, logp = m = log s = -inf. Rows with NaN or +inf: all NaN.");
  m.def("row_entropy_backward",
        [](py::handle logits_obj, py::object labels_obj, py::handle entropy_obj, py::handle row_max_obj,
           py::handle log_sum_obj, py::object grad_entropy, py::object grad_logp, py::object grad_lse, int dtype) {
          py::array logits = checked_logits(logits_obj, dtype);
          const int64_t rows = logits.shape(0), vocab = logits.shape(1);
          const int64_t* labels = checked_labels(labels_obj, rows, vocab);
          py::array entropy = require_array<float>(entropy_obj, "entropy", 1, {rows});
          py::array row_max = require_array<float>(row_max_obj, "row_max", 1, {rows});
          py::array log_sum = require_array<float>(log_sum_obj, "log_sum", 1, {rows});
          const float* g_h = optional_rows(grad_entropy, "grad_entropy", rows);
          const float* g_lp = optional_rows(grad_logp, "grad_logp", rows);
          const float* g_ls = optional_rows(grad_lse, "grad_lse", rows);
          py::array_t<float> grad({rows, vocab});
          const void* x = logits.data();
          const float *h = cptr<float>(entropy), *mx = cptr<float>(row_max), *ls = cptr<float>(log_sum);
          float* out = grad.mutable_data();
          {
            py::gil_scoped_release release;
            toolbox::row_entropy_backward_cpu(x, dtype, labels, h, mx, ls, g_h, g_lp, g_ls, rows, vocab, out);
          }
          return grad;
        },
        py::arg("logits"), py::arg("labels"), py::arg("entropy"), py::arg("row_max"), py::arg("log_sum"),
        py::arg("grad_entropy"), py::arg("grad_logp"), py::arg("grad_lse"), py::arg("dtype") = 0,
        "float32 gradient of the row statistics w.r.t. the logits, recomputing p from the saved m and log s.");
  m.def("row_entropy_forward_cuda",
        [](uintptr_t logits, int dtype, uintptr_t labels, int64_t rows, int64_t vocab, uintptr_t entropy,
           uintptr_t logp, uintptr_t row_max, uintptr_t log_sum, uintptr_t stream) {
          require(dtype >= 0 && dtype <= 2, "dtype must be 0 (float32), 1 (bfloat16) or 2 (float16)");
          require(rows >= 0 && vocab > 0, "rows must be >= 0 and vocab > 0");
#if defined(TOOLBOX_WITH_CUDA)
          toolbox::row_entropy_forward_cuda(logits, dtype, labels, rows, vocab, entropy, logp, row_max, log_sum,
                                            stream);
#else
          (void)logits; (void)labels; (void)entropy; (void)logp; (void)row_max; (void)log_sum; (void)stream;
          no_cuda();
#endif
        },
        py::arg("logits_ptr"), py::arg("dtype"), py::arg("labels_ptr"), py::arg("rows"), py::arg("vocab"),
        py::arg("entropy_ptr"), py::arg("logp_ptr"), py::arg("row_max_ptr"), py::arg("log_sum_ptr"),
        py::arg("cuda_stream"));
  m.def("row_entropy_backward_cuda",
        [](uintptr_t logits, int dtype, uintptr_t labels, uintptr_t entropy, uintptr_t row_max, uintptr_t log_sum,
           uintptr_t grad_entropy, uintptr_t grad_logp, uintptr_t grad_lse, int64_t rows, int64_t vocab,
           uintptr_t grad_logits, uintptr_t stream) {
          require(dtype >= 0 && dtype <= 2, "dtype must be 0 (float32), 1 (bfloat16) or 2 (float16)");
          require(rows >= 0 && vocab > 0, "rows must be >= 0 and vocab > 0");
#if defined(TOOLBOX_WITH_CUDA)
          toolbox::row_entropy_backward_cuda(logits, dtype, labels, entropy, row_max, log_sum, grad_entropy,
                                             grad_logp, grad_lse, rows, vocab, grad_logits, stream);
#else
          (void)logits; (void)labels; (void)entropy; (void)row_max; (void)log_sum; (void)grad_entropy;
          (void)grad_logp; (void)grad_lse; (void)grad_logits; (void)stream;
          no_cuda();
#endif
        },
        py::arg("logits_ptr"), py::arg("dtype"), py::arg("labels_ptr"), py::arg("entropy_ptr"),
        py::arg("row_max_ptr"), py::arg("log_sum_ptr"), py::arg("grad_entropy_ptr"), py::arg("grad_logp_ptr"),
        py::arg("grad_lse_ptr"), py::arg("rows"), py::arg("vocab"), py::arg("grad_logits_ptr"),
        py::arg("cuda_stream"));
}
