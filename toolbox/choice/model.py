"""Reward-rational choice with linear features and the exact Bayesian posterior over a reward grid.

Freedman, Shah & Dragan (2020), following Jeon, Milli & Dragan (2020):
    P(c | theta, C) = exp(beta * theta . phi(c)) / sum_{c' in C} exp(beta * theta . phi(c'))      (Boltzmann choice)
    b'(theta) propto b(theta) * prod_i P(c_i | theta, C_i)                                          (Bayes update)
A choice set C is a boolean mask over a universe of options with feature vectors phi [n, d]; a choice that is not in
the robot's assumed set is evaluated over C u {c} (our convention [R], the paper leaves it open).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp

from toolbox.core.errors import UserInputError


@dataclass(frozen=True)
class Observation:
    """One human choice: the option index and the choice set (mask over the universe) the robot evaluates it in."""

    choice: int
    choice_set: np.ndarray


@dataclass(frozen=True)
class ChoiceProblem:
    """A universe of options with features, reward hypotheses theta with a prior, and the rationality beta."""

    features: np.ndarray  # [n, d]
    thetas: np.ndarray  # [K, d]
    prior: np.ndarray  # [K], sums to 1
    beta: float
    names: list[str] = field(default_factory=list)
    feature_names: list[str] = field(default_factory=list)

    def __post_init__(self):
        feats = np.asarray(self.features, dtype=float)
        thetas = np.asarray(self.thetas, dtype=float)
        prior = np.asarray(self.prior, dtype=float)
        if feats.ndim != 2 or feats.shape[0] == 0 or feats.shape[1] == 0:
            raise UserInputError(f"features must be a non-empty [options, d] table, got shape {feats.shape}")
        if thetas.ndim != 2 or thetas.shape[0] == 0:
            raise UserInputError(f"thetas must be a non-empty [K, d] table, got shape {thetas.shape}")
        if thetas.shape[1] != feats.shape[1]:
            raise UserInputError(f"reward parameters have {thetas.shape[1]} entries but options have "
                                 f"{feats.shape[1]} features")
        if prior.shape != (thetas.shape[0],):
            raise UserInputError(f"prior has {prior.size} entries for {thetas.shape[0]} reward hypotheses")
        if not (np.isfinite(feats).all() and np.isfinite(thetas).all()):
            raise UserInputError("features and reward parameters must be finite numbers")
        if (prior < 0).any() or not np.isfinite(prior).all() or prior.sum() <= 0:
            raise UserInputError("prior weights must be finite, non-negative and not all zero")
        if not (np.isfinite(self.beta) and self.beta > 0):
            raise UserInputError(f"beta (rationality) must be a positive number, got {self.beta}")
        object.__setattr__(self, "features", feats)
        object.__setattr__(self, "thetas", thetas)
        object.__setattr__(self, "prior", prior / prior.sum())
        object.__setattr__(self, "names", list(self.names) or [f"option{i}" for i in range(len(feats))])

    @property
    def n_options(self) -> int:
        return self.features.shape[0]

    def utilities(self) -> np.ndarray:
        """beta * theta_k . phi(c) for every hypothesis and option, [K, n]."""
        return self.beta * self.thetas @ self.features.T

    def mask(self, indices) -> np.ndarray:
        m = np.zeros(self.n_options, dtype=bool)
        m[np.asarray(list(indices), dtype=int)] = True
        return m


def choice_logprobs(utilities: np.ndarray, choice_set: np.ndarray) -> np.ndarray:
    """log P(c | theta, C) for every option c of the set (-inf outside it), from utilities [..., n]."""
    choice_set = np.asarray(choice_set, dtype=bool)
    if not choice_set.any():
        raise UserInputError("a choice set is empty")
    masked = np.where(choice_set, utilities, -np.inf)
    return masked - logsumexp(masked, axis=-1, keepdims=True)


def log_likelihood(problem: ChoiceProblem, observations: list[Observation]) -> np.ndarray:
    """sum_i log P(c_i | theta_k, C_i u {c_i}) for every hypothesis k, [K]."""
    util = problem.utilities()
    total = np.zeros(util.shape[0])
    for obs in observations:
        check_observation(problem.n_options, obs)
        evaluated = np.asarray(obs.choice_set, dtype=bool).copy()
        evaluated[obs.choice] = True  # c outside the assumed set: evaluate over C u {c}
        total += choice_logprobs(util, evaluated)[:, obs.choice]
    return total


def check_observation(n_options: int, obs: Observation) -> None:
    cs = np.asarray(obs.choice_set)
    if cs.shape != (n_options,):
        raise UserInputError(f"a choice set mask has shape {cs.shape}, expected ({n_options},)")
    if not cs.any():
        raise UserInputError("a choice set is empty")
    if not 0 <= obs.choice < n_options:
        raise UserInputError(f"choice index {obs.choice} is outside the {n_options} options")


def _log_joint(problem: ChoiceProblem, observations: list[Observation]) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(problem.prior) + log_likelihood(problem, observations)


def posterior(problem: ChoiceProblem, observations: list[Observation]) -> np.ndarray:
    """Exact posterior over the hypothesis grid, b(theta | choices) [K]."""
    log_joint = _log_joint(problem, observations)
    return np.exp(log_joint - logsumexp(log_joint))


def log_evidence(problem: ChoiceProblem, observations: list[Observation]) -> float:
    """log P(choices | choice sets) = log sum_k b(theta_k) prod_i P(c_i | theta_k, C_i): the marginal likelihood
    that compares candidate choice sets (a larger set pays for the options the human did not pick)."""
    return float(logsumexp(_log_joint(problem, observations)))


def entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy in nats, 0 log 0 = 0."""
    p = np.asarray(p, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return -terms.sum(axis=axis)


def robot_choice(features: np.ndarray, thetas: np.ndarray, belief: np.ndarray) -> np.ndarray:
    """Index of the option maximising the posterior-mean reward E_b[theta] . phi(c) (belief [..., K]); ties
    (within 1e-9 relative, e.g. a symmetric posterior with mean ~0) go to the lowest index, as in the kernels."""
    scores = (np.asarray(belief) @ thetas) @ features.T
    top = scores.max(axis=-1, keepdims=True)
    return np.argmax(scores >= top - 1e-9 * (1 + np.abs(top)), axis=-1)


def regret(features: np.ndarray, theta_star: np.ndarray, chosen) -> np.ndarray:
    """True-reward loss of the chosen option(s) against the best option of the universe."""
    rewards = features @ theta_star
    return rewards.max() - rewards[chosen]


def unit_directions(d: int, k: int, seed: int = 0) -> np.ndarray:
    """k reward directions on the unit sphere in R^d: evenly spaced angles (d = 2), a Fibonacci lattice (d = 3),
    seeded Gaussian directions otherwise (d = 1 gives [-1, +1])."""
    if d < 1 or k < 1:
        raise UserInputError(f"need d >= 1 and at least one direction, got d={d}, k={k}")
    if d == 1:
        return np.array([[-1.0], [1.0]])
    if d == 2:
        angles = 2 * np.pi * np.arange(k) / k
        return np.stack([np.cos(angles), np.sin(angles)], axis=1)
    if d == 3:
        i = np.arange(k) + 0.5
        z = 1 - 2 * i / k
        r = np.sqrt(1 - z**2)
        phi = np.pi * (1 + 5**0.5) * i
        return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)
    g = np.random.default_rng(seed).standard_normal((k, d))
    return g / np.linalg.norm(g, axis=1, keepdims=True)
