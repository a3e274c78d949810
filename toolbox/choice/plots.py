"""PNG plots for `toolbox infer-choice` (matplotlib Agg, written atomically)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from toolbox.core.io import save_figure


def _figure(*args, **kwargs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def theta_labels(thetas: np.ndarray) -> list[str]:
    if thetas.shape[1] == 2 and np.allclose(np.linalg.norm(thetas, axis=1), 1):
        return [f"{np.degrees(np.arctan2(t[1], t[0])):.0f}°" for t in thetas]
    return ["(" + ",".join(f"{v:.2g}" for v in t) + ")" for t in thetas]


def plot_posteriors(thetas: np.ndarray, beliefs: dict[str, np.ndarray], true_theta: int | None, path: Path,
                    title: str) -> Path:
    """Grouped bars: one group per reward hypothesis, one bar per belief (prior, assumed set, true set...)."""
    fig, ax = _figure(figsize=(min(12.0, max(5.0, 0.3 * len(thetas) * len(beliefs))), 3.6))
    width = 0.8 / len(beliefs)
    x = np.arange(len(thetas))
    for i, (label, b) in enumerate(beliefs.items()):
        ax.bar(x + (i - (len(beliefs) - 1) / 2) * width, b, width, label=label)
    if true_theta is not None:
        ax.axvline(true_theta, color="k", ls=":", lw=1, label="true reward")
    ax.set_xticks(x, theta_labels(thetas), rotation=60 if len(thetas) > 6 else 0, fontsize=8)
    ax.set_ylabel("posterior probability")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_sampler_check(exact: np.ndarray, sampled: np.ndarray, tv: float, path: Path) -> Path:
    fig, ax = _figure(figsize=(6, 3.2))
    centres = np.degrees(np.linspace(-np.pi, np.pi, len(exact) + 1)[:-1] + np.pi / len(exact))
    ax.bar(centres, sampled, width=300 / len(exact), alpha=0.6, label="MCMC histogram")
    ax.step(centres, exact, where="mid", color="k", label="exact (quadrature)")
    ax.set_xlabel("reward direction angle (degrees)")
    ax.set_ylabel("posterior mass per bin")
    ax.set_title(f"sampler vs exact posterior: total variation {tv:.4f}", fontsize=10)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_class_effects(rows: list[dict], path: Path, title: str) -> Path:
    """Per class (and beta): mean change in P(theta*), entropy and regret with +-1 standard error bars."""
    metrics = (("d_p_true", "Δ P(θ*)"), ("d_entropy", "Δ entropy (nats)"), ("d_regret", "Δ regret"))
    betas = list(dict.fromkeys(r["beta"] for r in rows))
    classes = list(dict.fromkeys(r["class"] for r in rows))
    fig, axes = _figure(1, 3, figsize=(13, 3.6))
    width = 0.8 / len(betas)
    x = np.arange(len(classes))
    for ax, (key, label) in zip(axes, metrics):
        for i, beta in enumerate(betas):
            cell = {r["class"]: r for r in rows if r["beta"] == beta}
            ax.bar(x + (i - (len(betas) - 1) / 2) * width, [cell[c][key] for c in classes], width,
                   yerr=[cell[c].get(key + "_se", 0.0) for c in classes], capsize=2, label=f"β={beta:g}")
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(x, classes)
        ax.set_title(label, fontsize=10)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)
