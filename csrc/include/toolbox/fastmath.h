// Branch-free float exp for x <= 0 (Cody-Waite reduction + degree-6 polynomial, relative error below 2e-7 on
// [-87, 0]), in scalar form and on 8-float GCC vectors, so the CPU hot loops vectorise where std::exp stays scalar.
#pragma once
#include <cstdint>
#include <cstring>

namespace toolbox {

typedef float vec8f __attribute__((vector_size(32)));
typedef int32_t vec8i __attribute__((vector_size(32)));

constexpr float kExpFloor = -87.0f;  // exp_nonpos clamps here: exp(-87) ~ 1.6e-38, the scale 2^n stays normal

// exp(x) for x in [kExpFloor, 0] (NaN stays NaN), without the clamp: for callers that clamp x themselves.
template <class F, class I>
inline F exp_in_range_impl(F x, F log2e, F ln2_hi, F ln2_lo, F half, F one) {
  const F t = x * log2e - half;
  I n_int;
  F n;
  if constexpr (sizeof(F) == sizeof(float)) {
    n_int = static_cast<I>(t);  // truncation of t - 1/2: n is t rounded (ties harmless)
    n = static_cast<F>(n_int);
  } else {
    n_int = __builtin_convertvector(t, I);
    n = __builtin_convertvector(n_int, F);
  }
  const F r = (x - n * ln2_hi) - n * ln2_lo;
  F p = r * (1.0f / 720.0f) + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + half;
  p = p * r + one;
  p = p * r + one;
  const I bits = (n_int + 127) << 23;
  F scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

inline float exp_in_range(float x) {
  return exp_in_range_impl<float, int32_t>(x, 1.44269504088896341f, 0.693145751953125f, 1.42860682030941723212e-6f,
                                           0.5f, 1.0f);
}

inline vec8f exp_in_range(vec8f x) {
  const vec8f zero = {};  // scalars broadcast against it
  return exp_in_range_impl<vec8f, vec8i>(x, zero + 1.44269504088896341f, zero + 0.693145751953125f,
                                         zero + 1.42860682030941723212e-6f, zero + 0.5f, zero + 1.0f);
}

inline float exp_nonpos(float x) { return exp_in_range(x < kExpFloor ? kExpFloor : x); }

inline vec8f exp_nonpos(vec8f x) {
  const vec8f lo = vec8f{} + kExpFloor;
  return exp_in_range(x < lo ? lo : x);
}

}  // namespace toolbox
