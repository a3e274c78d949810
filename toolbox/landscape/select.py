"""RL topic selection (topics.md §1.2 step 4, a reconstruction [R]: the paper does not name its algorithm).

The agent builds a set T of L topics one pick at a time. The value of a set balances diversity against similarity
to the experts' aspects, plus how strongly its topics trend, minus redundancy:

    R(T) = alpha Div(T) + beta Sim(T) + kappa Trend(T) - gamma Red(T)
    Div(T)   = mean pairwise JSD(phi_i || phi_j) / ln 2 over the selected topics (0 for |T| < 2)
    Sim(T)   = mean over k in T of max_a cos(phi_k, w_a)          (0 without aspects)
    Trend(T) = mean over k in T of tanh(|relative change of M_k|) (1 - p_k), p_k the slope's p-value
    Red(T)   = number of selected pairs with JSD / ln 2 < delta

Picking topic k in state T earns r = R(T + k) - R(T) (so an episode's return is R of the final set).
- qlearn: tabular Q-learning, state = the set picked so far, action = the topic to add (picked topics masked),
  epsilon-greedy with epsilon decaying linearly, every untried topic tried first in each state, step size
  max(eta, 1/n(s, a)): Q(s,a) <- Q(s,a) + eta [r + discount max_a' Q(s',a') - Q(s,a)].
- bandit: a combinatorial epsilon-greedy bandit: each episode picks L topics by value estimates, every member a
  is credited with its difference reward R(T) - R(T - a); values are running means.
The ranking is the learned policy's picks in order, then the other topics by their value at the first pick.
Baselines: random sets (mean R over the same number of episodes) and greedy (largest marginal gain each pick).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from toolbox.core.config import Fraction, NonNegFloat, PosInt
from toolbox.core.errors import UserInputError
from toolbox.core.rng import numpy_generator
from toolbox.landscape.metrics import LN2, cosine_matrix, jsd_matrix

AGENTS = ("qlearn", "bandit")


@dataclasses.dataclass
class SelectConfig:
    agent: Literal[AGENTS] = "qlearn"
    select: PosInt = 5  # L, topics per selected set
    episodes: PosInt = 500  # topics.md suggests 200; every topic must be tried at the first pick (K episodes)
    alpha: NonNegFloat = 1.0  # diversity weight
    beta: NonNegFloat = 1.0  # aspect-similarity weight
    kappa: NonNegFloat = 1.0  # trend weight [R]
    gamma: NonNegFloat = 0.5  # redundancy penalty
    delta: Fraction = 0.2  # redundancy threshold on JSD / ln 2
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 0.1
    discount: Fraction = 0.9
    epsilon_start: Fraction = 0.3
    epsilon_end: Fraction = 0.05


class SetValue:
    """R(T) for topic sets, from precomputed pairwise JSD, aspect similarity and trend scores."""

    def __init__(self, phi: np.ndarray, trend_score: np.ndarray, aspect_weights: np.ndarray | None,
                 cfg: SelectConfig):
        self.cfg = cfg
        self.div = jsd_matrix(phi, phi) / LN2
        self.sim = (cosine_matrix(phi, aspect_weights).max(axis=1) if aspect_weights is not None
                    else np.zeros(phi.shape[0]))
        self.trend = np.asarray(trend_score, dtype=np.float64)

    def __call__(self, topics: list[int]) -> float:
        c, t = self.cfg, list(topics)
        if not t:
            return 0.0
        n = len(t)
        pair = self.div[np.ix_(t, t)][np.triu_indices(n, 1)] if n > 1 else np.zeros(0)
        div = float(pair.mean()) if n > 1 else 0.0
        red = float((pair < c.delta).sum())
        return c.alpha * div + c.beta * float(self.sim[t].mean()) + c.kappa * float(self.trend[t].mean()) \
            - c.gamma * red

    def parts(self, topics: list[int]) -> dict:
        t = list(topics)
        n = len(t)
        pair = self.div[np.ix_(t, t)][np.triu_indices(n, 1)] if n > 1 else np.zeros(0)
        return {"value": self(t), "diversity": float(pair.mean()) if n > 1 else 0.0,
                "similarity": float(self.sim[t].mean()), "trend": float(self.trend[t].mean()),
                "redundant_pairs": int((pair < self.cfg.delta).sum())}


def trend_scores(trends: list[dict]) -> np.ndarray:
    """tanh(|relative change|) (1 - p): large for strong, significant rises or falls of magnitude."""
    return np.array([math.tanh(abs(t["relative_change"])) * (1.0 - t["p_value"]) for t in trends])


def _epsilon(cfg: SelectConfig, episode: int) -> float:
    frac = episode / max(cfg.episodes - 1, 1)
    return cfg.epsilon_start + (cfg.epsilon_end - cfg.epsilon_start) * frac


def _pick(values: np.ndarray, taken: list[int], eps: float, rng, visits: np.ndarray | None = None) -> int:
    free = np.setdiff1d(np.arange(len(values)), taken)
    if visits is not None and (visits[free] == 0).any():
        return int(free[np.argmin(visits[free])])
    if rng.random() < eps:
        return int(rng.choice(free))
    return int(free[np.argmax(values[free])])


def _qlearn(value: SetValue, k: int, length: int, cfg: SelectConfig, rng):
    q: dict[frozenset, np.ndarray] = {}
    visits: dict[frozenset, np.ndarray] = {}

    def table(state):
        if state not in q:
            q[state], visits[state] = np.zeros(k), np.zeros(k)
        return q[state], visits[state]

    curve = []
    for ep in range(cfg.episodes):
        eps, taken, total = _epsilon(cfg, ep), [], 0.0
        for step in range(length):
            qs, ns = table(frozenset(taken))
            a = _pick(qs, taken, eps, rng, ns)
            r = value(taken + [a]) - value(taken)
            nxt = 0.0
            if step + 1 < length:
                q_next, _ = table(frozenset(taken + [a]))
                nxt = float(np.delete(q_next, taken + [a]).max())
            taken.append(a)
            total += r
            ns[a] += 1
            qs[a] += max(cfg.learning_rate, 1.0 / ns[a]) * (r + cfg.discount * nxt - qs[a])
        curve.append(total)
    policy: list[int] = []
    for _ in range(length):
        policy.append(_pick(table(frozenset(policy))[0], policy, 0.0, rng))
    return policy, q[frozenset()], curve


def _bandit(value: SetValue, k: int, length: int, cfg: SelectConfig, rng):
    est, counts = np.full(k, np.inf), np.zeros(k)  # untried arms first
    curve = []
    for ep in range(cfg.episodes):
        eps, taken = _epsilon(cfg, ep), []
        for _ in range(length):
            taken.append(_pick(est, taken, eps, rng))
        r = value(taken)
        for a in taken:
            credit = r - value([b for b in taken if b != a])
            counts[a] += 1
            est[a] = credit if counts[a] == 1 else est[a] + (credit - est[a]) / counts[a]
        curve.append(r)
    est = np.where(np.isfinite(est), est, -np.inf)
    policy = [int(a) for a in np.argsort(-est, kind="stable")[:length]]
    return policy, est, curve


def greedy(value: SetValue, k: int, length: int) -> list[int]:
    taken: list[int] = []
    for _ in range(length):
        free = [a for a in range(k) if a not in taken]
        taken.append(max(free, key=lambda a: value(taken + [a]) - value(taken)))
    return taken


def select_topics(phi: np.ndarray, trends: list[dict], aspect_weights: np.ndarray | None, cfg: SelectConfig,
                  seed: int) -> dict:
    """Run the agent and the baselines; returns the ranking (with trend labels), learning curve and comparison."""
    if cfg.agent not in AGENTS:
        raise UserInputError(f"agent must be one of {', '.join(AGENTS)}, got {cfg.agent!r}")
    if cfg.episodes < 1 or cfg.select < 1:
        raise UserInputError("select.episodes and select.select must be at least 1")
    k = phi.shape[0]
    length = min(cfg.select, k)
    value = SetValue(phi, trend_scores(trends), aspect_weights, cfg)
    rng = numpy_generator(seed, 31)
    policy, first_values, curve = (_qlearn if cfg.agent == "qlearn" else _bandit)(value, k, length, cfg, rng)
    rest = [int(a) for a in np.argsort(-first_values, kind="stable") if a not in policy]
    ranking = policy + rest
    random_values = [value(list(rng.choice(k, size=length, replace=False))) for _ in range(cfg.episodes)]
    greedy_set = greedy(value, k, length)
    return {
        "agent": cfg.agent,
        "ranking": ranking,
        "selected": policy,
        "labels": [trends[t]["label"] for t in ranking],
        "first_pick_values": first_values.tolist(),
        "learning_curve": curve,
        "comparison": {"agent": value.parts(policy), "greedy": value.parts(greedy_set),
                       "random_mean": float(np.mean(random_values)), "random_best": float(np.max(random_values))},
        "greedy_selected": greedy_set,
        "trend_score": value.trend.tolist(),
        "aspect_similarity": value.sim.tolist(),
    }
