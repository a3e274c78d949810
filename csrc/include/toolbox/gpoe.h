// gPoE fusion of Gaussian experts (Cao & Fleet 2014): one pass over M experts per test point keeping the
// running sums S_T = sum b_i / v_i, S_Tm = sum b_i m_i / v_i, S_b = sum b_i, S_b2 = sum b_i^2, then the fused
// Gaussian (1/T, numerator/T) by one of three combinations. The same two inline functions serve the C++ and the
// CUDA kernels, so both compute the same arithmetic in the same order.
//   weight  0: b_i = 1;  1: b_i = max(0, 1/2 (log v**_i - log v_i))   (entropy change, paper Sec. 2.3)
//   combine 0: T = S_T,               numerator = S_Tm                 (product: PoE, raw-entropy gPoE)
//           1: T = S_T / S_b,         numerator = S_Tm / S_b           (weights normalised to sum 1)
//           2: T = S_T + (1 - S_b)/v**, numerator = S_Tm + (1 - S_b) m** / v**   (BCM / rBCM prior correction)
// Terms are computed in the input precision and summed in double (the CPU kernel first sums groups of 8 experts in
// the input precision, see gpoe_cpu.cpp).
// A point falls back to the prior (m**, v**) when S_b < eps or the fused precision is not positive and finite.
// An expert whose mean is not finite or whose variance is not in (0, inf) is left out at that point.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define TOOLBOX_GPOE_HD __host__ __device__ __forceinline__
#else
#define TOOLBOX_GPOE_HD inline
#endif

namespace toolbox {

enum GpoeWeight : int { kWeightOne = 0, kWeightEntropy = 1 };
enum GpoeCombine : int { kCombineProduct = 0, kCombineNormalised = 1, kCombinePriorCorrected = 2 };

template <class T>
struct GpoeFuseArgs {
  int64_t experts = 0, points = 0;
  const T* mean = nullptr;  // [experts, points], row-major (expert-major: reads coalesce across points)
  const T* var = nullptr;   // [experts, points]
  const T* weight_prior = nullptr;  // prior variance v**_i of the entropy weights, element (i, n) at
  int64_t wp_stride_e = 0, wp_stride_p = 0;  //   i * wp_stride_e + n * wp_stride_p (0 strides broadcast)
  const T* prior_var = nullptr;  // fused prior variance v** (fallback and prior correction), element n * pv_stride
  int64_t pv_stride = 0;
  const T* prior_mean = nullptr;  // fused prior mean m** (nullptr: 0), element n * pm_stride
  int64_t pm_stride = 0;
  int weight = kWeightEntropy, combine = kCombineNormalised;
  double eps = 1e-9;
  T* out_mean = nullptr;  // [points]
  T* out_var = nullptr;   // [points]
  uint8_t* out_fallback = nullptr;  // [points] or nullptr: 1 where the prior was returned
  double* out_stats = nullptr;      // [4, points] or nullptr: S_T, S_Tm, S_b, S_b2 (for map-reduce fusion)
};

struct GpoeSums {
  double t = 0.0, tm = 0.0, b = 0.0, b2 = 0.0;
};

// log(x) for finite x >= 1, branch-free (the CPU loop vectorises it; the CUDA kernel uses the same function):
// x = 2^k (1 + f) with 1 + f in [sqrt(2)/2, sqrt(2)) by an integer offset of the bits (fdlibm's reduction: no
// compare or select), log(1 + f) = f - f^2/2 + f^3 P(f) with the degree-8 P of Cephes logf, ln 2 split in two.
// log(1) = 0 exactly; error at most 0.82 ulp of float32 over every float32 in [1, FLT_MAX] (exhaustive sweep
// against double log; bench/bench_gpoe.py --log-error measures it through the kernel).
TOOLBOX_GPOE_HD float log_ge1(float x) {
  int32_t bits;
  memcpy(&bits, &x, sizeof bits);
  bits += 0x3f800000 - 0x3f3504f3;  // mantissas from sqrt(2) up carry into the exponent: 1 + f < sqrt(2)
  const float k = static_cast<float>((bits >> 23) - 127);
  bits = (bits & 0x007fffff) + 0x3f3504f3;
  float f;
  memcpy(&f, &bits, sizeof f);
  f -= 1.0f;
  const float z = f * f;
  float y = 7.0376836292e-2f;
  y = y * f - 1.1514610310e-1f;
  y = y * f + 1.1676998740e-1f;
  y = y * f - 1.2420140846e-1f;
  y = y * f + 1.4249322787e-1f;
  y = y * f - 1.6668057665e-1f;
  y = y * f + 2.0000714765e-1f;
  y = y * f - 2.4999993993e-1f;
  y = y * f + 3.3333331174e-1f;
  y = y * f * z + (-2.12194440e-4f * k - 0.5f * z);
  return (f + y) + 0.693359375f * k;
}
TOOLBOX_GPOE_HD double log_ge1(double x) { return log(x); }

// One expert's terms at one point, in the input precision: weight b, b / v and b m / v (all 0 when the
// prediction is not a finite Gaussian). Selects rather than branches, so that the CPU loop vectorises.
template <int kWeight, class T>
TOOLBOX_GPOE_HD void gpoe_terms(T m, T v, T vp, T& beta, T& precision, T& weighted_mean) {
  const bool valid = (v > T(0)) & (v < T(INFINITY)) & (m - m == T(0));
  const T safe_v = valid ? v : T(1), safe_m = valid ? m : T(0);  // every operation below is unconditional
  const T inv = T(1) / safe_v;
  T b = T(1);
  if (kWeight == kWeightEntropy) {
    const T ratio = vp * inv;
    const bool gain = (ratio > T(1)) & (ratio < T(INFINITY));
    b = T(0.5) * log_ge1(gain ? ratio : T(1));  // 0 where v >= v** (log_ge1(1) = 0)
  }
  beta = valid ? b : T(0);
  precision = beta * inv;
  weighted_mean = precision * safe_m;
}

template <class T>
TOOLBOX_GPOE_HD void gpoe_add(GpoeSums& s, T beta, T precision, T weighted_mean) {
  s.t += static_cast<double>(precision);
  s.tm += static_cast<double>(weighted_mean);
  s.b += static_cast<double>(beta);
  s.b2 += static_cast<double>(beta) * static_cast<double>(beta);
}

// The fused Gaussian from the sums; returns true when it fell back to the prior.
TOOLBOX_GPOE_HD bool gpoe_finalize(const GpoeSums& s, int combine, double prior_var, double prior_mean, double eps,
                                   double& mean, double& var) {
  double precision = s.t, numerator = s.tm;
  if (combine == kCombineNormalised && s.b > 0.0) {
    precision = s.t / s.b;
    numerator = s.tm / s.b;
  } else if (combine == kCombinePriorCorrected) {
    precision = s.t + (1.0 - s.b) / prior_var;
    numerator = s.tm + (1.0 - s.b) * prior_mean / prior_var;
  }
  var = 1.0 / precision;
  mean = numerator * var;
  const bool ok = s.b >= eps && precision > 0.0 && var < INFINITY && mean - mean == 0.0;
  if (!ok) {
    mean = prior_mean;
    var = prior_var;
  }
  return !ok;
}

// Finalise point n from its sums and write its outputs (mean, variance, fallback flag, optional sums).
template <class T>
TOOLBOX_GPOE_HD void gpoe_write_point(const GpoeFuseArgs<T>& a, int64_t n, const GpoeSums& sums) {
  const double prior_var = a.prior_var[n * a.pv_stride];
  const double prior_mean = a.prior_mean ? static_cast<double>(a.prior_mean[n * a.pm_stride]) : 0.0;
  double mean, var;
  const bool fallback = gpoe_finalize(sums, a.combine, prior_var, prior_mean, a.eps, mean, var);
  a.out_mean[n] = static_cast<T>(mean);
  a.out_var[n] = static_cast<T>(var);
  if (a.out_fallback) a.out_fallback[n] = fallback;
  if (a.out_stats) {
    a.out_stats[n] = sums.t;
    a.out_stats[a.points + n] = sums.tm;
    a.out_stats[2 * a.points + n] = sums.b;
    a.out_stats[3 * a.points + n] = sums.b2;
  }
}

void gpoe_fuse_cpu(const GpoeFuseArgs<float>& args);
void gpoe_fuse_cpu(const GpoeFuseArgs<double>& args);

#if defined(TOOLBOX_WITH_CUDA)
// Same arguments with device pointers; launched on `stream`.
void gpoe_fuse_cuda(const GpoeFuseArgs<float>& args, uintptr_t stream);
void gpoe_fuse_cuda(const GpoeFuseArgs<double>& args, uintptr_t stream);
#endif

}  // namespace toolbox
