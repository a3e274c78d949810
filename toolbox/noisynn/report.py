"""Plots and the markdown report of a `train-noisy` study."""
from __future__ import annotations

import math
from pathlib import Path


def write_plots(out: Path, summary: dict, cfg) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    from toolbox.core.io import save_figure

    rows = summary["conditions"][1:]
    written = []
    if rows:
        save_figure(_forest(rows, summary), out / "paired_differences.png")
        written.append("paired_differences.png")
    leak = [r for r in rows if r["stage"] == "eval" and r["kind"] in ("linear", "optimal")]
    if leak:
        save_figure(_leak_bars(leak, summary), out / "leak.png")
        written.append("leak.png")
    groups = _grids(rows)
    if groups:
        save_figure(_heatmaps(groups, summary), out / "heatmap.png")
        written.append("heatmap.png")
    return written


def _forest(rows: list[dict], summary: dict):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(rows) + 1.2))
    for i, r in enumerate(rows):
        color = "tab:red" if r["diff_t_high"] < 0 else ("tab:green" if r["diff_t_low"] > 0 else "tab:gray")
        ax.errorbar(100 * r["diff_mean"], i, xerr=[[100 * (r["diff_mean"] - r["diff_t_low"])],
                                                   [100 * (r["diff_t_high"] - r["diff_mean"])]],
                    fmt="o", color=color, capsize=3)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(rows)), [r["condition"] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("accuracy - baseline (points), mean and paired 95% t CI")
    ax.set_title(f"{summary['dataset']} / {summary['model']}: {summary['seeds']} paired seeds, "
                 f"baseline {100 * summary['baseline_accuracy']:.2f}%")
    return fig


def _leak_bars(rows: list[dict], summary: dict):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    labels = ["baseline"] + [r["condition"].split(":", 1)[1] for r in rows]
    means = [summary["baseline_accuracy"]] + [r["mean_accuracy"] for r in rows]
    errs = [0.0] + [max(r["diff_t_high"] - r["diff_mean"], 0.0) for r in rows]
    colors = ["tab:blue"] + ["tab:red" if "sorted" in r["condition"] else "tab:gray" for r in rows]
    ax.bar(range(len(means)), [100 * m for m in means], yerr=[100 * e for e in errs], color=colors, capsize=3)
    ax.set_xticks(range(len(means)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(max(0.0, 100 * min(means) - 10), 100.5)
    ax.set_title("test-time batch mixing: class-sorted batches (red) vs shuffled and B = 1")
    return fig


def _grids(rows: list[dict]) -> dict:
    """Conditions sharing noise, stage and evaluation protocol, with at least two (layer, strength) cells."""
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["kind"], r["stage"], r.get("eval_order", ""), r.get("eval_batch_size")), []).append(r)
    return {k: v for k, v in groups.items() if len(v) >= 2}


def _heatmaps(groups: dict, summary: dict):
    """Accuracy minus baseline over (layer, strength), one panel per (noise, stage); red = worse, blue = better."""
    import matplotlib.pyplot as plt
    import numpy as np

    base = summary["baseline_accuracy"]
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.4), squeeze=False)
    for ax, ((kind, stage, order, batch), rows) in zip(axes[0], groups.items()):
        layers = sorted({str(r["layer"]) for r in rows})
        strengths = sorted({r["strength"] for r in rows})
        diff = np.full((len(layers), len(strengths)), np.nan)
        acc = np.full_like(diff, np.nan)
        for r in rows:
            at = layers.index(str(r["layer"])), strengths.index(r["strength"])
            acc[at], diff[at] = 100 * r["mean_accuracy"], 100 * (r["mean_accuracy"] - base)
        span = max(float(np.nanmax(np.abs(diff))), 0.5)
        im = ax.imshow(diff, cmap="RdBu", vmin=-span, vmax=span, aspect="auto")
        for (i, j), v in np.ndenumerate(acc):
            if not math.isnan(v):
                ax.text(j, i, f"{v:.1f}%\n({diff[i, j]:+.1f})", ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(strengths)), [f"{s:g}" for s in strengths])
        ax.set_yticks(range(len(layers)), layers)
        ax.set_xlabel("strength")
        ax.set_ylabel("layer")
        ax.set_title(f"{stage}-time {kind}" + (f" ({order} /{batch})" if stage == "eval" else ""), fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="accuracy - baseline (pts)")
    fig.suptitle(f"mean test accuracy over seeds (baseline {100 * base:.2f}%)", fontsize=10)
    fig.tight_layout()
    return fig


def write_report(path: Path, summary: dict) -> None:
    from toolbox.core.io import atomic_write_text

    lines = [f"# train-noisy: {summary['dataset']} / {summary['model']}, {summary['seeds']} paired seeds", "",
             f"Baseline accuracy {100 * summary['baseline_accuracy']:.2f}%. Differences are paired by seed; "
             "CIs are 95% (t and BCa bootstrap); p-values are paired t, Holm-corrected across conditions; McNemar "
             "counts the seeds with an exact per-sample test p < 0.05.", "",
             "| condition | acc % | diff (pts) | t CI | bootstrap CI | p Holm | McNemar sig. | dS analytic |"
             " dH(Y|Z) features |", "|---|---|---|---|---|---|---|---|---|"]
    for r in summary["conditions"][1:]:
        ds = r.get("delta_S_analytic")
        dh = r.get("delta_H_features")
        lines.append(f"| {r['condition']} | {100 * r['mean_accuracy']:.2f} | {100 * r['diff_mean']:+.2f} | "
                     f"[{100 * r['diff_t_low']:+.2f}, {100 * r['diff_t_high']:+.2f}] | "
                     f"[{100 * r['diff_boot_low']:+.2f}, {100 * r['diff_boot_high']:+.2f}] | {r['p_holm']:.3g} | "
                     f"{r['mcnemar_significant_seeds']}/{r['n']} | {_num(ds)} | {_num(dh)} |")
    lines += ["", "## Checks", ""] + [f"- {k}: {_num(v)}" for k, v in summary["checks"].items()]
    for w in summary.get("warnings", []):
        lines += ["", f"**Warning:** {w}"]
    atomic_write_text(path, "\n".join(lines) + "\n")


def _num(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return "inf" if math.isinf(v) else f"{v:.4g}"
    return str(v)
