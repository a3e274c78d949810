"""Evaluation metrics over n samples per prompt: mean@n, unbiased pass@k (Chen et al. 2021) and distinct-correct@n."""
from __future__ import annotations

import numpy as np

from toolbox.core.errors import UserInputError


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k = 1 - C(n-c, k) / C(n, k), as the numerically stable product 1 - prod_{i=n-c+1}^{n} (1 - k/i)."""
    if not (0 <= c <= n and 1 <= k <= n):
        raise UserInputError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k_curve(n: int, correct_counts) -> np.ndarray:
    """Mean unbiased pass@k over prompts for k = 1..n (index k-1)."""
    counts = np.asarray(correct_counts, dtype=np.int64)
    if counts.size == 0:
        raise UserInputError("pass@k needs at least one prompt")
    return np.array([np.mean([pass_at_k(n, int(c), k) for c in counts]) for k in range(1, n + 1)])


def evaluate_samples(correct, answers) -> dict:
    """Metrics from correct [P, n] (bool) and the sampled answer strings [P][n].

    mean@n: average per-sample accuracy; pass@k for k = 1..n; distinct-correct@n: mean number of different
    correct answers per prompt (diversity of what the policy gets right).
    """
    correct = np.asarray(correct, dtype=bool)
    if correct.ndim != 2 or correct.size == 0:
        raise UserInputError(f"correct must be a non-empty [prompts, n] array, got shape {correct.shape}")
    n = correct.shape[1]
    curve = pass_at_k_curve(n, correct.sum(1))
    distinct = [len({a for a, ok in zip(row_answers, row_ok) if ok}) for row_answers, row_ok in zip(answers, correct)]
    return {"n": n, "mean_at_n": float(correct.mean()), "pass_at_k": curve.tolist(),
            "distinct_correct": float(np.mean(distinct))}
