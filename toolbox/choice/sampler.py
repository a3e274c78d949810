"""Continuous reward parameters: a Metropolis-Hastings sampler on the unit sphere and its exact check.

theta lives on the unit sphere S^{d-1} (only its direction matters up to beta) with a uniform prior. The proposal
theta' = normalise(theta + sigma * eps), eps ~ N(0, I), depends on theta and theta' only through their angle, so it
is symmetric and the acceptance ratio is the likelihood ratio. For d = 2 the exact posterior is a fine quadrature
over the angle, and `angle_histogram` vs `exact_angle_posterior` gives the total-variation check; for d = 2 and 3
the sample mean is checked against the quadrature posterior mean (`exact_sphere_mean`).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.special import logsumexp

from toolbox.choice.model import ChoiceProblem, Observation, check_observation, log_likelihood, unit_directions

LogLik = Callable[[np.ndarray], np.ndarray]


def observation_loglik(features: np.ndarray, beta: float, observations: list[Observation],
                       compress: bool = True) -> LogLik:
    """thetas [m, d] -> sum_i log P(c_i | theta, C_i u {c_i}) [m]; compress=False is the plain model evaluation.

    With compress, options with equal features are interchangeable, so each set becomes its distinct feature
    vectors with multiplicities: log sum_C exp(u) = logsumexp_j (u_j + log count_j) (exact; a gridworld's thousands
    of trajectories share a few dozen feature counts)."""
    if not compress:
        return lambda thetas: log_likelihood(ChoiceProblem(features, thetas, np.ones(len(thetas)), beta), observations)
    terms = []
    for obs in observations:
        check_observation(len(features), obs)
        cset = np.asarray(obs.choice_set, dtype=bool).copy()
        cset[obs.choice] = True
        distinct, counts = np.unique(features[cset], axis=0, return_counts=True)
        terms.append((features[obs.choice], distinct, np.log(counts)))

    def loglik(thetas: np.ndarray) -> np.ndarray:
        total = np.zeros(len(thetas))
        for chosen, distinct, log_counts in terms:
            total += beta * thetas @ chosen - logsumexp(beta * thetas @ distinct.T + log_counts, axis=1)
        return total

    return loglik


def sample_sphere_posterior(loglik: LogLik, d: int, rng: np.random.Generator, chains: int = 64,
                            steps: int = 2000, burn_in: int = 500, step_size: float = 1.0):
    """Random-walk MH on S^{d-1}: (samples [chains * (steps - burn_in), d], acceptance rate)."""
    theta = rng.standard_normal((chains, d))
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)
    current = loglik(theta)
    kept, accepted = [], 0
    for step in range(steps):
        proposal = theta + step_size * rng.standard_normal((chains, d))
        proposal /= np.linalg.norm(proposal, axis=1, keepdims=True)
        cand = loglik(proposal)
        accept = np.log(rng.random(chains)) < cand - current
        theta = np.where(accept[:, None], proposal, theta)
        current = np.where(accept, cand, current)
        if step >= burn_in:
            kept.append(theta.copy())
            accepted += int(accept.sum())
    return np.concatenate(kept), accepted / max(1, chains * (steps - burn_in))


def angle_bins(bins: int) -> np.ndarray:
    return np.linspace(-np.pi, np.pi, bins + 1)


def exact_angle_posterior(loglik: LogLik, bins: int = 36, points_per_bin: int = 50) -> np.ndarray:
    """Posterior mass of each angle bin for d = 2 (uniform prior), by midpoint quadrature."""
    edges = angle_bins(bins)
    width = (edges[1] - edges[0]) / points_per_bin
    angles = edges[0] + width * (np.arange(bins * points_per_bin) + 0.5)
    ll = loglik(np.stack([np.cos(angles), np.sin(angles)], axis=1))
    w = np.exp(ll - ll.max())
    mass = w.reshape(bins, points_per_bin).sum(axis=1)
    return mass / mass.sum()


def exact_sphere_mean(loglik: LogLik, d: int) -> np.ndarray:
    """Posterior mean E[theta] (uniform prior) by quadrature on 3,600 evenly spaced angles (d = 2) or a Fibonacci
    lattice of 20,000 equal-area points (d = 3)."""
    if d not in (2, 3):
        raise ValueError("exact_sphere_mean supports d = 2 or 3")
    grid = unit_directions(d, 3_600 if d == 2 else 20_000)
    ll = loglik(grid)
    w = np.exp(ll - ll.max())
    return w @ grid / w.sum()


def angle_histogram(samples: np.ndarray, bins: int = 36) -> np.ndarray:
    counts, _ = np.histogram(np.arctan2(samples[:, 1], samples[:, 0]), bins=angle_bins(bins))
    return counts / counts.sum()


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    return 0.5 * float(np.abs(np.asarray(p) - np.asarray(q)).sum())
