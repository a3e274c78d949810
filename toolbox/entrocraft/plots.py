"""PNG plots for train-rl runs: entropy vs band, reward and accepted fraction, pass@k curves; run comparisons."""
from __future__ import annotations

import csv
from pathlib import Path

from toolbox.core.errors import UserInputError
from toolbox.core.io import read_json, save_figure, write_csv


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _passk(row: dict) -> list[float]:
    ks = sorted(int(k.split("@")[1]) for k in row if k.startswith("pass@") and row[k] not in ("", None))
    return [float(row[f"pass@{k}"]) for k in ks]


def plot_run(out: Path, metrics: list[dict], evals: list[dict], title: str = "") -> None:
    plt = _plt()
    if metrics:
        steps = [r["step"] for r in metrics]
        fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
        ax = axes[0]
        ax.fill_between(steps, [r["h_low"] for r in metrics], [r["h_high"] for r in metrics], color="tab:green",
                        alpha=0.25, label="target band")
        ax.plot(steps, [r["entropy"] for r in metrics], color="tab:blue", label="batch entropy (token mean)")
        ax.set(xlabel="step", ylabel="nats", title=f"entropy vs band {title}")
        ax.legend(fontsize=8)
        axes[1].plot(steps, [r["reward"] for r in metrics], label="mean reward")
        axes[1].set(xlabel="step", ylabel="reward (+1/-1)", title="reward")
        axes[2].plot(steps, [r["accepted_fraction"] for r in metrics], color="tab:orange", label="accepted")
        axes[2].plot(steps, [r["mode"] for r in metrics], color="tab:gray", lw=0.7, label="mode m")
        axes[2].set(xlabel="step", title="controller: accepted fraction and mode")
        axes[2].legend(fontsize=8)
        save_figure(fig, out / "training.png")
    if evals:
        fig, ax = plt.subplots(figsize=(6, 4))
        last = max(r["updates"] for r in evals)
        for r in evals:
            if r["updates"] in (0, last):
                curve = _passk(r)
                ax.plot(range(1, len(curve) + 1), curve, marker=".",
                        ls="-" if r["updates"] == last else "--", label=f"T={r['temperature']} after {r['updates']}")
        ax.set(xscale="log", xlabel="k", ylabel="pass@k (held-out)", title=f"pass@k {title}")
        ax.legend(fontsize=8)
        save_figure(fig, out / "passk.png")


def plot_schedule(rows: list[dict], path: Path, title: str = "") -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps = [r["step"] for r in rows]
    ax.fill_between(steps, [r["h_low"] for r in rows], [r["h_high"] for r in rows], alpha=0.35, color="tab:green")
    ax.plot(steps, [r["h_low"] for r in rows], color="tab:green")
    ax.plot(steps, [r["h_high"] for r in rows], color="tab:green")
    ax.set(xlabel="step", ylabel="entropy target (nats)", title=title or "target band")
    save_figure(fig, path)


def _read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [{k: _num(v) for k, v in r.items()} for r in csv.DictReader(fh)]


def _num(v: str):
    try:
        return float(v)
    except ValueError:
        return v


def compare_runs(run_dirs: list[Path], out: Path) -> list[dict]:
    """One table (CSV) and one figure for several run folders: entropy curves and final pass@k at each temperature."""
    plt = _plt()
    runs = []
    for d in run_dirs:
        d = Path(d)
        if not (d / "metrics.csv").is_file() or not (d / "summary.json").is_file():
            raise UserInputError(f"{d}: not a finished train-rl run folder (metrics.csv, summary.json)")
        runs.append((d, read_json(d / "summary.json"), _read_csv(d / "metrics.csv"), _read_csv(d / "eval.csv")))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    table = []
    for d, summary, metrics, evals in runs:
        label = f"{d.name} ({summary['control']})"
        line, = axes[0].plot([r["step"] for r in metrics], [r["entropy"] for r in metrics], label=label)
        if summary["control"] == "entrocraft":
            axes[0].fill_between([r["step"] for r in metrics], [r["h_low"] for r in metrics],
                                 [r["h_high"] for r in metrics], color=line.get_color(), alpha=0.12)
        last = max(r["updates"] for r in evals)
        for r in evals:
            if r["updates"] == last:
                curve = _passk(r)
                axes[1].plot(range(1, len(curve) + 1), curve, color=line.get_color(),
                             ls="-" if r["temperature"] == max(e["temperature"] for e in evals) else ":",
                             label=f"{label} T={r['temperature']}")
                table.append({"run": d.name, "control": summary["control"], "seed": summary["seed"],
                              "temperature": r["temperature"], "entropy_final": summary["entropy_final"],
                              "in_band": summary["tracking"]["in_band"], "mean_at_n": r["mean_at_n"],
                              "pass@1": curve[0], f"pass@{len(curve)}": curve[-1],
                              "distinct_correct": r["distinct_correct"]})
    axes[0].set(xlabel="step", ylabel="batch entropy (nats)", title="entropy")
    axes[1].set(xscale="log", xlabel="k", ylabel="pass@k", title="final pass@k (held-out)")
    for ax in axes:
        ax.legend(fontsize=7)
    out.mkdir(parents=True, exist_ok=True)
    save_figure(fig, out / "compare.png")
    write_csv(out / "compare.csv", table)
    return table
