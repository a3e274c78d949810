// Host-side helpers shared by the CUDA entry points (compiled only with TOOLBOX_WITH_CUDA).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

#include <cuda_runtime.h>

namespace toolbox {

inline cudaStream_t as_stream(uintptr_t stream) { return reinterpret_cast<cudaStream_t>(stream); }

inline void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

inline void check_launch(const char* what) { check_cuda(cudaGetLastError(), what); }

}  // namespace toolbox
