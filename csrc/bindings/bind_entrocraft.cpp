#include <cmath>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "checks.h"
#include "toolbox/entrocraft.h"

namespace py = pybind11;
using namespace toolbox::bind;

namespace {

// Every index in [0, bound): one pass, no per-element message construction.
bool in_range(const int64_t* idx, int64_t n, int64_t bound) {
  bool ok = true;
  for (int64_t i = 0; i < n; ++i) ok &= (idx[i] >= 0) & (idx[i] < bound);
  return ok;
}

// The band [h_low, h_high] of the controller: finite and not inverted.
void check_band(float h_low, float h_high) {
  require(std::isfinite(h_low) && std::isfinite(h_high) && h_low <= h_high,
          "entropy band: need finite h_low <= h_high");
}

}  // namespace

void init_entrocraft(py::module_& m) {
  m.def("rejection_epilogue",
        [](py::handle h_obj, py::handle seq_obj, py::handle adv_obj, py::object group_obj, int64_t groups,
           bool seq_mean, float h_low, float h_high) {
          py::array h = require_array<float>(h_obj, "token_entropy", 1);
          const int64_t tokens = h.shape(0);
          py::array seq = require_array<int64_t>(seq_obj, "token_seq", 1, {tokens});
          py::array adv = require_array<float>(adv_obj, "advantages", 1);
          const int64_t seqs = adv.shape(0);
          check_band(h_low, h_high);
          require(all_finite<float>(h), "token_entropy must be finite");
          require(all_finite<float>(adv), "advantages must be finite");
          const int64_t* s = cptr<int64_t>(seq);
          require(in_range(s, tokens, seqs), "token_seq: index out of range [0, seqs)");
          const int64_t* g = nullptr;
          if (!group_obj.is_none()) {
            require(groups > 0, "groups must be positive when group_ids are given");
            g = cptr<int64_t>(require_array<int64_t>(group_obj, "group_ids", 1, {seqs}));
            require(in_range(g, seqs, groups), "group_ids: index out of range [0, groups)");
          }
          py::array_t<uint8_t> accept(seqs);
          py::array_t<int64_t> kept(g ? groups : 0);
          double entropy = 0.0;
          int32_t mode = 0;
          const float* hp = cptr<float>(h);
          const float* ap = cptr<float>(adv);
          uint8_t* acc = accept.mutable_data();
          int64_t* kp = kept.mutable_data();
          {
            py::gil_scoped_release release;
            toolbox::rejection_epilogue_cpu(hp, s, tokens, ap, g, seqs, groups, seq_mean, h_low, h_high, acc, kp,
                                            &entropy, &mode);
          }
          return py::make_tuple(entropy, mode, accept, g ? py::object(kept) : py::object(py::none()));
        },
        py::arg("token_entropy"), py::arg("token_seq"), py::arg("advantages"), py::arg("group_ids") = py::none(),
        py::arg("groups") = 0, py::arg("seq_mean") = false, py::arg("h_low") = 0.0f, py::arg("h_high") = 0.0f,
        "Entrocraft's rejection epilogue: (batch entropy, mode, accept uint8 [N], kept per group or None).");
  m.def("rejection_epilogue_cuda",
        [](uintptr_t h, uintptr_t seq, int64_t tokens, uintptr_t adv, uintptr_t group_ids, int64_t seqs,
           int64_t groups, bool seq_mean, float h_low, float h_high, uintptr_t workspace, uintptr_t accept,
           uintptr_t kept, uintptr_t entropy, uintptr_t mode, uintptr_t stream) {
          require(tokens >= 0 && seqs >= 0 && groups >= 0, "sizes must be non-negative");
          check_band(h_low, h_high);
          require((tokens == 0 || (h && seq)) && (seqs == 0 || (adv && workspace && accept)) && entropy && mode,
                  "a device pointer is null");
#if defined(TOOLBOX_WITH_CUDA)
          toolbox::rejection_epilogue_cuda(h, seq, tokens, adv, group_ids, seqs, groups, seq_mean, h_low, h_high,
                                           workspace, accept, kept, entropy, mode, stream);
#else
          (void)h; (void)seq; (void)adv; (void)group_ids; (void)seq_mean; (void)h_low; (void)h_high;
          (void)workspace; (void)accept; (void)kept; (void)entropy; (void)mode; (void)stream;
          no_cuda();
#endif
        },
        py::arg("token_entropy_ptr"), py::arg("token_seq_ptr"), py::arg("tokens"), py::arg("advantages_ptr"),
        py::arg("group_ids_ptr"), py::arg("seqs"), py::arg("groups"), py::arg("seq_mean"), py::arg("h_low"),
        py::arg("h_high"), py::arg("workspace_ptr"), py::arg("accept_ptr"), py::arg("kept_per_group_ptr"),
        py::arg("entropy_ptr"), py::arg("mode_ptr"), py::arg("cuda_stream"));
}
