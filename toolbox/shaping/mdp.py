"""Tabular MDPs, hard and soft (KL-regularised) Bellman backups, and the second law W[pi] >= F*.

Conventions (rewards/notes §A2.1): rewards r = -c are maximised. With a reference measure pi0 (a prior policy; the
counting measure, pi0 = 1, when none is given) and temperature T, the soft Bellman equation is
    Q_h(s,a) = r(s,a) + gamma * sum_s' P(s'|s,a) V_{h+1}(s'),     V_h(s) = T log sum_a pi0(a|s) exp(Q_h(s,a)/T),
with V_H = 0. T = 0 is the hard Bellman equation V_h(s) = max_a Q_h(s,a). The Boltzmann policy
pi*(a|s) = pi0(a|s) exp((Q_h - V_h)/T) attains the free energy F* = -V_0(s0); any other policy does the work
W[pi] = E_pi[sum_t c_t] + T sum_t E_pi KL(pi(.|s_t) || pi0(.|s_t)) >= F*   (second law; equality iff pi = pi*).
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy.special import xlogy

from toolbox.core.errors import UserInputError


@dataclasses.dataclass
class TabularMDP:
    """A finite-horizon (or discounted) tabular MDP with expected rewards R[s, a] and transitions P[s, a, s']."""

    name: str
    P: np.ndarray                 # [S, A, S] transition probabilities
    R: np.ndarray                 # [S, A] expected reward
    horizon: int                  # episode length H; 0: infinite horizon, discounted by gamma < 1
    start: np.ndarray             # [S] initial-state distribution
    reward_noise: np.ndarray | None = None   # [S, A] std of zero-mean Gaussian reward noise (None: deterministic)
    gamma: float = 1.0
    right_action: np.ndarray | None = None   # DeepSea only: [N, N] action index meaning "right" in each cell

    @property
    def n_states(self) -> int:
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        return self.P.shape[1]

    @property
    def discounted(self) -> bool:
        """An infinite-horizon discounted MDP (horizon 0): stationary values and policies, no time index."""
        return self.horizon == 0

    def validate(self) -> "TabularMDP":
        S, A = self.R.shape
        if self.P.shape != (S, A, S) or self.start.shape != (S,):
            raise UserInputError(f"{self.name}: P must be [S, A, S] and start [S] with R [S, A] = {self.R.shape}")
        if not np.allclose(self.P.sum(-1), 1.0, atol=1e-9) or (self.P < 0).any():
            raise UserInputError(f"{self.name}: rows of P must be probability distributions")
        if not np.isclose(self.start.sum(), 1.0) or self.horizon < 0:
            raise UserInputError(f"{self.name}: start must sum to 1 and the horizon be >= 1")
        if not 0 <= self.gamma <= 1 or (self.discounted and self.gamma == 1):
            raise UserInputError(f"{self.name}: gamma must be in [0, 1], and < 1 for an infinite horizon (horizon 0)")
        return self


def log_reference(prior, shape) -> np.ndarray:
    """log pi0 broadcast to [..., S, A]; None is the counting measure (log pi0 = 0: entropy regularisation)."""
    if prior is None:
        return np.zeros(shape)
    prior = np.broadcast_to(np.asarray(prior, dtype=np.float64), shape)
    if (prior <= 0).any():
        raise UserInputError("the reference policy pi0 must be > 0 for every action")
    return np.log(prior)


def logsumexp(x: np.ndarray, axis: int = -1, b: np.ndarray | None = None, keepdims: bool = False) -> np.ndarray:
    """log sum_i b_i exp(x_i) along axis (b >= 0), max-shifted; plain numpy (scipy's costs ~50 us per call)."""
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(x - m) if b is None else b * np.exp(x - m)
    out = np.log(np.sum(e, axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def soft_value(Q: np.ndarray, temperature: float, log_prior: np.ndarray) -> np.ndarray:
    """V(s) = T log sum_a pi0(a|s) exp(Q(s,a)/T); the hard max at T = 0 (notes A2.1)."""
    if temperature == 0:
        return Q.max(-1)
    return temperature * logsumexp(log_prior + Q / temperature, axis=-1)


def backward_induction(R: np.ndarray, P: np.ndarray, horizon: int, temperature: float = 0.0, prior=None,
                       gamma: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(Q [..., H, S, A], V [..., H+1, S]) of the finite-horizon soft (T > 0) or hard (T = 0) Bellman equation.

    R [..., S, A] and P [..., S, A, S] may carry leading batch axes (one MDP per batch entry). This is the numpy
    reference of the native kernel `shaping.native.backward_induction`.
    """
    if temperature < 0:
        raise UserInputError(f"temperature must be >= 0, got {temperature}")
    S, A = R.shape[-2:]
    log_prior = log_reference(prior, R.shape)
    Q = np.empty(R.shape[:-2] + (horizon, S, A))
    V = np.zeros(R.shape[:-2] + (horizon + 1, S))
    for h in range(horizon - 1, -1, -1):
        Q[..., h, :, :] = R + gamma * np.einsum("...sat,...t->...sa", P, V[..., h + 1, :])
        V[..., h, :] = soft_value(Q[..., h, :, :], temperature, log_prior)
    return Q, V


def value_iteration(R: np.ndarray, P: np.ndarray, gamma: float, temperature: float = 0.0, prior=None,
                    tol: float = 1e-10, max_iter: int = 100_000) -> tuple[np.ndarray, np.ndarray, int]:
    """Discounted (gamma < 1) soft or hard value iteration to a sup-norm change below tol: (Q, V, iterations)."""
    if not 0 <= gamma < 1:
        raise UserInputError(f"discounted value iteration needs 0 <= gamma < 1, got {gamma}")
    if not 0 <= temperature < np.inf:
        raise UserInputError(f"temperature must be finite and >= 0, got {temperature}")
    log_prior = log_reference(prior, R.shape)
    V = np.zeros(R.shape[:-1])
    for it in range(1, max_iter + 1):
        Q = R + gamma * np.einsum("...sat,...t->...sa", P, V)
        V_new = soft_value(Q, temperature, log_prior)
        done = np.max(np.abs(V_new - V)) < tol
        V = V_new
        if done:
            return Q, V, it
    return Q, V, max_iter


def boltzmann_policy(Q: np.ndarray, temperature: float, prior=None) -> np.ndarray:
    """pi(a|s) = pi0(a|s) exp(Q/T) / Z (the optimal soft policy); uniform over the maximisers at T = 0."""
    if temperature == 0:
        return greedy_policy(Q)
    logits = log_reference(prior, Q.shape) + Q / temperature
    return np.exp(logits - logsumexp(logits, axis=-1, keepdims=True))


def greedy_policy(Q: np.ndarray, rng: np.random.Generator | None = None, atol: float = 1e-12) -> np.ndarray:
    """One-hot argmax over the last axis; ties are split evenly, or broken at random when rng is given."""
    best = Q >= Q.max(-1, keepdims=True) - atol
    if rng is None:
        return best / best.sum(-1, keepdims=True)
    choice = np.argmax(best * rng.random(Q.shape), axis=-1)
    return np.eye(Q.shape[-1])[choice]


def policy_evaluation(R: np.ndarray, P: np.ndarray, policy: np.ndarray, temperature: float = 0.0, prior=None,
                      gamma: float = 1.0) -> np.ndarray:
    """V^pi [H+1, S] of a (time-indexed) policy [H, S, A] with the KL penalty T*KL(pi || pi0) per step.

    At T = 0 this is the plain expected return; at T > 0 the regularised return, i.e. minus the work W[pi].
    """
    H, S, A = policy.shape
    kl = np.zeros((H, S))
    if temperature > 0:
        kl = (xlogy(policy, policy) - policy * log_reference(prior, (S, A))).sum(-1)
    V = np.zeros((H + 1, S))
    for h in range(H - 1, -1, -1):
        Q = R + gamma * P @ V[h + 1]
        V[h] = (policy[h] * Q).sum(-1) - temperature * kl[h]
    return V


def discounted_policy_evaluation(R: np.ndarray, P: np.ndarray, policy: np.ndarray, gamma: float,
                                 temperature: float = 0.0, prior=None) -> np.ndarray:
    """V^pi [S] of a stationary policy [S, A] in a discounted MDP, exactly: the linear system
    (I - gamma P_pi) V = r_pi - T KL(pi || pi0), the infinite-horizon form of `policy_evaluation`."""
    if not 0 <= gamma < 1:
        raise UserInputError(f"discounted policy evaluation needs 0 <= gamma < 1, got {gamma}")
    S = R.shape[0]
    gain = (policy * R).sum(-1)
    if temperature > 0:
        gain = gain - temperature * (xlogy(policy, policy) - policy * log_reference(prior, R.shape)).sum(-1)
    return np.linalg.solve(np.eye(S) - gamma * np.einsum("sa,sat->st", policy, P), gain)


def optimal_values(mdp: TabularMDP, temperature: float = 0.0, prior=None) -> tuple[np.ndarray, np.ndarray]:
    """Soft (T > 0) or hard (T = 0) optimal values: (Q [H, S, A], V [H+1, S]) by backward induction, or the
    stationary (Q [S, A], V [S]) by value iteration when the MDP is discounted with an infinite horizon."""
    if mdp.discounted:
        Q, V, _ = value_iteration(mdp.R, mdp.P, mdp.gamma, temperature, prior)
        return Q, V
    return backward_induction(mdp.R, mdp.P, mdp.horizon, temperature, prior, mdp.gamma)


def start_value(mdp: TabularMDP, policy: np.ndarray, temperature: float = 0.0, prior=None) -> np.ndarray:
    """V^pi [S] at the first step (finite horizon, policy [H, S, A]) or stationary (discounted, policy [S, A])."""
    if mdp.discounted:
        return discounted_policy_evaluation(mdp.R, mdp.P, policy, mdp.gamma, temperature, prior)
    return policy_evaluation(mdp.R, mdp.P, policy, temperature, prior, mdp.gamma)[0]


def second_law(mdp: TabularMDP, policy: np.ndarray, temperature: float, prior=None,
               free_energy: float | None = None) -> dict:
    """Work W[pi] = E[sum c] + T sum KL, free energy F* = -V_soft(s0) and the gap W - F* >= 0 (notes A2.1);
    discounted sums (gamma^t) when gamma < 1. free_energy: F* when it is already known (skips the soft solve)."""
    if free_energy is None:
        V = optimal_values(mdp, temperature, prior)[1]
        free_energy = -float((V if mdp.discounted else V[0]) @ mdp.start)
    regularised = start_value(mdp, policy, temperature, prior) @ mdp.start
    expected_return = start_value(mdp, policy) @ mdp.start
    work = -float(regularised)
    return {"work": work, "free_energy": free_energy, "gap": work - free_energy,
            "expected_cost": -float(expected_return), "kl_cost": work + float(expected_return)}


def single_state_mdp(costs, horizon: int = 1) -> TabularMDP:
    """One state, one step per action with cost c_a (a bandit): the second law's smallest example."""
    c = np.asarray(costs, dtype=np.float64)
    return TabularMDP("bandit", P=np.ones((1, c.size, 1)), R=-c[None, :], horizon=horizon, start=np.ones(1))


def deepsea_soft_value_closed_form(size: int, temperature: float, move_cost: float = 0.01) -> float:
    """V_0 of deterministic DeepSea with pi0 = 1 (notes §7.1):
    T log[(1 + e^{-c/(N T)})^N - e^{-c/T} + e^{(1-c)/T}], summing exp(return/T) over all 2^N action sequences."""
    N, T, c = size, temperature, move_cost
    log_paths = N * np.log1p(np.exp(-c / (N * T)))  # log sum over all 2^N paths of exp(-cost/T)
    top = max(log_paths, (1 - c) / T)
    return float(T * (top + np.log(np.exp(log_paths - top) - np.exp(-c / T - top) + np.exp((1 - c) / T - top))))
