// NoisyNN noise kernels (Yu et al., arXiv 2309.10625) on a row-major [K, M] matrix whose K rows are mixed together.
//   optimal Q (eq. 19):  out_i = (x_i + sum_j x_j) / (K + 1)                  O(K M), no K x K matrix
//   circulant (eq. 17):  out_i = x_i + alpha (x_{(i + shift) mod K} - x_i)    shift -1 gives the adjoint
//   gaussian:            out = x + shift + scale * z,  z = Philox normal (key_b, j / 4)[j % 4] of (seed, stream)
//   impulse:             u = Philox uniform likewise; u < p/2 -> salt, u > 1 - p/2 -> pepper; kept = 1 elsewhere
// Keyed draws make a sample's noise independent of its batch; CPU and CUDA draw identical bits.
#pragma once
#include <cstdint>

namespace toolbox {

void noisynn_mix_optimal_cpu(const float* x, int64_t k, int64_t m, float* out);
void noisynn_mix_circulant_cpu(const float* x, int64_t k, int64_t m, float alpha, int64_t shift, float* out);
void noisynn_gaussian_cpu(const float* x, const int64_t* keys, int64_t b, int64_t m, uint64_t seed, uint32_t stream,
                          float shift, float scale, float* out);
void noisynn_impulse_cpu(const float* x, const int64_t* keys, int64_t b, int64_t m, uint64_t seed, uint32_t stream,
                         float p, float salt, float pepper, float* out, uint8_t* kept);

#if defined(TOOLBOX_WITH_CUDA)
// All pointers are device pointers; float32 data, int64 keys.
void noisynn_mix_optimal_cuda(uintptr_t x, int64_t k, int64_t m, uintptr_t out, uintptr_t stream);
void noisynn_mix_circulant_cuda(uintptr_t x, int64_t k, int64_t m, float alpha, int64_t shift, uintptr_t out,
                                uintptr_t stream);
void noisynn_gaussian_cuda(uintptr_t x, uintptr_t keys, int64_t b, int64_t m, uint64_t seed, uint32_t stream,
                           float shift, float scale, uintptr_t out, uintptr_t cuda_stream);
void noisynn_impulse_cuda(uintptr_t x, uintptr_t keys, int64_t b, int64_t m, uint64_t seed, uint32_t stream,
                          float p, float salt, float pepper, uintptr_t out, uintptr_t kept, uintptr_t cuda_stream);
#endif

}  // namespace toolbox
