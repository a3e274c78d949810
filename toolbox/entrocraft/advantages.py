"""Outcome-reward advantage estimators over groups of G rollouts per prompt (one scalar per rollout).

grpo         (r - mean_group) / (std_group + eps)                       (Shao et al. 2024; verl `grpo`)
rloo         G/(G-1) (r - mean_group), the leave-one-out baseline        (Ahmadian et al. 2024; verl `rloo`)
reinforce++  r - mean_group, then whitened over all response tokens     (Hu 2025; verl `reinforce_plus_plus_baseline`)
gspo         GRPO's advantages; the sequence-level ratio lives in the loss (Zheng et al. 2025)
w-reinforce  the raw reward, positives scaled by 0.1 [R core_algos]
entropic     the raw reward weighted (1 + alpha) on positives, (1 - alpha) on negatives [R core_algos]
"""
from __future__ import annotations

import numpy as np

from toolbox.core.errors import UserInputError

ESTIMATORS = ("grpo", "rloo", "reinforce++", "gspo")


def _groups(rewards, group_size: int) -> np.ndarray:
    r = np.asarray(rewards, dtype=np.float64)
    if group_size < 2 or r.size % group_size:
        raise UserInputError(f"need groups of at least 2 rollouts; {r.size} rewards do not split into groups of {group_size}")
    return r.reshape(-1, group_size)


def grpo(rewards, group_size: int, eps: float = 1e-6) -> np.ndarray:
    g = _groups(rewards, group_size)
    return ((g - g.mean(1, keepdims=True)) / (g.std(1, ddof=1, keepdims=True) + eps)).reshape(-1)


def rloo(rewards, group_size: int) -> np.ndarray:
    g = _groups(rewards, group_size)
    return (group_size / (group_size - 1) * (g - g.mean(1, keepdims=True))).reshape(-1)


def reinforce_pp(rewards, group_size: int, lengths, eps: float = 1e-8) -> np.ndarray:
    g = _groups(rewards, group_size)
    a = (g - g.mean(1, keepdims=True)).reshape(-1)
    w = np.asarray(lengths, dtype=np.float64)   # masked_whiten over tokens: each rollout weighs by its length
    mean = (a * w).sum() / w.sum()
    var = (w * (a - mean) ** 2).sum() / max(w.sum() - 1.0, 1.0)   # torch's unbiased variance, as verl
    return (a - mean) / np.sqrt(var + eps)


def compute(estimator: str, rewards, group_size: int, lengths) -> np.ndarray:
    if estimator in ("grpo", "gspo"):
        return grpo(rewards, group_size)
    if estimator == "rloo":
        return rloo(rewards, group_size)
    if estimator == "reinforce++":
        return reinforce_pp(rewards, group_size, lengths)
    raise UserInputError(f"estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")


def w_reinforce(rewards, positive_weight: float = 0.1) -> np.ndarray:
    r = np.asarray(rewards, dtype=np.float64)
    return r * np.where(r > 0, positive_weight, 1.0)


def entropic(rewards, alpha: float) -> np.ndarray:
    r = np.asarray(rewards, dtype=np.float64)
    return r * np.where(r > 0, 1.0 + alpha, np.where(r < 0, 1.0 - alpha, 1.0))


def entropic_update(alpha_state: float, entropy: float, target: float, kp: float = 1.0, ki: float = 0.01):
    """EntroPIC's PI controller as released: alpha_t = state + kp*e, next state = alpha_t - (kp - ki)*e = state + ki*e,
    with e = H - target. Returns (alpha_t, next_state)."""
    e = entropy - target
    alpha = alpha_state + kp * e
    return alpha, alpha - (kp - ki) * e
