// Exact expected effects of choice-set misspecification (Freedman, Shah & Dragan 2020), batched over trials.
// Per trial: universe features phi [n, d], the robot's assumed set C_R and the human's true set C_H (byte masks),
// the true reward theta* = thetas[star]. For every human choice c in C_H, weighted by the Boltzmann probability
// P(c | theta*, C_H), and for each robot set S in {C_R, C_H}:
//   b(k | c) propto prior_k exp(beta theta_k.phi_c) / sum_{u in S u {c}} exp(beta theta_k.phi_u)
// accumulated online over k (running max, sum, sum of log-weights, sum of theta), giving b(theta* | c), the
// entropy H = m + log S0 - S1 / S0 and the robot's choice argmax_u E_b[theta].phi_u (first index within 1e-9 of
// the max), whose true-reward loss is the regret. out[t] = {P_mis, P_cor, H_mis, H_cor, regret_mis, regret_cor}.
// The per-trial routine is shared verbatim by the C++ and CUDA kernels; numpy reference:
// toolbox.choice.misspec.misspecification_effects.
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define TOOLBOX_CHOICE_HD __host__ __device__ __forceinline__
#else
#define TOOLBOX_CHOICE_HD inline
#endif

namespace toolbox {

constexpr int kChoiceMaxDim = 16;  // features per option (the mean theta lives in registers)
constexpr int kChoiceOutputs = 6;

struct ChoiceEffectsArgs {
  int64_t trials = 0, options = 0, dim = 0, hypotheses = 0;
  const double* features = nullptr;   // [trials, options, dim]
  const uint8_t* assumed = nullptr;   // [trials, options], C_R
  const uint8_t* truth = nullptr;     // [trials, options], C_H
  const int64_t* star = nullptr;      // [trials], index of theta* in thetas
  const double* thetas = nullptr;     // [hypotheses, dim]
  const double* log_prior = nullptr;  // [hypotheses], normalised
  double beta = 1.0;
  double* log_z = nullptr;            // workspace [trials, hypotheses]: log sum_{u in S} exp(beta theta_k.phi_u)
  double* out = nullptr;              // [trials, kChoiceOutputs]
};

TOOLBOX_CHOICE_HD double choice_dot(const double* a, const double* b, int64_t d) {
  double s = 0.0;
  for (int64_t j = 0; j < d; ++j) s += a[j] * b[j];
  return s;
}

TOOLBOX_CHOICE_HD double choice_logaddexp(double a, double b) {
  if (a == -INFINITY) return b;
  if (b == -INFINITY) return a;
  return a > b ? a + log1p(exp(b - a)) : b + log1p(exp(a - b));
}

// log sum over the masked options of exp(beta theta.phi_u); -inf for an empty mask.
TOOLBOX_CHOICE_HD double choice_log_partition(const double* phi, const uint8_t* mask, const double* theta,
                                              double beta, int64_t n, int64_t d) {
  double m = -INFINITY, s = 0.0;
  for (int64_t u = 0; u < n; ++u) {
    if (!mask[u]) continue;
    const double x = beta * choice_dot(theta, phi + u * d, d);
    if (x > m) {
      s = s * exp(m - x) + 1.0;
      m = x;
    } else {
      s += exp(x - m);
    }
  }
  return m == -INFINITY ? m : m + log(s);
}

TOOLBOX_CHOICE_HD void choice_trial_effects(const ChoiceEffectsArgs& a, int64_t t) {
  const int64_t n = a.options, d = a.dim, K = a.hypotheses;
  const double* phi = a.features + t * n * d;
  const uint8_t* sets[2] = {a.assumed + t * n, a.truth + t * n};
  const uint8_t* human = sets[1];
  const int64_t star = a.star[t];
  const double* theta_star = a.thetas + star * d;
  double* log_z = a.log_z + t * K;
  double best = -INFINITY;
  for (int64_t u = 0; u < n; ++u) best = fmax(best, choice_dot(theta_star, phi + u * d, d));
  const double log_z_human = choice_log_partition(phi, human, theta_star, a.beta, n, d);
  for (int robot = 0; robot < 2; ++robot) {
    const uint8_t* S = sets[robot];
    for (int64_t k = 0; k < K; ++k) log_z[k] = choice_log_partition(phi, S, a.thetas + k * d, a.beta, n, d);
    double acc_p = 0.0, acc_h = 0.0, acc_r = 0.0;
    for (int64_t c = 0; c < n; ++c) {
      if (!human[c]) continue;
      const double* phi_c = phi + c * d;
      const double w = exp(a.beta * choice_dot(theta_star, phi_c, d) - log_z_human);  // P(c | theta*, C_H)
      double m = -INFINITY, s0 = 0.0, s1 = 0.0, lw_star = 0.0, mean[kChoiceMaxDim] = {0.0};
      for (int64_t k = 0; k < K; ++k) {
        const double* th = a.thetas + k * d;
        const double u_c = a.beta * choice_dot(th, phi_c, d);
        const double lz = S[c] ? log_z[k] : choice_logaddexp(log_z[k], u_c);  // evaluate over S u {c}
        const double lw = a.log_prior[k] + u_c - lz;
        if (k == star) lw_star = lw;
        if (lw == -INFINITY) continue;
        double e = 1.0;
        if (lw > m) {
          const double scale = m == -INFINITY ? 0.0 : exp(m - lw);
          s0 *= scale;
          s1 *= scale;
          for (int64_t j = 0; j < d; ++j) mean[j] *= scale;
          m = lw;
        } else {
          e = exp(lw - m);
        }
        s0 += e;
        s1 += e * lw;
        for (int64_t j = 0; j < d; ++j) mean[j] += e * th[j];
      }
      const double p_star = lw_star == -INFINITY ? 0.0 : exp(lw_star - m) / s0;
      const double entropy = m + log(s0) - s1 / s0;
      double top = -INFINITY;
      for (int64_t u = 0; u < n; ++u) top = fmax(top, choice_dot(mean, phi + u * d, d) / s0);
      int64_t pick = 0;
      for (int64_t u = 0; u < n; ++u) {
        if (choice_dot(mean, phi + u * d, d) / s0 >= top - 1e-9 * (1.0 + fabs(top))) {
          pick = u;
          break;
        }
      }
      acc_p += w * p_star;
      acc_h += w * entropy;
      acc_r += w * (best - choice_dot(theta_star, phi + pick * d, d));
    }
    a.out[t * kChoiceOutputs + robot] = acc_p;
    a.out[t * kChoiceOutputs + 2 + robot] = acc_h;
    a.out[t * kChoiceOutputs + 4 + robot] = acc_r;
  }
}

void choice_effects_cpu(const ChoiceEffectsArgs& args);

#if defined(TOOLBOX_WITH_CUDA)
void choice_effects_cuda(const ChoiceEffectsArgs& args, uintptr_t stream);  // all pointers on the device
#endif

}  // namespace toolbox
