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


def franz_parisi_empirical(points: np.ndarray, t: float, q, references: int = 256, bandwidth: float = 0.02,
                           seed: int = 0, h: float = 1e-3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """V(q), V', V'' for the empirical measure in d dimensions, q = |x_0 - x_0'|^2 / d. The posterior over
    training points is exact (softmax weights); the delta in q is a Gaussian kernel of width `bandwidth`
    [reconstructed: the paper treats 1-D mixtures only]."""
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

    def v_of(qs):
        return np.array([-np.mean(logsumexp(minus_h - 0.5 * ((qi - overlaps) / bandwidth) ** 2 - log_norm, axis=1))
                         for qi in qs])

    q = np.asarray(q, dtype=np.float64)
    return _derivatives(v_of, q, h)


def inflection_points(q: np.ndarray, second: np.ndarray) -> list[float]:
    """Overlaps where V'' changes sign."""
    idx = np.nonzero(np.sign(second[:-1]) != np.sign(second[1:]))[0]
    return [float(q[i] - second[i] * (q[i + 1] - q[i]) / (second[i + 1] - second[i])) for i in idx]
