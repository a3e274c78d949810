"""Speciation, collapse and the Franz-Parisi potential of the reverse dynamics.

Speciation, three definitions (each number is labelled with the one it uses):
  * curvature (Yu & Huang): the generalized free energy U(x, t) = -2 ln p_t(x) - x^2/2 (the reverse drift is
    -dU/dx) loses convexity at the symmetric point, U''(0, t_S) = 0. For the symmetric 1-D mixture this gives
    t_S = 1/2 ln(mu^2 + sqrt(mu^4 + (sigma^2 - 1)^2)) (the authors' `t_s`); `speciation_root` finds the same time
    by bisection on a finite-difference U''(0, t) of any 1-D mixture.
  * covariance (Biroli et al.): t_S = 1/2 ln Lambda, Lambda the largest eigenvalue of the data covariance.
  * cloning (Biroli et al.): two reverse trajectories branched at x_t end in the same class with probability
    phi(t); at t = 1/2 ln d for m = ones(d) the theory value is 0.7752.
Collapse (Biroli et al.): the excess entropy f^e(t) = E_{x ~ P^e_t}[ln P^e_t(x)] / d + 1/2 + 1/2 ln(2 pi Delta_t)
  + alpha of the empirical measure (alpha = ln n / d) vanishes for t < t_C; for Gaussian clusters of variance
  sigma^2 the large-d theory gives alpha + 1/2 ln(Delta_t / (Delta_t + sigma^2 e^-2t)) = 0 at t_C.
Franz-Parisi potential (Yu & Huang Fig. 11, the authors' fpp.py): V(q, t) = -E ln int dx_0 exp(-H(x_0; x_t))
  delta(q - |x_0 - x_0'|^2) with H = |x_t - e^-t x_0|^2 / (2 Delta_t) - ln p_0(x_0) and (x_0', x_t) drawn from the
  joint law (x_0' is an equilibrium replica of the posterior).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.optimize import brentq
from scipy.special import logsumexp

from toolbox.core import rng
from toolbox.core.errors import UserInputError
from toolbox.diffusion.densities import GaussianMixture


# -- speciation ----------------------------------------------------------------------------------------------
def speciation_formula(mu: float, sigma2: float) -> float:
    """Curvature criterion, closed form for 1/2 N(mu, s2) + 1/2 N(-mu, s2); <= 0 means no speciation."""
    with np.errstate(divide="ignore"):  # mu = 0, sigma^2 = 1: -inf (never)
        return 0.5 * float(np.log(mu**2 + np.sqrt(mu**4 + (sigma2 - 1.0) ** 2)))


def potential(density: GaussianMixture, x, t: float) -> np.ndarray:
    """U(x, t) = -2 ln p_t(x) - |x|^2 / 2 (the reverse drift x + 2 score is -grad U)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64).T).T
    return -2.0 * density.log_prob(x, t) - 0.5 * np.sum(x**2, 1)


def curvature_at_origin(density: GaussianMixture, t: float, h: float = 1e-3) -> float:
    """U''(0, t) along the first axis by a fourth-order central difference."""
    e = np.zeros((5, density.dim))
    e[:, 0] = np.array([-2, -1, 0, 1, 2]) * h
    u = potential(density, e, t)
    return float((-u[0] + 16 * u[1] - 30 * u[2] + 16 * u[3] - u[4]) / (12 * h * h))


def speciation_root(density: GaussianMixture, t_max: float = 30.0) -> float:
    """Curvature criterion by root finding: the t where U''(0, t) changes sign (NaN if it never does)."""
    lo = curvature_at_origin(density, 0.0)
    if lo >= 0 or curvature_at_origin(density, t_max) <= 0:
        return float("nan")
    return float(brentq(lambda t: curvature_at_origin(density, t), 0.0, t_max, xtol=1e-12))


def speciation_covariance(density: GaussianMixture) -> tuple[float, float]:
    """(Lambda, t_S = 1/2 ln Lambda) from the data covariance (Biroli et al.)."""
    lam = float(np.linalg.eigvalsh(density.covariance())[-1])
    return lam, 0.5 * float(np.log(lam))


def cloning_theory(density: GaussianMixture, t: float, samples: int = 100_000, seed: int = 0) -> float:
    """phi(t) = E_{x_t}[sum_k r_k(x_t)^2]: two exact reverse runs from x_t pick component k independently with
    posterior probability r_k (equals the same-class probability when the classes are separated at t = 0)."""
    x = density.sample(samples, t, seed, stream=91)
    return float(np.mean(np.sum(density.responsibilities(x, t) ** 2, 1)))


def cloning_probe(density: GaussianMixture, t_branch: float, pairs: int, h: float = 0.01, t_end: float = 0.0,
                  seed: int = 0, device: str = "cpu") -> dict:
    """Measured phi(t_branch): x_t exact from p_t, two clones by the reverse SDE (EM, step h) to t_end with
    independent Philox streams, classes by the largest posterior responsibility at t_end."""
    from toolbox.diffusion.sampler import simulate

    x_b = density.sample(pairs, t_branch, seed, stream=93)
    steps = max(1, int(round((t_branch - t_end) / h)))
    ends = [simulate(density, pairs, "reverse", "euler", t_end, t_branch, steps, seed=seed, stream=s, x_start=x_b,
                     device=device).x_end for s in (1, 2)]
    t_class = max(t_end, 1e-6) if density.is_empirical else t_end
    classes = [np.argmax(density.responsibilities(x, t_class), 1) for x in ends]
    same = classes[0] == classes[1]
    phi = float(same.mean())
    return {"t": t_branch, "phi": phi, "se": float(np.sqrt(phi * (1 - phi) / pairs)), "pairs": pairs, "h": h}


# -- phase diagram (the authors' Phase diagram.py) -----------------------------------------------------------
PHASES = ("no symmetry breaking", "symmetry breaking", "unstable symmetry breaking")


def phase(mu: float, sigma2: float) -> int:
    """0: t_S <= 0 (U convex at 0 for all t); 1: t_S > 0 with a confining U(x, 0); 2: t_S > 0 but U(x, 0) -> -inf
    at large |x| (U'' -> 2/sigma^2 - 1 < 0, i.e. sigma^2 > 2: the paper's 'unstable' phase)."""
    if speciation_formula(mu, sigma2) <= 0:
        return 0
    return 2 if sigma2 > 2.0 else 1


def phase_diagram(mus, sigmas) -> np.ndarray:
    """Phase codes [len(sigmas), len(mus)] over sigma (std) and mu, as in the paper's Fig. 5."""
    return np.array([[phase(mu, s * s) for mu in mus] for s in sigmas])


# -- collapse ------------------------------------------------------------------------------------------------
def collapse_time_gaussian(alpha: float, sigma2: float = 1.0) -> float:
    """t_C solving alpha + 1/2 ln(Delta_t / (Delta_t + sigma^2 e^-2t)) = 0 (Gaussian clusters, Biroli et al.)."""
    c = np.exp(-2.0 * alpha)
    return 0.5 * float(np.log1p(c * sigma2 / (1.0 - c)))


COLLAPSE_WIDTHS = 3.0  # the derived Monte Carlo grid spans t_C +- 3 crossover widths


def collapse_width(n: int, d: int, sigma2: float = 1.0) -> float:
    """Width in t of the finite-d crossover of E[w_self] around the Gaussian-cluster t_C [derived]. With
    s = sigma^2 e^-2t, ln(1/w_self - 1) = ln R ~ L(t) + sqrt(d s / (Delta + s)) xi (annealed sum over the other
    points, Gaussian fluctuations of |z|^2 and of the cross term), L = ln n + d/2 ln(Delta / (Delta + s)), and
    E[w_self] = E[logistic(-ln R)] adds the logistic spread pi^2/3; dL/dt = d s / (Delta (Delta + s)) because
    s + sigma^2 Delta = sigma^2. Width = spread of ln R / (dL/dt) at t_C."""
    t_c = collapse_time_gaussian(np.log(n) / d, sigma2)
    e2 = np.exp(-2.0 * t_c)
    s, delta = sigma2 * e2, 1.0 - e2
    return float(np.sqrt(np.pi**2 / 3 + d * s / (delta + s)) * delta * (delta + s) / (d * s))


def collapse_grid(n: int, d: int, sigma2: float = 1.0, points: int = 13, t_max: float = np.inf) -> np.ndarray:
    """The collapse section's Monte Carlo times: `points` values over t_C +- COLLAPSE_WIDTHS crossover widths
    (collapse_width), kept above t_C / 20 (t > 0) and below t_max (the speciation time: above it the other class
    contributes to the posterior and the Gaussian-cluster picture no longer applies)."""
    t_c = collapse_time_gaussian(np.log(n) / d, sigma2)
    w = collapse_width(n, d, sigma2)
    return np.linspace(max(t_c - COLLAPSE_WIDTHS * w, t_c / 20), min(t_c + COLLAPSE_WIDTHS * w, t_max), points)


def collapse_crossing(probes: list[dict]) -> tuple[float | None, float | None, str | None]:
    """Monte Carlo t_C: where E[w_self] (decreasing in t) crosses 1/2, linearly interpolated in the first
    bracketing pair, with its Monte Carlo SE by the delta method (SE of w_self / |slope|). A crossing outside
    the grid is not returned: (None, None, 'lower' | 'upper'), the edge beyond which it lies."""
    t = np.array([p["t"] for p in probes])
    w = np.array([p["w_self"] for p in probes]) - 0.5
    se = np.array([p["w_self_se"] for p in probes])
    idx = np.nonzero(np.sign(w[:-1]) != np.sign(w[1:]))[0]
    if len(idx) == 0:
        return None, None, "upper" if w[-1] > 0 else "lower"
    i = idx[0]
    slope = (w[i + 1] - w[i]) / (t[i + 1] - t[i])
    return float(t[i] - w[i] / slope), float(max(se[i], se[i + 1]) / abs(slope)), None


def biroli_training_set(n: int, dim: int, mu_tilde: float = 1.0, sigma: float = 1.0, seed: int = 0) -> np.ndarray:
    """n points of 1/2 N(+v0, s^2 I) + 1/2 N(-v0, s^2 I), |v0| = mu_tilde sqrt(d) in a random direction."""
    gen = rng.numpy_generator(seed, 31)
    v0 = gen.normal(size=dim)
    v0 *= mu_tilde * np.sqrt(dim) / np.linalg.norm(v0)
    signs = gen.choice([-1.0, 1.0], size=n)
    return signs[:, None] * v0 + sigma * gen.normal(size=(n, dim))


def collapse_probe(points: np.ndarray, t: float, samples: int, seed: int = 0, batch: int = 256) -> dict:
    """Monte Carlo over x = e^-t a^mu + sqrt(Delta_t) z ~ P^e_t of the empirical measure of `points` [n, d]:
    the excess entropy f^e(t) (Biroli et al.) and the mean posterior weight w_self of the generating point a^mu.

    f^e = E[ln P^e_t(x)] / d + 1/2 + 1/2 ln(2 pi Delta_t) + alpha = -E[ln w_self] / d after replacing |z|^2 by its
    mean d (a control variate with the same expectation and far less noise), so f^e >= 0 and f^e -> 0 on collapse.
    At finite n the transition is smooth; the finite-size collapse time used here is E[w_self](t_C) = 1/2.
    """
    n, d = points.shape
    gen = rng.numpy_generator(seed, 95)
    mu = gen.integers(0, n, size=samples)
    delta = 1.0 - np.exp(-2.0 * t)
    sq = np.exp(-2.0 * t) * np.sum(points**2, 1)
    log_w = []
    for i in range(0, samples, batch):
        idx = mu[i:i + batch]
        x = np.exp(-t) * points[idx] + np.sqrt(delta) * gen.normal(size=(len(idx), d))
        logits = -np.maximum(np.sum(x**2, 1)[:, None] - 2 * np.exp(-t) * x @ points.T + sq[None], 0) / (2 * delta)
        log_w.append(logits[np.arange(len(idx)), idx] - logsumexp(logits, axis=1))
    log_w = np.concatenate(log_w)
    f = -log_w / d
    return {"t": t, "f": float(f.mean()), "f_se": float(f.std(ddof=1) / np.sqrt(samples)),
            "alpha": float(np.log(n) / d), "w_self": float(np.exp(log_w).mean()),
            "w_self_se": float(np.exp(log_w).std(ddof=1) / np.sqrt(samples))}


def zero_crossing(times, values) -> float:
    """Linear interpolation of the first sign change of values along increasing times (NaN if none)."""
    times, values = np.asarray(times), np.asarray(values)
    idx = np.nonzero(np.sign(values[:-1]) != np.sign(values[1:]))[0]
    if len(idx) == 0:
        return float("nan")
    i = idx[0]
    return float(times[i] - values[i] * (times[i + 1] - times[i]) / (values[i + 1] - values[i]))


def denoise(density: GaussianMixture, x: np.ndarray, t: float) -> np.ndarray:
    """Tweedie's posterior mean E[x_0 | x_t] = (x_t + Delta_t grad log p_t(x_t)) e^t (the final denoising step)."""
    return (x + (1.0 - np.exp(-2.0 * t)) * density.score(x, t)) * np.exp(t)


def memorisation_fraction(samples: np.ndarray, points: np.ndarray, ratio: float = 1.0 / 3.0) -> float:
    """Fraction of samples whose nearest training point is closer than `ratio` times the second nearest
    (the nearest-neighbour ratio criterion of memorisation studies; needs >= 2 training points)."""
    d2 = np.maximum(np.sum(samples**2, 1)[:, None] - 2 * samples @ points.T + np.sum(points**2, 1)[None, :], 0)
    two = np.sqrt(np.partition(d2, 1, axis=1)[:, :2])
    return float(np.mean(two[:, 0] < ratio * two[:, 1]))


# -- Franz-Parisi potential ----------------------------------------------------------------------------------
def _derivatives(fn, q: np.ndarray, h: float):
    """(V, V', V'') at q by central differences of fn (common random numbers keep them smooth)."""
    v0, vp, vm = fn(q), fn(q + h), fn(q - h)
    return v0, (vp - vm) / (2 * h), (vp - 2 * v0 + vm) / (h * h)


def franz_parisi_1d(density: GaussianMixture, t: float, q, samples: int = 20_000, seed: int = 0,
                    h: float = 1e-4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """V(q), V'(q), V''(q) for 1-D data: V = -E ln[(1/(2 sqrt q)) sum_{+-} exp(-H(x_0' +- sqrt q, x_t))]."""
    if density.dim != 1:
        raise UserInputError("franz_parisi_1d needs 1-D data; use franz_parisi_empirical for d > 1")
    q = np.asarray(q, dtype=np.float64)
    if np.any(q - h <= 0):
        raise UserInputError("the overlap grid must stay above 0")
    ref = density.sample(samples, 0.0, seed, stream=97)[:, 0]
    xt = np.exp(-t) * ref + np.sqrt(1 - np.exp(-2 * t)) * rng.numpy_generator(seed, 98).normal(size=samples)
    delta = 1.0 - np.exp(-2.0 * t)

    def hamiltonian(x0):
        return (xt - x0 * np.exp(-t)) ** 2 / (2 * delta) - density.log_prob(x0[:, None], 0.0)

    def v_of(qs):
        out = np.empty(len(qs))
        for i, qi in enumerate(qs):
            r = np.sqrt(qi)
            logz = np.logaddexp(-hamiltonian(ref + r), -hamiltonian(ref - r)) - np.log(2 * r)
            out[i] = -np.mean(logz)
        return out

    return _derivatives(v_of, q, h)


class FPEstimate(NamedTuple):
    """V(q), V'(q), V''(q) and their standard errors (0 for a quadrature)."""
    v: np.ndarray
    dv: np.ndarray
    ddv: np.ndarray
    se_v: np.ndarray
    se_dv: np.ndarray
    se_ddv: np.ndarray


def _mean_se(per: tuple, weights: np.ndarray | None = None) -> FPEstimate:
    """Mean over the first axis of per-sample V, V', V'' [S, Q] (quadrature weights if given) and the SE of
    the mean of S independent samples."""
    if weights is not None:
        return FPEstimate(*(weights @ a for a in per), *(np.zeros(a.shape[1]) for a in per))
    n = per[0].shape[0]
    return FPEstimate(*(a.mean(0) for a in per), *(a.std(0, ddof=1) / np.sqrt(n) for a in per))


def _per_sample_derivatives(fn, q: np.ndarray, rel_h: float = 1e-3) -> tuple:
    """Per-sample (V, V', V'') [S, Q] by central differences of fn(q) [S, Q], each row a smooth deterministic
    function (no Monte Carlo noise inside a row). Step h = rel_h q: float64 round-off of ln Z (~1e-15 |ln Z|)
    costs ~4e-15 |ln Z| / h^2 in V'' and the truncation error is ~h^2 |V''''| / 12 ~ rel_h^2 / q^2 (V varies on the
    scale q); both are far below the Monte Carlo error."""
    h = rel_h * q
    v0, vp, vm = fn(q), fn(q + h), fn(q - h)
    return v0, (vp - vm) / (2 * h), (vp - 2 * v0 + vm) / h**2


def _log_overlap_density(q: np.ndarray, d: int, lam: np.ndarray, tau2: np.ndarray, log_r: np.ndarray) -> np.ndarray:
    """ln of the density [S, Q] of Q = |x_0 - x_0'|^2 / d at q when x_0 ~ sum_k r_k N(mu_k, tau_k^2 I_d):
    |x_0 - x_0'|^2 / tau_k^2 is noncentral chi^2_d(lam_k), lam_k = |mu_k - x_0'|^2 / tau_k^2 (lam, log_r [S, K])."""
    from scipy import stats

    x = q[None, :, None] * d / tau2[None, None, :]
    log_f = stats.ncx2.logpdf(x, d, lam[:, None, :]) + np.log(d / tau2)[None, None, :] + log_r[:, None, :]
    return logsumexp(log_f, axis=2)


def _check_overlaps(q) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    if np.any(q <= 0):
        raise UserInputError("the overlap grid must stay above 0")
    return q


def franz_parisi_mixture(density: GaussianMixture, t: float, q, samples: int = 10_000,
                         seed: int = 0) -> FPEstimate:
    """V(q) = -E ln p(Q = q | x_t, x_0') for Gaussian-mixture data in any d, q = |x_0 - x_0'|^2 / d [derived]:
    the posterior of x_0 given x_t is sum_k r_k(x_t) N(mu_k, tau_k^2 I) with tau_k^2 = s_k^2 Delta / v_k(t),
    mu_k = tau_k^2 (m_k / s_k^2 + e^-t x_t / Delta), so the constrained integral over x_0 is exact (noncentral
    chi^2 densities) and only the quenched average over (x_0', x_t) (the joint law, as fpp.py) is Monte Carlo:
    per-sample V, V', V'' are smooth in q, and their SE is that of a mean of independent samples. For d = 1,
    V is franz_parisi_1d's plus the q-independent E ln p_t(x_t) + 1/2 ln(2 pi Delta) (e^-H is the unnormalised
    posterior)."""
    if np.any(density.variances <= 0):
        raise UserInputError("franz_parisi_mixture needs components of positive variance; use "
                             "franz_parisi_empirical for an empirical measure")
    q = _check_overlaps(q)
    d = density.dim
    ref = density.sample(samples, 0.0, seed, stream=97)
    delta = 1.0 - np.exp(-2.0 * t)
    xt = np.exp(-t) * ref + np.sqrt(delta) * rng.numpy_generator(seed, 98).normal(size=(samples, d))
    tau2 = density.variances * delta / density.marginal(t)[1]
    mu = tau2[None, :, None] * (density.means / density.variances[:, None])[None] \
        + (tau2 * np.exp(-t) / delta)[None, :, None] * xt[:, None, :]
    lam = np.sum((mu - ref[:, None, :]) ** 2, axis=2) / tau2[None, :]
    with np.errstate(divide="ignore"):
        log_r = np.log(density.responsibilities(xt, t))
    return _mean_se(_per_sample_derivatives(lambda qs: -_log_overlap_density(qs, d, lam, tau2, log_r), q))


def franz_parisi_gaussian(sigma2: float, dim: int, t: float, q, nodes: int = 512) -> FPEstimate:
    """Reference for Gaussian data N(m, sigma^2 I_d) [derived]: the replica x_0' is a posterior draw, so
    lam = |mu - x_0'|^2 / tau^2 ~ chi^2_d exactly and V(q) = -E_lam ln[(d / tau^2) ncx2_d(q d / tau^2; lam)] is a
    1-D integral, done by Gauss-Legendre quadrature over the chi^2_d quantile (no Monte Carlo: SE = 0)."""
    from scipy import stats

    q = _check_overlaps(q)
    u, w = np.polynomial.legendre.leggauss(nodes)
    lam = stats.chi2.ppf(0.5 * (u + 1.0), dim)[:, None]
    delta = 1.0 - np.exp(-2.0 * t)
    tau2 = np.array([sigma2 * delta / (delta + sigma2 * np.exp(-2.0 * t))])
    per = _per_sample_derivatives(lambda qs: -_log_overlap_density(qs, dim, lam, tau2, np.zeros((nodes, 1))), q)
    return _mean_se(per, 0.5 * w)


def franz_parisi_empirical(points: np.ndarray, t: float, q, references: int = 2048, bandwidth: float = 0.1,
                           seed: int = 0) -> FPEstimate:
    """V(q), V', V'' and their SEs for the empirical measure in d dimensions, q = |x_0 - x_0'|^2 / d. The posterior
    over training points is exact (softmax weights); the delta in q is a Gaussian kernel of width `bandwidth`
    [reconstructed: the paper treats 1-D mixtures only]. Per reference, V_r = -ln sum_nu p_nu K(q - o_nu) has the
    analytic derivatives V_r' = <q - o>_w / b^2 and V_r'' = 1/b^2 - Var_w(q - o) / b^4 (w ~ p K), so no finite
    differences; the SE is over the independent references."""
    n, d = points.shape
    gen = rng.numpy_generator(seed, 99)
    nu = gen.integers(0, n, size=references)
    delta = 1.0 - np.exp(-2.0 * t)
    xt = np.exp(-t) * points[nu] + np.sqrt(delta) * gen.normal(size=(references, d))
    dist2 = np.maximum(np.sum(xt**2, 1)[:, None] - 2 * np.exp(-t) * xt @ points.T
                       + np.exp(-2 * t) * np.sum(points**2, 1)[None, :], 0)
    minus_h = -dist2 / (2 * delta) - np.log(n)  # -H_mu for each reference [R, n]
    overlaps = np.maximum(np.sum(points[nu] ** 2, 1)[:, None] - 2 * points[nu] @ points.T
                          + np.sum(points**2, 1)[None, :], 0) / d
    log_norm = np.log(bandwidth * np.sqrt(2 * np.pi))
    q = np.asarray(q, dtype=np.float64)
    per = np.empty((3, references, len(q)))
    for j, qi in enumerate(q):
        gap = qi - overlaps
        logits = minus_h - 0.5 * (gap / bandwidth) ** 2
        lse = logsumexp(logits, axis=1)
        w = np.exp(logits - lse[:, None])
        mean = np.sum(w * gap, 1)
        per[:, :, j] = (log_norm - lse, mean / bandwidth**2,
                        1.0 / bandwidth**2 - (np.sum(w * gap**2, 1) - mean**2) / bandwidth**4)
    return _mean_se(tuple(per))


def fp_reliability(est: FPEstimate, rel: float = 0.1) -> tuple[bool, str]:
    """V'' is called reliable when its error bar resolves its shape (its inflection points): the largest SE of V''
    is at most `rel` times the range of V'' over the grid."""
    span = float(np.ptp(est.ddv))
    worst = float(np.max(est.se_ddv))
    if not (np.all(np.isfinite(est.ddv)) and np.isfinite(worst)):
        return False, "V'' is not finite on the whole grid"
    if worst > rel * span:
        return False, (f"max SE(V'') = {worst:.3g} exceeds {rel:g} x its range {span:.3g}: noise-dominated "
                       "(raise the samples / references or the bandwidth)")
    return True, f"max SE(V'') = {worst:.3g} <= {rel:g} x its range {span:.3g}"


def inflection_points(q: np.ndarray, second: np.ndarray) -> list[float]:
    """Overlaps where V'' changes sign."""
    idx = np.nonzero(np.sign(second[:-1]) != np.sign(second[1:]))[0]
    return [float(q[i] - second[i] * (q[i + 1] - q[i]) / (second[i + 1] - second[i])) for i in idx]
