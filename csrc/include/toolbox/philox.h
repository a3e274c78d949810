// Philox4x32-10 counter-based RNG (Salmon et al., SC'11), usable from host and device code.
// A stream of random bits is a pure function of (key = (seed, stream), counter), so CPU and GPU
// kernels draw identical bits for the same seed, whatever the batch size, chunking or device.
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define TOOLBOX_HD __host__ __device__ __forceinline__
#else
#define TOOLBOX_HD inline
#endif

namespace toolbox {

struct Philox4x32 {
  uint32_t v[4];
};

TOOLBOX_HD void mulhilo32(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

// Ten rounds of Philox4x32 on counter (c0..c3) with key (k0, k1).
TOOLBOX_HD Philox4x32 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                    uint32_t k0, uint32_t k1) {
  constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  constexpr uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo32(M0, c0, hi0, lo0);
    mulhilo32(M1, c2, hi1, lo1);
    const uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += W0; k1 += W1;
  }
  return Philox4x32{{c0, c1, c2, c3}};
}

// Uniform in (0, 1) from 32 random bits: (x + 0.5) / 2^32, never 0 or 1 (float rounding aside).
TOOLBOX_HD double uniform_open(uint32_t x) { return (static_cast<double>(x) + 0.5) * 2.3283064365386963e-10; }

// Key of a (seed, stream) pair: the 64-bit seed split into two 32-bit words, the stream xor'ed into the high word.
TOOLBOX_HD void philox_key(uint64_t seed, uint32_t stream, uint32_t& k0, uint32_t& k1) {
  k0 = static_cast<uint32_t>(seed);
  k1 = static_cast<uint32_t>(seed >> 32) ^ (stream * 0x9E3779B9u);
}

}  // namespace toolbox

namespace toolbox {

// Four uniforms in (0, 1) for the pair of 64-bit indices (a, b) (e.g. particle and step) under (seed, stream).
TOOLBOX_HD void philox_uniform4(uint64_t seed, uint32_t stream, uint64_t a, uint64_t b, double u[4]) {
  uint32_t k0, k1;
  philox_key(seed, stream, k0, k1);
  const Philox4x32 r = philox4x32_10(static_cast<uint32_t>(a), static_cast<uint32_t>(a >> 32),
                                     static_cast<uint32_t>(b), static_cast<uint32_t>(b >> 32), k0, k1);
  for (int i = 0; i < 4; ++i) u[i] = uniform_open(r.v[i]);
}

// Four standard normals from the same counter, by Box-Muller on (u0, u1) and (u2, u3).
TOOLBOX_HD void philox_normal4(uint64_t seed, uint32_t stream, uint64_t a, uint64_t b, double z[4]) {
  double u[4];
  philox_uniform4(seed, stream, a, b, u);
  constexpr double two_pi = 6.283185307179586;
  for (int i = 0; i < 4; i += 2) {
    const double radius = sqrt(-2.0 * log(u[i]));
    z[i] = radius * cos(two_pi * u[i + 1]);
    z[i + 1] = radius * sin(two_pi * u[i + 1]);
  }
}

}  // namespace toolbox

#if defined(TOOLBOX_WITH_CUDA)
namespace toolbox {
// CUDA twin of the CPU uniform stream: out[4i + k] = uniform k of counter (a0 + i, b), on a float64 device buffer.
void philox_uniform_cuda(uint64_t seed, uint32_t stream, uint64_t a0, uint64_t b, int64_t n, uintptr_t out,
                         uintptr_t cuda_stream);
}  // namespace toolbox
#endif
