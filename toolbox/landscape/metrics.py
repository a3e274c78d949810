"""Landscape metrics (topics.md §1.2 step 3): magnitude and trend, similarity, entropies, entropy shift, model change.

All entropies and divergences are in nats. Distributions are rows of non-negative arrays; rows are renormalised.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats
from scipy.optimize import linear_sum_assignment

LN2 = math.log(2.0)


def normalise(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    s = p.sum(axis=-1, keepdims=True)
    return np.divide(p, s, out=np.zeros_like(p), where=s > 0)


def entropy(p: np.ndarray) -> np.ndarray:
    """H(p) = -sum_v p_v ln p_v along the last axis (0 ln 0 = 0): topic word entropy H(phi_k), topic-mix H(M)."""
    p = normalise(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=-1)


def kl(p: np.ndarray, q: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """KL(p || q) along the last axis; q is floored at eps so a topic absent from q gives a large finite value."""
    p, q = normalise(p), normalise(q)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(np.maximum(q, eps))), 0.0)
    return terms.sum(axis=-1)


def _same_support(P: np.ndarray, Q: np.ndarray) -> None:
    if P.ndim != 2 or Q.ndim != 2 or P.shape[1] != Q.shape[1]:
        raise ValueError(f"distributions must be rows over one support, got shapes {P.shape} and {Q.shape}")


def jsd_matrix(P: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """[A, B] Jensen-Shannon divergences JSD(P_a || Q_b) = H(m) - (H(P_a) + H(Q_b)) / 2, m = (P_a + Q_b) / 2.

    In [0, ln 2]; 0 iff equal, ln 2 for disjoint supports.
    """
    P, Q = normalise(np.atleast_2d(P)), normalise(np.atleast_2d(Q))
    _same_support(P, Q)
    hp, hq = entropy(P), entropy(Q)
    out = np.empty((P.shape[0], Q.shape[0]))
    for a in range(P.shape[0]):
        out[a] = entropy(0.5 * (P[a][None, :] + Q)) - 0.5 * (hp[a] + hq)
    return np.clip(out, 0.0, LN2)


def jsd(p: np.ndarray, q: np.ndarray) -> float:
    return float(jsd_matrix(p, q)[0, 0])


def cosine_matrix(P: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """[A, B] cosine similarities between the rows of P and Q (0 for a zero row)."""
    P, Q = np.atleast_2d(np.asarray(P, float)), np.atleast_2d(np.asarray(Q, float))
    _same_support(P, Q)
    pn = np.linalg.norm(P, axis=1, keepdims=True)
    qn = np.linalg.norm(Q, axis=1, keepdims=True)
    return (P / np.where(pn > 0, pn, 1)) @ (Q / np.where(qn > 0, qn, 1)).T


def similarity_matrix(P: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """Topic similarity 1 - JSD / ln 2, in [0, 1]."""
    return 1.0 - jsd_matrix(P, Q) / LN2


def hungarian_match(P: np.ndarray, Q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pi, jsd): topic k of P is matched to pi[k] of Q minimising the total JSD; jsd[k] = JSD(P_k || Q_pi[k]).

    With fewer rows in Q than in P, unmatched rows of P get pi = -1 and jsd = ln 2.
    """
    D = jsd_matrix(P, Q)
    rows, cols = linear_sum_assignment(D)
    pi = np.full(P.shape[0], -1)
    d = np.full(P.shape[0], LN2)
    pi[rows], d[rows] = cols, D[rows, cols]
    return pi, d


def model_change(phi_new: np.ndarray, phi_old: np.ndarray, mix_new: np.ndarray | None = None,
                 mix_old: np.ndarray | None = None) -> dict:
    """Delta_model = (1/K) sum_k JSD(phi_k^(i) || phi_pi(k)^(i-1)) with pi Hungarian; plus KL(M^(i) || M^(i-1)).

    The topic mix of the old model is permuted by pi before the KL, so relabelling topics changes nothing.
    """
    pi, d = hungarian_match(phi_new, phi_old)
    out = {"model_change_jsd": float(d.mean()), "matched_similarity": float((1.0 - d / LN2).mean()),
           "matching": pi.tolist(), "matched_jsd": d.tolist()}
    if mix_new is not None and mix_old is not None:
        old = np.where(pi >= 0, np.asarray(mix_old)[np.maximum(pi, 0)], 0.0)
        out["mix_shift_kl"] = float(kl(mix_new, old))
    return out


def magnitude(theta: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Topic magnitude M_k = sum_d N_d theta_dk / sum_d N_d: the topic's share of tokens."""
    lengths = np.asarray(lengths, dtype=np.float64)
    total = lengths.sum()
    return (lengths @ theta) / total if total > 0 else np.zeros(theta.shape[1])


def magnitude_by_slice(theta: np.ndarray, lengths: np.ndarray, slices: np.ndarray, n_slices: int) -> np.ndarray:
    """[S, K] magnitude per time slice (NaN rows for empty slices)."""
    out = np.full((n_slices, theta.shape[1]), np.nan)
    for s in range(n_slices):
        mask = slices == s
        if mask.any():
            out[s] = magnitude(theta[mask], lengths[mask])
    return out


def min_slice_docs(counts) -> int:
    """The derived support threshold: max(5, ceil(0.1 x mean documents per non-empty slice)) [R]. A slice with
    fewer documents has a magnitude too noisy to decide a peak or pull a trend (2 documents give shares in steps
    of 1/2)."""
    filled = [c for c in counts if c > 0]
    return max(5, math.ceil(0.1 * sum(filled) / len(filled))) if filled else 5


def trend(series: np.ndarray, weights: np.ndarray | None = None, confidence: float = 0.95) -> dict:
    """Weighted least-squares slope of a series over slice index with its two-sided t confidence interval.

    weights w_s are the documents per slice (a slice's magnitude is a mean over its documents, so its variance
    falls as 1 / D_s); slices with weight 0 (too few documents) or NaN are left out; equal weights give OLS:
    b = sum w (x - xbar)(y - ybar) / sum w (x - xbar)^2, se^2 = sum w r^2 / ((n - 2) sum w (x - xbar)^2), with
    weighted means xbar, ybar. label: emerging if the interval lies above 0, fading if below, else stable.
    """
    y = np.asarray(series, dtype=np.float64)
    x = np.arange(len(y), dtype=np.float64)
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=np.float64)
    ok = np.isfinite(y) & (w > 0)
    x, y, w = x[ok], y[ok], w[ok]
    if len(y) < 3:
        slope = float(y[-1] - y[0]) if len(y) == 2 else 0.0
        return {"slope": slope, "ci_low": float("nan"), "ci_high": float("nan"), "p_value": 1.0,
                "label": "stable", "relative_change": 0.0}
    xbar, ybar = (w @ x) / w.sum(), (w @ y) / w.sum()
    sxx = w @ (x - xbar) ** 2
    slope = (w @ ((x - xbar) * (y - ybar))) / sxx
    resid = y - ybar - slope * (x - xbar)
    dof = len(y) - 2
    se = math.sqrt(max(w @ resid ** 2, 0.0) / dof / sxx)
    half = stats.t.ppf(0.5 + confidence / 2, dof) * se
    low, high = slope - half, slope + half
    label = "emerging" if low > 0 else "fading" if high < 0 else "stable"
    p = float(2 * stats.t.sf(abs(slope) / se, dof)) if se > 0 else (0.0 if slope != 0 else 1.0)
    rel = slope * (x[-1] - x[0]) / ybar if ybar > 0 else 0.0  # fitted change over the span / mean level
    return {"slope": float(slope), "ci_low": float(low), "ci_high": float(high), "p_value": p,
            "label": label, "relative_change": float(rel)}


def peak(series: np.ndarray, supported: np.ndarray) -> int | None:
    """The slice where a series is highest among the supported slices (None when no supported slice has a value)."""
    y = np.where(np.asarray(supported, bool) & np.isfinite(series), series, -np.inf)
    return int(np.argmax(y)) if np.isfinite(y).any() else None


def entropy_shift_ci(theta: np.ndarray, lengths: np.ndarray, slices: np.ndarray, n_slices: int, rng,
                     draws: int = 200, confidence: float = 0.95) -> list[dict]:
    """Delta H(s) = H(M(s)) - H(M(s-1)) with a bootstrap interval (documents resampled within each slice).

    A shift is significant when its interval excludes 0 (change-point flag, topics.md §6 "beyond the anchors" 1).
    """
    members = [np.flatnonzero(slices == s) for s in range(n_slices)]
    boot = np.full((draws, n_slices), np.nan)
    for s, idx in enumerate(members):
        if len(idx):
            picks = rng.integers(0, len(idx), size=(draws, len(idx)))
            for b in range(draws):
                chosen = idx[picks[b]]
                boot[b, s] = entropy(magnitude(theta[chosen], lengths[chosen]))
    point = [entropy(magnitude(theta[idx], lengths[idx])) if len(idx) else np.nan for idx in members]
    out = []
    lo_q, hi_q = 100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2
    for s in range(1, n_slices):
        diff = boot[:, s] - boot[:, s - 1]
        if np.isnan(diff).all():
            out.append({"slice": s, "shift": np.nan, "ci_low": np.nan, "ci_high": np.nan, "significant": False})
            continue
        low, high = np.percentile(diff, [lo_q, hi_q])
        out.append({"slice": s, "shift": float(point[s] - point[s - 1]), "ci_low": float(low),
                    "ci_high": float(high), "significant": bool(low > 0 or high < 0)})
    return out


def split_merge(jsd_new_old: np.ndarray, threshold: float) -> dict:
    """Topic lineage across two models: a new topic close (JSD / ln 2 < threshold) to two or more old topics is a
    merge of them; an old topic close to two or more new ones split (topics.md §6 "beyond the anchors" 2)."""
    close = jsd_new_old / LN2 < threshold
    return {"merges": {int(k): np.flatnonzero(close[k]).tolist() for k in range(close.shape[0])
                       if close[k].sum() >= 2},
            "splits": {int(j): np.flatnonzero(close[:, j]).tolist() for j in range(close.shape[1])
                       if close[:, j].sum() >= 2}}


def slice_phi(counts: np.ndarray, prior: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Topic-word distributions of one slice: its expected topic-word counts [K, V] plus `strength` pseudo-tokens
    of the global topic [K, V], so a topic with (almost) no tokens in the slice keeps its global distribution
    instead of becoming uniform [R]."""
    return normalise(np.asarray(counts, dtype=np.float64) + strength * normalise(prior))
