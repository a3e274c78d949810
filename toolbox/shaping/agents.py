"""Episodic agents for tabular MDPs with unknown dynamics: the thermodynamic explorer and five baselines.

Every agent hands out a time-indexed policy [H, S, A] for the next episode (`plan`) and learns from the finished
episode (`observe`). Q-learning agents index Q by step h, so applying their updates at the end of the episode in
step order is identical to updating online.

- thermo     (notes A2.3-A2.5, reconstruction): posterior-mean dynamics, shaped reward
             r~ = r_bar + eta * I(theta_sa; s', r), soft backward induction at temperature T against a uniform
             prior policy, Boltzmann action sampling. With beta != 0 the backup is Grau-Moya et al.'s (2016)
             generalised value iteration: Q = (1/beta) log E_posterior exp(beta (r + P_theta V)) over posterior
             samples (beta > 0 optimistic, beta -> 0 Bayesian, beta < 0 robust).
- psrl       Osband, Russo & Van Roy 2013: sample (P, R) from the posterior, act greedily on it.
- ucbvi      Azar, Osband & Munos 2017, UCBVI-CH: bonus 7 H L / sqrt(N), L = ln(5 S A T / delta), Q clipped at
             the largest remaining return and at its previous value. 'ucbvi:simplified=1' uses rlberry's
             simplified bonus (H - h) / sqrt(N) instead (times bonus_scale in both cases).
- ucrl2      Jaksch, Ortner & Auer 2010 confidence sets (reward + sqrt(7 ln(2SAt/delta) / 2N), L1 ball
             sqrt(14 S ln(2At/delta) / N)) with extended value iteration by backward induction, replanned every
             episode (the episodic reading used by Azar et al.).
- eps-greedy Watkins Q-learning, step size 1/N, epsilon-greedy (epsilon = 0.1).
- soft-q     soft Q-learning (Haarnoja et al. 2017, tabular): soft Bellman targets, Boltzmann policy at T.
"""
from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field

from toolbox.core.config import Fraction, NonNegFloat, PosFloat, PosInt, Real, check_params, parse_spec
from toolbox.core.errors import UserInputError
from toolbox.shaping import native
from toolbox.shaping.dirichlet import Posterior
from toolbox.shaping.mdp import boltzmann_policy, greedy_policy, logsumexp, soft_value

Probability = Annotated[float, Field(gt=0, lt=1)]  # a confidence parameter delta


def certainty_equivalent(x: np.ndarray, beta: float, weights: np.ndarray | None = None, axis: int = 0):
    """(1/beta) log E_w exp(beta x) along `axis`; the mean at beta = 0, the max (min) as beta -> +inf (-inf)."""
    x = np.asarray(x, dtype=np.float64)
    w = np.full(x.shape[axis], 1.0 / x.shape[axis]) if weights is None else np.asarray(weights, dtype=np.float64)
    w = np.expand_dims(w, tuple(i for i in range(x.ndim) if i != axis % x.ndim))
    if beta == 0:
        return (w * x).sum(axis)
    return logsumexp(beta * x, b=w, axis=axis) / beta


class Agent:
    """Base: sizes, the episode budget, a random generator and the posterior of the data seen so far."""

    def __init__(self, n_states: int, n_actions: int, horizon: int, episodes: int, rng: np.random.Generator,
                 prior_mass: PosFloat = 1.0):
        self.S, self.A, self.H, self.K = n_states, n_actions, horizon, episodes
        self.rng = rng
        self.posterior = Posterior(n_states, n_actions, prior_mass)
        self.steps = 0

    def plan(self) -> np.ndarray:
        raise NotImplementedError

    def observe(self, episode: dict[str, np.ndarray]) -> None:
        self.posterior.update(episode["states"], episode["actions"], episode["rewards"], episode["next_states"])
        self.steps += len(episode["states"])


class ThermoExplorer(Agent):
    def __init__(self, *args, temperature: PosFloat = 0.1, eta: NonNegFloat = 0.1, beta: Real = 0.0,
                 samples: PosInt = 16, **kw):
        super().__init__(*args, **kw)
        self.T, self.eta, self.beta, self.samples = temperature, eta, beta, int(samples)
        self.prior = np.full((self.S, self.A), 1.0 / self.A)

    def shaped_reward(self) -> np.ndarray:
        """r~(s,a) = r_bar(s,a) + eta * (I(theta; s') + I(mu; r)): the informational benefit (notes A2.3)."""
        ledger = self.posterior.ledger()
        return self.posterior.mean_R() + self.eta * (ledger["epistemic"] + ledger["reward_epistemic"])

    def plan(self) -> np.ndarray:
        shaped = self.shaped_reward()
        if self.beta == 0:
            Q, _ = native.backward_induction(shaped, self.posterior.mean_P(), self.H, self.T, self.prior)
        else:
            Q = self._generalised_backup(shaped)
        return boltzmann_policy(Q, self.T, self.prior)

    def _generalised_backup(self, shaped: np.ndarray) -> np.ndarray:
        """Grau-Moya et al. 2016: Q_h = CE_beta over posterior samples of r~ + P_theta V_{h+1}; returns Q."""
        Ps = self.posterior.sample_P(self.rng, self.samples)
        Rs = shaped + (self.posterior.sample_R(self.rng, self.samples) - self.posterior.mean_R())
        log_prior = np.log(self.prior)
        Q = np.empty((self.H, self.S, self.A))
        V = np.zeros((self.H + 1, self.S))
        for h in range(self.H - 1, -1, -1):
            Q[h] = certainty_equivalent(Rs + Ps @ V[h + 1], self.beta)
            V[h] = soft_value(Q[h], self.T, log_prior)
        return Q


class PSRL(Agent):
    def plan(self) -> np.ndarray:
        Q, _ = native.backward_induction(self.posterior.sample_R(self.rng), self.posterior.sample_P(self.rng),
                                         self.H, 0.0)
        return greedy_policy(Q, self.rng)


class UCBVI(Agent):
    def __init__(self, *args, delta: Probability = 0.1, bonus_scale: NonNegFloat = 1.0, simplified: bool = False,
                 **kw):
        super().__init__(*args, **kw)
        self.delta, self.bonus_scale, self.simplified = delta, bonus_scale, bool(simplified)
        self.v_max = (self.H - np.arange(self.H, dtype=np.float64))[:, None, None]  # largest return from step h
        self.Q = np.broadcast_to(self.v_max, (self.H, self.S, self.A)).copy()

    def plan(self) -> np.ndarray:
        post = self.posterior
        n = np.maximum(post.visits, 1.0)
        L = np.log(5 * self.S * self.A * self.K * self.H / self.delta)
        P_hat, R_hat = post.counts / n[..., None], post.reward_sum / n
        V = np.zeros(self.S)
        for h in range(self.H - 1, -1, -1):
            width = self.v_max[h] if self.simplified else 7 * self.H * L
            q = np.where(post.visits > 0, R_hat + self.bonus_scale * width / np.sqrt(n) + P_hat @ V, np.inf)
            self.Q[h] = np.minimum(self.Q[h], np.minimum(q, self.v_max[h]))
            V = self.Q[h].max(-1)
        return greedy_policy(self.Q, self.rng)


class UCRL2(Agent):
    def __init__(self, *args, delta: Probability = 0.1, **kw):
        super().__init__(*args, **kw)
        self.delta = delta

    def plan(self) -> np.ndarray:
        post = self.posterior
        n = np.maximum(post.visits, 1.0)
        t = max(self.steps, 1)
        r_opt = np.minimum(1.0, post.reward_sum / n + np.sqrt(7 * np.log(2 * self.S * self.A * t / self.delta)
                                                               / (2 * n)))
        radius = np.sqrt(14 * self.S * np.log(2 * self.A * t / self.delta) / n)
        P_hat = np.where(post.visits[..., None] > 0, post.counts / n[..., None], 1.0 / self.S)
        Q = np.empty((self.H, self.S, self.A))
        V = np.zeros(self.S)
        for h in range(self.H - 1, -1, -1):
            Q[h] = r_opt + optimistic_transitions(P_hat, radius, V) @ V
            V = Q[h].max(-1)
        return greedy_policy(Q, self.rng)


def optimistic_transitions(P_hat: np.ndarray, radius: np.ndarray, V: np.ndarray) -> np.ndarray:
    """argmax_p p.V over {p : ||p - P_hat||_1 <= radius} (Jaksch et al. 2010, Fig. 2), for all (s, a) at once:
    add radius/2 to the best next state, then take the excess mass from the worst states upwards."""
    order = np.argsort(V)                    # worst first
    best = order[-1]
    p = P_hat.copy()
    p[..., best] = np.minimum(1.0, P_hat[..., best] + radius / 2)
    excess = p.sum(-1, keepdims=True) - 1.0  # >= 0
    others = p[..., order[:-1]]
    before = np.cumsum(others, axis=-1) - others  # mass of the states worse than each one
    p[..., order[:-1]] = others - np.clip(excess - before, 0.0, others)
    return p


class EpsilonGreedy(Agent):
    def __init__(self, *args, epsilon: Fraction = 0.1, **kw):
        super().__init__(*args, **kw)
        self.epsilon = epsilon
        self.Q = np.zeros((self.H + 1, self.S, self.A))  # Q[H] = 0: nothing after the last step
        self.n = np.zeros((self.H, self.S, self.A))

    def target(self, h: int, s_next: int) -> float:
        return float(self.Q[h + 1, s_next].max())

    def plan(self) -> np.ndarray:
        return self.epsilon / self.A + (1 - self.epsilon) * greedy_policy(self.Q[:-1])

    def observe(self, episode):
        super().observe(episode)
        for h, (s, a, r, s2) in enumerate(zip(episode["states"], episode["actions"], episode["rewards"],
                                              episode["next_states"])):
            self.n[h, s, a] += 1
            self.Q[h, s, a] += (r + self.target(h, s2) - self.Q[h, s, a]) / self.n[h, s, a]


class SoftQLearning(EpsilonGreedy):
    def __init__(self, *args, temperature: PosFloat = 0.1, **kw):
        super().__init__(*args, epsilon=0.0, **kw)
        self.T = temperature
        self.log_prior = np.full(self.A, -np.log(self.A))

    def target(self, h: int, s_next: int) -> float:
        return float(soft_value(self.Q[h + 1, s_next], self.T, self.log_prior))

    def plan(self) -> np.ndarray:
        return boltzmann_policy(self.Q[:-1], self.T, np.exp(self.log_prior))


AGENTS = {"thermo": ThermoExplorer, "psrl": PSRL, "ucbvi": UCBVI, "ucrl2": UCRL2, "eps-greedy": EpsilonGreedy,
          "soft-q": SoftQLearning}


def parse_agent(spec: str) -> tuple[str, dict]:
    """'name' or 'name:key=value,...' (e.g. 'thermo:beta=1,eta=0.5') -> (name, parameters checked against the
    agent's signature: names, types and ranges)."""
    name, params = parse_spec(spec)
    if name not in AGENTS:
        raise UserInputError(f"unknown agent {name!r}; known: {', '.join(AGENTS)}")
    return name, check_params(AGENTS[name], params, f"agent {spec!r}")


def make_agent(spec: str, n_states: int, n_actions: int, horizon: int, episodes: int,
               rng: np.random.Generator, prior_mass: float = 1.0) -> Agent:
    name, params = parse_agent(spec)
    params.setdefault("prior_mass", prior_mass)
    try:
        return AGENTS[name](n_states, n_actions, horizon, episodes, rng, **params)
    except TypeError as exc:
        raise UserInputError(f"agent {spec!r}: {exc}") from None
