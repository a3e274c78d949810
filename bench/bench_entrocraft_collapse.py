"""The Must-show experiment: plain GRPO vs GRPO + Entrocraft (linear band) on countdown with the small GPT, 3 seeds.

Run everything (one process per run through toolbox.core.executor.map_tasks):
    .venv/bin/python bench/bench_entrocraft_collapse.py --out runs/collapse [--steps 150] [--set lr=3e-4 ...]
Or aggregate finished run folders (e.g. from `toolbox train-rl --seed S --out DIR`):
    .venv/bin/python bench/bench_entrocraft_collapse.py --out runs/collapse --runs none=DIR1,DIR2 entrocraft=DIR3,...
Writes collapse.csv (mean and sd over seeds), collapse.json and collapse.png (entropy vs band; pass@k at both
temperatures) into --out and prints the table.
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from toolbox.core.config import merge, parse_set
from toolbox.core.executor import map_tasks
from toolbox.core.io import save_figure, write_csv, write_json
from toolbox.entrocraft.trainer import TrainConfig, train

CONDITIONS = ("none", "entrocraft")


def _run(task):
    cfg, folder, seed = task
    train(cfg, Path(folder), seed=seed, log=lambda _: None)
    return folder


def _rows(path: Path) -> list[dict]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def aggregate(groups: dict[str, list[Path]], out: Path) -> list[dict]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4))
    colors = {"none": "tab:red", "entrocraft": "tab:blue", "entrocraft-release": "tab:purple"}
    table = []
    band_drawn = False
    for name, dirs in groups.items():
        summaries = [json.loads((d / "summary.json").read_text()) for d in dirs]
        metrics = [_rows(d / "metrics.csv") for d in dirs]
        evals = [_rows(d / "eval.csv") for d in dirs]
        for i, m in enumerate(metrics):
            steps = [int(r["step"]) for r in m]
            axes[0].plot(steps, [float(r["entropy"]) for r in m], color=colors.get(name), alpha=0.8,
                         label=name if i == 0 else None)
            if i == 0 and not band_drawn:
                band_drawn = True
                axes[0].fill_between(steps, [float(r["h_low"]) for r in m], [float(r["h_high"]) for r in m],
                                     color="tab:green", alpha=0.2,
                                     label="Entrocraft band")
        for ax, temp in zip(axes[1:], ("1.0", "0.6")):
            finals = []
            for e in evals:
                last = max(int(r["updates"]) for r in e)
                row = next(r for r in e if int(r["updates"]) == last and float(r["temperature"]) == float(temp))
                finals.append([float(row[k]) for k in row if k.startswith("pass@")])
            curve = np.mean(finals, 0)
            ax.plot(range(1, len(curve) + 1), curve, color=colors.get(name), marker=".", label=f"{name} (final)")
            if name == "none":
                init = np.mean([[float(r[k]) for k in r if k.startswith("pass@")] for e in evals for r in e
                                if int(r["updates"]) == 0 and float(r["temperature"]) == float(temp)], 0)
                ax.plot(range(1, len(init) + 1), init, color="gray", ls="--", label="warm start")
            ax.set(xscale="log", xlabel="k", ylabel="pass@k (held-out)", title=f"T = {temp}")
        for temp in ("1.0", "0.6"):
            vals = {k: [] for k in ("mean_at_n", "pass@1", "pass@4", "pass@16", "distinct_correct", "token_entropy")}
            for e in evals:
                last = max(int(r["updates"]) for r in e)
                row = next(r for r in e if int(r["updates"]) == last and float(r["temperature"]) == float(temp))
                for k in vals:
                    vals[k].append(float(row[k]))
            table.append({"condition": name, "seeds": len(dirs), "temperature": float(temp),
                          "entropy_final": _ms([s["entropy_final"] for s in summaries]),
                          "in_band_after_transient": _ms([s["tracking"]["in_band"] for s in summaries]),
                          "rmse_to_band": _ms([s["tracking"]["rmse_to_band"] for s in summaries]),
                          "accepted_fraction": _ms([s["accepted_fraction_mean"] for s in summaries]),
                          **{k: _ms(v) for k, v in vals.items()}})
    axes[0].set(xlabel="step", ylabel="batch entropy (nats, token mean)", title="entropy: GRPO vs Entrocraft")
    for ax in axes:
        ax.legend(fontsize=8)
    out.mkdir(parents=True, exist_ok=True)
    save_figure(fig, out / "collapse.png")
    flat = [{k: (f"{v[0]:.4f} ± {v[1]:.4f}" if isinstance(v, tuple) else v) for k, v in r.items()} for r in table]
    write_csv(out / "collapse.csv", flat)
    write_json(out / "collapse.json", {"groups": {k: [str(d) for d in v] for k, v in groups.items()}, "rows": table})
    return flat


def _ms(values) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--backend", default="process")
    ap.add_argument("--set", action="append", default=[], dest="sets")
    ap.add_argument("--runs", nargs="*", default=None, help="name=DIR1,DIR2 ... (aggregate only)")
    args = ap.parse_args()
    if args.runs:
        groups = {item.split("=", 1)[0]: [Path(p) for p in item.split("=", 1)[1].split(",")] for item in args.runs}
    else:
        seeds = [int(s) for s in args.seeds.split(",")]
        base = merge(TrainConfig(steps=args.steps, prompts_per_step=32, eval_every=50, eval_prompts=128),
                     parse_set(args.sets))
        tasks = [(merge(base, {"control": c}), str(args.out / f"{c}_seed{s}"), s) for c in CONDITIONS for s in seeds]
        map_tasks(_run, tasks, backend=args.backend)
        groups = {c: [args.out / f"{c}_seed{s}" for s in seeds] for c in CONDITIONS}
    table = aggregate(groups, args.out)
    cols = list(table[0])
    print(" | ".join(cols))
    for r in table:
        print(" | ".join(str(r[c]) for c in cols))


if __name__ == "__main__":
    main()
