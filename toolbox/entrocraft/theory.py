"""Theorem 1 check: predicted vs actual one-step entropy change of a softmax policy under a policy-gradient step.

A single-sample update of logits z by dz = eta*A*(e_k - p) (the gradient of eta*A*log p_k). Compared:
  actual       H(z + dz) - H(z)                         (float64)
  covariance   -Cov_{i~p}(log p_i, dz_i)                (Cui et al. 2505.22617, first order)
  paper        -sum_i dp_i log p_i with the actual dp   (Theorem 1 / Eq. 4 form)
and the condition of Theorem 1: A*dH <= 0 iff p_k > prod_{i!=k} p_i^{w_i}, w_i = -dp_i/dp_k (the OSB), with the
exact softmax dp (weights may be negative) and with dp along e_k - p (w_i = p_i / (1 - p_k)).
"""
from __future__ import annotations

import numpy as np

from toolbox.core.errors import UserInputError


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def entropy_of_logits(z) -> float:
    p = _softmax(np.asarray(z, dtype=np.float64))
    return float(-(p * np.log(p)).sum())


def one_step_entropy_change(logits, k: int, eta_advantage: float) -> dict:
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 1 or z.size < 2 or not np.isfinite(z).all():
        raise UserInputError("logits must be a finite 1-D vector with at least two entries")
    if not 0 <= k < z.size:
        raise UserInputError(f"token k={k} is outside [0, {z.size})")
    p = _softmax(z)
    log_p = np.log(p)
    h0 = float(-(p * log_p).sum())
    dz = eta_advantage * (np.eye(z.size)[k] - p)
    p1 = _softmax(z + dz)
    actual = float(-(p1 * np.log(p1)).sum()) - h0
    dp = p1 - p
    covariance = -float((p * (log_p + h0) * dz).sum())          # -Cov_p(log p, dz)
    paper = -float((dp * log_p).sum())                         # -sum dp log p (Theorem 1)
    others = np.arange(z.size) != k
    w = -dp[others] / dp[k]                                    # weights of the weighted geometric mean, sum to 1
    baseline = float(np.exp((w * log_p[others]).sum()))        # prod_{i!=k} p_i^{w_i}
    # With dp taken along (e_k - p) in probability space, w_i = p_i / (1 - p_k): the notes' reading of the OSB.
    prob_space = float(np.exp((p[others] * log_p[others]).sum() / (1.0 - p[k])))
    predicted_sign = -int(np.sign(eta_advantage)) if p[k] > baseline else int(np.sign(eta_advantage))
    return {"k": k, "eta_advantage": eta_advantage, "p": p.tolist(), "entropy": h0, "actual": actual,
            "covariance_prediction": covariance, "paper_prediction": paper, "p_k": float(p[k]),
            "geometric_mean_baseline": baseline, "probability_space_baseline": prob_space, "condition_p_k_above_baseline": bool(p[k] > baseline),
            "predicted_sign": predicted_sign, "actual_sign": int(np.sign(actual)),
            "sign_correct": predicted_sign == int(np.sign(actual))}


def theory_table(logits=(2.0, 1.0, 0.0, -1.0), eta_advantages=(0.01, -0.01), tokens=None) -> list[dict]:
    """The check over every token and step sign (the reference case: logits [2, 1, 0, -1], eta*A = +-0.01)."""
    tokens = range(len(logits)) if tokens is None else tokens
    return [one_step_entropy_change(logits, k, ea) for k in tokens for ea in eta_advantages]
