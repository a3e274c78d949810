// gPoE fusion of Gaussian experts (Cao & Fleet 2014): one pass over M experts per test point keeping the
// running sums S_T = sum b_i / v_i, S_Tm = sum b_i m_i / v_i, S_b = sum b_i, S_b2 = sum b_i^2, then the fused
// Gaussian (1/T, numerator/T) by one of three combinations. The same two inline functions serve the C++ and the
// CUDA kernels, so both compute the same arithmetic in the same order.
//   weight  0: b_i = 1;  1: b_i = max(0, 1/2 (log v**_i - log v_i))   (entropy change, paper Sec. 2.3)
//   combine 0: T = S_T,               numerator = S_Tm                 (product: PoE, raw-entropy gPoE)
//           1: T = S_T / S_b,         numerator = S_Tm / S_b           (weights normalised to sum 1)
//           2: T = S_T + (1 - S_b)/v**, numerator = S_Tm + (1 - S_b) m** / v**   (BCM / rBCM prior correction)
// A point falls back to the prior (m**, v**) when S_b < eps or the fused precision is not positive and finite.
// An expert whose mean is not finite or whose variance is not in (0, inf) is left out at that point.
#pragma once
#include <cmath>
#include <cstdint>

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

// Adds one expert's prediction (mean m, variance v, weight prior vp) to the running sums.
template <class T>
TOOLBOX_GPOE_HD void gpoe_accumulate(GpoeSums& s, T m, T v, T vp, int weight) {
  if (!(v > T(0)) || !(v < INFINITY) || !(m - m == T(0))) return;  // not a finite Gaussian
  double b = 1.0;
  if (weight == kWeightEntropy) {
    const T ratio = vp / v;
    b = ratio > T(1) && ratio < INFINITY ? 0.5 * static_cast<double>(std::log(ratio)) : 0.0;
  }
  const double precision = b / static_cast<double>(v);
  s.t += precision;
  s.tm += precision * static_cast<double>(m);
  s.b += b;
  s.b2 += b * b;
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

void gpoe_fuse_cpu(const GpoeFuseArgs<float>& args);
void gpoe_fuse_cpu(const GpoeFuseArgs<double>& args);

#if defined(TOOLBOX_WITH_CUDA)
// Same arguments with device pointers; launched on `stream`.
void gpoe_fuse_cuda(const GpoeFuseArgs<float>& args, uintptr_t stream);
void gpoe_fuse_cuda(const GpoeFuseArgs<double>& args, uintptr_t stream);
#endif

}  // namespace toolbox
