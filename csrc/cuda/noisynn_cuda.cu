// CUDA mirrors of csrc/cpu/noisynn_cpu.cpp: same formulas, same Philox counters, so both draw identical noise.
#include "toolbox/cuda_utils.h"
#include "toolbox/noisynn.h"
#include "toolbox/philox.h"

namespace toolbox {
namespace {

constexpr int kThreads = 256;

inline unsigned blocks_for(int64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

// One thread per column: sum the K rows in double, then write every row of that column.
__global__ void mix_optimal_kernel(const float* __restrict__ x, int64_t k, int64_t m, float* __restrict__ out) {
  const int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (j >= m) return;
  double sum = 0.0;
  for (int64_t i = 0; i < k; ++i) sum += x[i * m + j];
  const float inv = 1.0f / static_cast<float>(k + 1);
  for (int64_t i = 0; i < k; ++i) out[i * m + j] = (x[i * m + j] + static_cast<float>(sum)) * inv;
}

__global__ void mix_circulant_kernel(const float* __restrict__ x, int64_t k, int64_t m, float alpha, int64_t shift,
                                     float* __restrict__ out) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= k * m) return;
  const int64_t i = idx / m, j = idx % m;
  const int64_t partner = (i + (shift % k + k) % k) % k;
  out[idx] = x[idx] + alpha * (x[partner * m + j] - x[idx]);
}

// One thread per group of four elements of a row, as the CPU loop.
__global__ void gaussian_kernel(const float* __restrict__ x, const int64_t* __restrict__ keys, int64_t b, int64_t m,
                                uint64_t seed, uint32_t stream, float shift, float scale, float* __restrict__ out) {
  const int64_t groups = (m + 3) / 4;
  const int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (t >= b * groups) return;
  const int64_t row = t / groups, g = t % groups;
  double z[4];
  philox_normal4(seed, stream, static_cast<uint64_t>(keys[row]), static_cast<uint64_t>(g), z);
  for (int64_t c = 0; c < 4 && 4 * g + c < m; ++c) {
    const int64_t idx = row * m + 4 * g + c;
    out[idx] = x[idx] + (shift + scale * static_cast<float>(z[c]));
  }
}

__global__ void impulse_kernel(const float* __restrict__ x, const int64_t* __restrict__ keys, int64_t b, int64_t m,
                               uint64_t seed, uint32_t stream, float p, float salt, float pepper,
                               float* __restrict__ out, uint8_t* __restrict__ kept) {
  const int64_t groups = (m + 3) / 4;
  const int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (t >= b * groups) return;
  const int64_t row = t / groups, g = t % groups;
  const float low = 0.5f * p, high = 1.0f - 0.5f * p;
  double u[4];
  philox_uniform4(seed, stream, static_cast<uint64_t>(keys[row]), static_cast<uint64_t>(g), u);
  for (int64_t c = 0; c < 4 && 4 * g + c < m; ++c) {
    const int64_t idx = row * m + 4 * g + c;
    const float v = static_cast<float>(u[c]);
    out[idx] = v < low ? salt : (v > high ? pepper : x[idx]);
    kept[idx] = !(v < low || v > high);
  }
}

}  // namespace

void noisynn_mix_optimal_cuda(uintptr_t x, int64_t k, int64_t m, uintptr_t out, uintptr_t stream) {
  if (k == 0 || m == 0) return;
  mix_optimal_kernel<<<blocks_for(m), kThreads, 0, as_stream(stream)>>>(
      reinterpret_cast<const float*>(x), k, m, reinterpret_cast<float*>(out));
  check_launch("noisynn_mix_optimal_cuda");
}

void noisynn_mix_circulant_cuda(uintptr_t x, int64_t k, int64_t m, float alpha, int64_t shift, uintptr_t out,
                                uintptr_t stream) {
  if (k == 0 || m == 0) return;
  mix_circulant_kernel<<<blocks_for(k * m), kThreads, 0, as_stream(stream)>>>(
      reinterpret_cast<const float*>(x), k, m, alpha, shift, reinterpret_cast<float*>(out));
  check_launch("noisynn_mix_circulant_cuda");
}

void noisynn_gaussian_cuda(uintptr_t x, uintptr_t keys, int64_t b, int64_t m, uint64_t seed, uint32_t stream,
                           float shift, float scale, uintptr_t out, uintptr_t cuda_stream) {
  if (b == 0 || m == 0) return;
  gaussian_kernel<<<blocks_for(b * ((m + 3) / 4)), kThreads, 0, as_stream(cuda_stream)>>>(
      reinterpret_cast<const float*>(x), reinterpret_cast<const int64_t*>(keys), b, m, seed, stream, shift, scale,
      reinterpret_cast<float*>(out));
  check_launch("noisynn_gaussian_cuda");
}

void noisynn_impulse_cuda(uintptr_t x, uintptr_t keys, int64_t b, int64_t m, uint64_t seed, uint32_t stream,
                          float p, float salt, float pepper, uintptr_t out, uintptr_t kept, uintptr_t cuda_stream) {
  if (b == 0 || m == 0) return;
  impulse_kernel<<<blocks_for(b * ((m + 3) / 4)), kThreads, 0, as_stream(cuda_stream)>>>(
      reinterpret_cast<const float*>(x), reinterpret_cast<const int64_t*>(keys), b, m, seed, stream, p, salt, pepper,
      reinterpret_cast<float*>(out), reinterpret_cast<uint8_t*>(kept));
  check_launch("noisynn_impulse_cuda");
}

}  // namespace toolbox
