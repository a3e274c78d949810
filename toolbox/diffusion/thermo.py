"""Trajectory and ensemble thermodynamics of the diffusion processes (Yu & Huang secs. 2.3-2.5, 3.5).

Trajectory level: Delta S_tot = Delta S + Delta S_E with <exp(-Delta S_tot)> = 1 (integral fluctuation theorem,
eq. 64) for the forward and the reverse process. Ensemble level (eqs. 24-30), with f = -x, the score s and the
Fisher information I(t) = E|s|^2:
    forward:  pi = E|x + s|^2 = E|x|^2 - 2d + I,   phi = E[f . J/p] = E|x|^2 - d,   dS/dt = pi - phi = I - d
    reverse:  pi* = pi,   phi* = E[(x + 2s) . (x + s)] = E|x|^2 - 3d + 2I,   dS*/dt = pi - phi* = d - I
(physical time t on the axis, as in the paper's Figs. 9-10). Expectations are quadratures for d = 1 and
Monte Carlo over exact Philox samples otherwise.
"""
from __future__ import annotations

import numpy as np

from toolbox.diffusion.densities import GaussianMixture


# -- trajectory statistics ----------------------------------------------------------------------------------
def ift_stats(total: np.ndarray) -> dict:
    """Mean and standard error of exp(-Delta S_tot) and of Delta S_tot; z = (mean - 1) / SE."""
    w = np.exp(-np.asarray(total, dtype=np.float64))
    n = len(w)
    mean, se = float(w.mean()), float(w.std(ddof=1) / np.sqrt(n))
    return {"n": n, "mean_exp_neg": mean, "se_exp_neg": se, "z": (mean - 1.0) / se if se > 0 else 0.0,
            "mean_total": float(np.mean(total)), "se_total": float(np.std(total, ddof=1) / np.sqrt(n))}


def ift_convergence(total: np.ndarray, points: int = 50) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, mean exp(-S) over the first n trajectories, its SE) on a grid of n (the paper's Figs. 2 and 7)."""
    w = np.exp(-np.asarray(total, dtype=np.float64))
    ns = np.unique(np.linspace(min(100, len(w)), len(w), points).astype(int))
    csum, csq = np.cumsum(w), np.cumsum(w**2)
    mean = csum[ns - 1] / ns
    var = np.maximum(csq[ns - 1] / ns - mean**2, 0.0) * ns / np.maximum(ns - 1, 1)
    return ns, mean, np.sqrt(var / ns)


# -- Gaussian data: closed forms [derived in the notes] ------------------------------------------------------
def gaussian_variance(sigma2: float, t):
    return 1.0 + (sigma2 - 1.0) * np.exp(-2.0 * np.asarray(t, dtype=np.float64))


def gaussian_mean_production(sigma2: float, t_end: float, dim: int = 1) -> float:
    """<Delta S_tot> on [0, T] for N(0, sigma2 I_d) data = int_0^T pi dt = d/2 [(s2-1)(1-e^-2T) - ln(s2/v_T)]."""
    v_end = gaussian_variance(sigma2, t_end)
    return 0.5 * dim * ((sigma2 - 1.0) * (1.0 - np.exp(-2.0 * t_end)) - np.log(sigma2 / v_end))


def gaussian_rates(sigma2: float, t, dim: int = 1) -> dict:
    """pi = d (v-1)^2 / v, phi = d (v-1), dS/dt = d (1/v - 1) for Gaussian data."""
    v = gaussian_variance(sigma2, t)
    return {"pi": dim * (v - 1.0) ** 2 / v, "phi": dim * (v - 1.0), "dS": dim * (1.0 / v - 1.0)}


# -- ensemble rates ------------------------------------------------------------------------------------------
def _grid_1d(density: GaussianMixture, t: float, points: int = 4001) -> np.ndarray:
    m, v = density.marginal(t)
    half = float(np.max(np.abs(m)) + 12.0 * np.sqrt(np.max(v)))
    return np.linspace(-half, half, points)[:, None]


def expectation(density: GaussianMixture, t: float, fn, samples: int = 200_000, seed: int = 0) -> float:
    """E_{p_t}[fn(x, log p, score)]: trapezoid quadrature for d = 1, Monte Carlo (Philox samples) otherwise."""
    if density.dim == 1:
        x = _grid_1d(density, t)
        logp, score = density.log_prob_score(x, t)
        return float(np.trapezoid(np.exp(logp) * fn(x, logp, score), x[:, 0]))
    x = density.sample(samples, t, seed, stream=77)
    logp, score = density.log_prob_score(x, t)
    return float(np.mean(fn(x, logp, score)))


def fisher_information(density: GaussianMixture, t: float, **kw) -> float:
    return expectation(density, t, lambda x, lp, s: np.sum(s**2, 1), **kw)


def entropy(density: GaussianMixture, t: float, **kw) -> float:
    """Differential entropy S(t) = -E ln p_t."""
    return expectation(density, t, lambda x, lp, s: -lp, **kw)


def ensemble_rates(density: GaussianMixture, times, **kw) -> dict:
    """pi, phi, dS/dt (forward) and phi*, dS*/dt (reverse) at each physical time (module docstring)."""
    times = np.asarray(times, dtype=np.float64)
    d = density.dim
    fisher = np.array([fisher_information(density, t, **kw) for t in times])
    second = np.array([density.second_moment(t) for t in times])
    pi = second - 2 * d + fisher
    return {"t": times, "fisher": fisher, "pi": pi, "phi": second - d, "dS": fisher - d,
            "pi_rev": pi, "phi_rev": second - 3 * d + 2 * fisher, "dS_rev": d - fisher}


def integrate(times, values) -> float:
    """Simpson's rule on the time grid."""
    from scipy.integrate import simpson

    return float(simpson(values, x=times))
