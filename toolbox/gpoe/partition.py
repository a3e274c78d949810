"""Assigning training points to experts: random equal shares, k-means clusters, kd-tree cells, or user labels."""
from __future__ import annotations

import numpy as np

from toolbox.core.errors import UserInputError

PARTITIONS = ("random", "kmeans", "kdtree")


def partition(x: np.ndarray, n_experts: int, method: str, seed: int) -> np.ndarray:
    """Labels [N] in 0..M-1. random: a permutation cut into M near-equal parts (disjoint, as in the paper's
    random experts); kmeans: Lloyd clusters (unequal sizes, handled by padding); kdtree: median-style cuts of the
    widest coordinate, so the M cells have near-equal counts (a local, balanced partition)."""
    n = len(x)
    if not 1 <= n_experts <= n:
        raise UserInputError(f"the number of experts must be in 1..{n} (the training size), got {n_experts}")
    rng = np.random.default_rng(seed)
    labels = np.empty(n, dtype=np.int64)
    if method == "random":
        for i, part in enumerate(np.array_split(rng.permutation(n), n_experts)):
            labels[part] = i
    elif method == "kmeans":
        from sklearn.cluster import KMeans
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):  # OpenMP threads waiting on busy cores cost more than they give here
            labels[:] = KMeans(n_clusters=n_experts, n_init=3, random_state=seed).fit_predict(x)
    elif method == "kdtree":
        _kd_split(x, np.arange(n), n_experts, 0, labels)
    else:
        raise UserInputError(f"partition must be one of {', '.join(PARTITIONS)}, got {method!r}")
    return labels


def _kd_split(x, idx, leaves, first_label, labels):
    if leaves == 1:
        labels[idx] = first_label
        return
    dim = int(np.argmax(np.ptp(x[idx], axis=0)))
    left_leaves = leaves // 2
    cut = len(idx) * left_leaves // leaves
    order = idx[np.argsort(x[idx, dim], kind="stable")]
    _kd_split(x, order[:cut], left_leaves, first_label, labels)
    _kd_split(x, order[cut:], leaves - left_leaves, first_label + left_leaves, labels)


def check_labels(labels, n_points: int) -> tuple[np.ndarray, int]:
    """User-given expert labels: integers, one per training point; relabelled to 0..M-1."""
    labels = np.asarray(labels)
    if labels.shape != (n_points,):
        raise UserInputError(f"expert labels must have one entry per training point ({n_points}), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise UserInputError("expert labels must be integers")
    _, relabelled = np.unique(labels.astype(np.int64), return_inverse=True)
    return relabelled, int(relabelled.max()) + 1
