"""Bayesian model of an unknown tabular MDP and the closed-form entropy ledger (notes A2.2).

Transitions: P(.|s,a) ~ Dirichlet(alpha), alpha = counts + prior. With alpha_0 = sum_i alpha_i and p = alpha/alpha_0:
    predictive   H[p]                                                  (total uncertainty about s')
    aleatoric    E_theta H[P_theta] = psi(alpha_0 + 1) - sum_i p_i psi(alpha_i + 1)   (the dynamics' own noise)
    epistemic    I(theta; s') = H[p] - E_theta H[P_theta]              (information gain of one more transition)
Rewards: r ~ N(mu_sa, sigma^2) with a conjugate N(m0, sigma^2/k0) prior on mu_sa; one more observation of (s,a) gains
I(mu; r) = 0.5 log((n + k0 + 1)/(n + k0)) nats (our reconstruction of "reward models"; sigma = 1 by default).
"""
from __future__ import annotations

import numpy as np
from scipy.special import digamma, xlogy

from toolbox.core.errors import UserInputError


def entropy_split(alpha) -> dict[str, np.ndarray]:
    """{'predictive', 'aleatoric', 'epistemic'} in nats for Dirichlet parameters alpha [..., K] (closed form)."""
    alpha = np.asarray(alpha, dtype=np.float64)
    if alpha.ndim == 0 or alpha.shape[-1] == 0 or not (alpha > 0).all():
        raise UserInputError("Dirichlet parameters must be a non-empty array of positive numbers")
    a0 = alpha.sum(-1, keepdims=True)
    p = alpha / a0
    predictive = -xlogy(p, p).sum(-1)
    aleatoric = digamma(a0[..., 0] + 1) - (p * digamma(alpha + 1)).sum(-1)
    return {"predictive": predictive, "aleatoric": aleatoric, "epistemic": predictive - aleatoric}


def policy_entropy(policy: np.ndarray) -> np.ndarray:
    """H[pi(.|s)] in nats over the last axis: the 'diffusion' of the controlled process."""
    return -xlogy(policy, policy).sum(-1)


class Posterior:
    """Dirichlet transition counts and Gaussian reward statistics for every (s, a), updated from episodes.

    prior_mass is the total Dirichlet pseudo-count per (s, a), spread evenly over the S next states
    (prior_mass = 1: Dir(1/S, ..., 1/S); prior_mass = S: Dir(1, ..., 1)).
    """

    def __init__(self, n_states: int, n_actions: int, prior_mass: float = 1.0, reward_prior_mean: float = 0.0,
                 reward_prior_count: float = 1.0, reward_std: float = 1.0):
        if prior_mass <= 0 or reward_prior_count <= 0 or reward_std <= 0:
            raise UserInputError("prior_mass, reward_prior_count and reward_std must be > 0")
        self.prior = np.full((n_states, n_actions, n_states), prior_mass / n_states)
        self.counts = np.zeros((n_states, n_actions, n_states))
        self.visits = np.zeros((n_states, n_actions))
        self.reward_sum = np.zeros((n_states, n_actions))
        self.m0, self.k0, self.sigma = reward_prior_mean, reward_prior_count, reward_std

    def update(self, states, actions, rewards, next_states) -> None:
        np.add.at(self.counts, (states, actions, next_states), 1.0)
        np.add.at(self.visits, (states, actions), 1.0)
        np.add.at(self.reward_sum, (states, actions), rewards)

    @property
    def alpha(self) -> np.ndarray:
        return self.counts + self.prior

    def mean_P(self) -> np.ndarray:
        a = self.alpha
        return a / a.sum(-1, keepdims=True)

    def sample_P(self, rng: np.random.Generator, n: int | None = None) -> np.ndarray:
        """Posterior draws of P [S, A, S] (or [n, S, A, S]) by normalised Gamma variates."""
        shape = self.alpha.shape if n is None else (n, *self.alpha.shape)
        g = rng.standard_gamma(np.broadcast_to(self.alpha, shape))
        g_sum = g.sum(-1, keepdims=True)
        return np.where(g_sum > 0, g / np.where(g_sum > 0, g_sum, 1.0), self.mean_P())

    def mean_R(self) -> np.ndarray:
        return (self.reward_sum + self.k0 * self.m0) / (self.visits + self.k0)

    def sample_R(self, rng: np.random.Generator, n: int | None = None) -> np.ndarray:
        shape = self.visits.shape if n is None else (n, *self.visits.shape)
        return self.mean_R() + self.sigma / np.sqrt(self.visits + self.k0) * rng.standard_normal(shape)

    def reward_information_gain(self) -> np.ndarray:
        """I(mu_sa; r) of one more reward observation, 0.5 log((n + k0 + 1) / (n + k0)) per (s, a)."""
        return 0.5 * np.log1p(1.0 / (self.visits + self.k0))

    def ledger(self) -> dict[str, np.ndarray]:
        """Per-(s,a) predictive / aleatoric / epistemic transition entropies and the reward information gain."""
        return {**entropy_split(self.alpha), "reward_epistemic": self.reward_information_gain()}
