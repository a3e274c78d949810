// Eight float64 lanes as a GCC vector (one AVX-512 register, two AVX2 or four SSE2 ones) and the double-precision
// math the CPU Langevin kernel needs on them: exp, log (fdlibm's algorithms, < 1 ulp) and sin / cos of 2 pi u
// (fdlibm's kernels on an exact quadrant reduction of u), plus Philox4x32-10 and its Box-Muller normals per lane.
// No FMA is used, so every instruction-set clone gives the same bits. Host only (the CUDA kernels run one
// particle per thread on scalars).
#pragma once
#include <cstdint>
#include <cstring>

#include "toolbox/philox.h"

namespace toolbox {

typedef double vec8d __attribute__((vector_size(64)));
typedef int64_t vec8l __attribute__((vector_size(64)));
typedef uint64_t vec8u __attribute__((vector_size(64)));
constexpr int kLanes = 8;

inline vec8d splat(double x) { return vec8d{x, x, x, x, x, x, x, x}; }
inline vec8d as_double(vec8l i) {
  vec8d d;
  std::memcpy(&d, &i, sizeof d);
  return d;
}
inline vec8l as_int(vec8d d) {
  vec8l i;
  std::memcpy(&i, &d, sizeof i);
  return i;
}
inline vec8d vsqrt(vec8d x) {  // lane loop: compiles to one vector sqrt (-fno-math-errno)
  for (int l = 0; l < kLanes; ++l) x[l] = __builtin_sqrt(x[l]);
  return x;
}

// exp(x) (fdlibm e_exp.c): x = k ln2 + r, |r| <= ln2 / 2, e^r = 1 + r + r c / (2 - c) with c = r - r^2 P(r^2);
// 2^k applied as two factors so that subnormal results and 0 (x < -745, -inf) come out right. exp(0) = 1 exactly.
inline vec8d vexp(vec8d x) {
  x = x < -746.0 ? splat(-746.0) : x;
  x = x > 710.0 ? splat(710.0) : x;
  const double magic = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to an integer held in the low bits
  const vec8d t = x * 1.44269504088896338700e+00 + magic;
  const vec8d kd = t - magic;
  const vec8l k = as_int(t) - as_int(splat(magic));
  const vec8d hi = x - kd * 6.93147180369123816490e-01, lo = kd * 1.90821492927058770002e-10, r = hi - lo;
  const vec8d z = r * r;
  const vec8d c = r - z * (1.66666666666666019037e-01 +
                           z * (-2.77777777770155933842e-03 +
                                z * (6.61375632143793436117e-05 +
                                     z * (-1.65339022054652515390e-06 + z * 4.13813679705723846039e-08))));
  const vec8d y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
  const vec8l k1 = k >> 1, k2 = k - k1;
  return y * as_double((k1 + 1023) << 52) * as_double((k2 + 1023) << 52);
}

// log(x) for positive normal x (fdlibm e_log.c): x = 2^k (1 + f), 1 + f in [sqrt(2)/2, sqrt(2)),
// log(1 + f) = f - f^2/2 + s (f^2/2 + R(s^2)) with s = f / (2 + f).
inline vec8d vlog(vec8d x) {
  vec8l i = as_int(x) + (int64_t{0x3ff00000 - 0x3fe6a09e} << 32);
  const vec8d k = __builtin_convertvector((i >> 52) - 0x3ff, vec8d);
  i = (i & 0x000fffffffffffff) + (int64_t{0x3fe6a09e} << 32);
  const vec8d f = as_double(i) - 1.0;
  const vec8d hfsq = 0.5 * f * f, s = f / (2.0 + f), z = s * s, w = z * z;
  const vec8d t1 = w * (3.999999999940941908e-01 + w * (2.222219843214978396e-01 + w * 1.531383769920937332e-01));
  const vec8d t2 = z * (6.666666666666735130e-01 +
                        w * (2.857142874366239149e-01 + w * (1.818357216161805012e-01 + w * 1.479819860511658591e-01)));
  return s * (hfsq + t2 + t1) + k * 1.90821492927058770002e-10 - hfsq + f + k * 6.93147180369123816490e-01;
}

// sin(2 pi u) and cos(2 pi u) for u in [0, 1): q = round(4u), r = u - q/4 (exact, |r| <= 1/8), x = 2 pi r in
// [-pi/4, pi/4] through fdlibm's __kernel_sin / __kernel_cos, then the quadrant q mod 4 picks and signs them.
inline void vsincos_2pi(vec8d u, vec8d& sin_out, vec8d& cos_out) {
  const double magic = 6755399441055744.0;
  const vec8d qd = (u * 4.0 + magic) - magic;
  const vec8l q = __builtin_convertvector(qd, vec8l) & 3;
  const vec8d x = 6.283185307179586 * (u - 0.25 * qd), z = x * x, w = z * z;
  const vec8d sr = 8.33333333332248946124e-03 +
                   z * (-1.98412698298579493134e-04 +
                        z * (2.75573137070700676789e-06 + z * (-2.50507602534068634195e-08 + z * 1.58969099521155010221e-10)));
  const vec8d s = x + z * x * (-1.66666666666666324348e-01 + z * sr);
  const vec8d cr = z * (4.16666666666666019037e-02 + z * (-1.38888888888741095749e-03 + z * 2.48015872894767294178e-05)) +
                   w * w * (-2.75573143513906633035e-07 + z * (2.08757232129817482790e-09 + z * -1.13596475577881948265e-11));
  const vec8d hz = 0.5 * z, one_hz = 1.0 - hz;
  const vec8d c = one_hz + (((1.0 - one_hz) - hz) + z * cr);
  const vec8d sin_q = (q & 1) ? c : s, cos_q = (q & 1) ? -s : c;  // rotate by q pi/2
  sin_out = (q & 2) ? -sin_q : sin_q;
  cos_out = (q & 2) ? -cos_q : cos_q;
}

// Philox4x32-10 on eight counters (c0, c1 per lane; c2, c3 shared) with one key: 32-bit words in 64-bit lanes.
inline void philox4x32_10(vec8u c[4], uint32_t k0, uint32_t k1) {
  constexpr uint64_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, low = 0xffffffffu;
  for (int round = 0; round < 10; ++round) {
    const vec8u p0 = c[0] * M0, p1 = c[2] * M1;
    const vec8u n0 = (p1 >> 32) ^ c[1] ^ k0, n2 = (p0 >> 32) ^ c[3] ^ k1;
    c[0] = n0;
    c[1] = p1 & low;
    c[2] = n2;
    c[3] = p0 & low;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
}

// The four normals of counter (particle, b) per lane: the same uniforms and Box-Muller pairing as philox_normal4.
inline void philox_normal4(uint64_t seed, uint32_t stream, vec8l particle, uint64_t b, vec8d z[4]) {
  uint32_t k0, k1;
  philox_key(seed, stream, k0, k1);
  const vec8u a = reinterpret_cast<vec8u&>(particle);
  vec8u c[4] = {a & 0xffffffffu, a >> 32, vec8u{} + (b & 0xffffffffu), vec8u{} + (b >> 32)};
  philox4x32_10(c, k0, k1);
  vec8d u[4];
  for (int i = 0; i < 4; ++i)  // (x + 1/2) 2^-32; x < 2^32 converted exactly through the 2^52 exponent trick
    u[i] = (as_double(reinterpret_cast<vec8l&>(c[i]) | 0x4330000000000000) - 4503599627370496.0 + 0.5) *
           2.3283064365386963e-10;
  for (int i = 0; i < 4; i += 2) {
    const vec8d radius = vsqrt(-2.0 * vlog(u[i]));
    vec8d s, co;
    vsincos_2pi(u[i + 1], s, co);
    z[i] = radius * co;
    z[i + 1] = radius * s;
  }
}

}  // namespace toolbox
