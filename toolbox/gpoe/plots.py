"""fuse-gp figures: predictive bands per rule on a 1-D slice, entropy-weight maps, calibration curves."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.stats import norm


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bands(path: Path, partition: str, curves: dict, reference, slice_t, d) -> Path:
    """Mean +- 2 sd of every rule along the slice (first input, others at the training median)."""
    from toolbox.core.io import save_figure

    plt = _plt()
    rules = list(curves)
    cols = min(4, len(rules))
    rows = (len(rules) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False, sharey=True)
    if d.x_train.shape[1] == 1:
        points = (d.x_train[:, 0], d.y_train)
    else:  # training points close to the slice in the other inputs
        others = d.x_train[:, 1:] - np.median(d.x_train[:, 1:], 0)
        near = np.linalg.norm(others / (d.x_train[:, 1:].std(0) + 1e-12), axis=1) < 0.5
        points = (d.x_train[near, 0], d.y_train[near])
    for ax, rule in zip(axes.flat, rules):
        mean, var = curves[rule]
        sd = np.sqrt(var)
        ax.scatter(*points, s=4, c="0.6", label="training (near slice)")
        if reference is not None:
            ax.plot(slice_t, reference["mean"][-len(slice_t):], "k--", lw=1, label="full GP")
        ax.plot(slice_t, mean, "C0", lw=1.5, label=rule)
        ax.fill_between(slice_t, mean - 2 * sd, mean + 2 * sd, color="C0", alpha=0.25)
        ax.set_title(rule)
    for ax in list(axes.flat)[len(rules):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"{d.name}: predictive mean +- 2 sd along input 1, {partition} experts")
    return save_figure(fig, path)


def weight_map(path: Path, maps: dict, d, slice_t) -> Path:
    """Per partition: the sum of entropy weights over the test inputs (first two inputs), the dominant expert, and
    each expert's weight b_i(x) along the slice."""
    from toolbox.core.io import save_figure

    plt = _plt()
    parts = list(maps)
    fig, axes = plt.subplots(len(parts), 3, figsize=(13, 3.4 * len(parts)), squeeze=False, layout="constrained")
    x0 = d.x_test[:, 0]
    x1 = d.x_test[:, 1] if d.x_test.shape[1] > 1 else d.y_test
    for row, part in zip(axes, parts):
        m = maps[part]
        sc = row[0].scatter(x0, x1, c=m["sum_beta"], s=6, cmap="viridis")
        fig.colorbar(sc, ax=row[0], label="sum of entropy weights (nats)")
        row[0].set_title(f"{part}: total entropy change")
        row[1].scatter(x0, x1, c=m["dominant"], s=6, cmap="tab20")
        row[1].set_title(f"{part}: dominant expert")
        row[2].plot(slice_t, m["slice_beta"].T, lw=0.8)
        row[2].set_title(f"{part}: b_i(x) along the slice")
        row[2].set_xlabel("input 1")
        for ax in row[:2]:
            ax.set_xlabel("input 1")
            ax.set_ylabel("input 2" if d.x_test.shape[1] > 1 else "target")
    return save_figure(fig, path)


def calibration(path: Path, coverage_by: dict) -> Path:
    """Observed coverage of central intervals against the nominal level, per rule and partition."""
    from toolbox.core.io import save_figure

    plt = _plt()
    parts = list(coverage_by)
    fig, axes = plt.subplots(1, len(parts), figsize=(4.2 * len(parts), 4), squeeze=False)
    for ax, part in zip(axes[0], parts):
        for rule, (levels, observed) in coverage_by[part].items():
            ax.plot(levels, observed, marker=".", lw=1, label=rule)
        ax.plot([0, 1], [0, 1], "k:", lw=1)
        ax.set_title(f"{part}: calibration")
        ax.set_xlabel("nominal coverage")
        ax.set_ylabel("observed coverage")
    axes[0, 0].legend(fontsize=7)
    return save_figure(fig, path)


def coverage_curve(y, mean, var, levels=np.linspace(0.05, 0.95, 10)):
    z = np.abs(y - mean) / np.sqrt(var)
    return levels, np.array([np.mean(z <= norm.ppf(0.5 + lv / 2)) for lv in levels])


def write_all(out: Path, d, curves, tests, maps, reference, slice_t) -> list[str]:
    """bands_<partition>.png, weight_maps.png and calibration.png; returns their paths."""
    written = [bands(out / f"bands_{part}.png", part, part_curves, reference, slice_t, d)
               for part, part_curves in curves.items()]
    if maps:
        written.append(weight_map(out / "weight_maps.png", maps, d, slice_t))
    if tests:
        cov = {part: {rule: coverage_curve(d.y_test, *mv) for rule, mv in per_rule.items()}
               for part, per_rule in tests.items()}
        written.append(calibration(out / "calibration.png", cov))
    return [str(p) for p in written]
