"""The GP-prior benchmark of gpoe.md Sec. 4.3 (and the issue's "Must show"): d = 4, l = 1, s_f^2 = 1,
s_n^2 = 0.01, N = 4,000, T = 1,000, M = 16, true hyper-parameters, random / k-means / kd-tree experts, every rule
and the full exact GP, averaged over seeds; prints a Markdown table and the acceptance checks.

    .venv/bin/python bench/bench_gpoe_gpprior.py [--seeds 5] [--out DIR] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from toolbox.gpoe.metrics import noise_floor
from toolbox.gpoe.pipeline import FuseGpConfig, run

METRICS = ("smse", "msll", "nlpd", "coverage95", "crps")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--partitions", nargs="*", default=["random", "kmeans", "kdtree"])
    ap.add_argument("--out", default="")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="gpoe-gpprior-"))
    per_seed, seconds = [], []
    for seed in range(args.seeds):
        start = time.perf_counter()
        cfg = FuseGpConfig(partitions=args.partitions, plots=seed == 0)
        summary = run(cfg, root / f"seed{seed}", seed=seed, log=lambda _: None)
        per_seed.append({(r["partition"], r["rule"]): r for r in summary["rows"]})
        seconds.append(time.perf_counter() - start)
        print(f"seed {seed}: {seconds[-1]:.1f} s", flush=True)
    keys = list(per_seed[0])
    table = {k: {m: float(np.mean([s[k][m] for s in per_seed])) for m in METRICS} for k in keys}
    for k in keys:
        table[k]["smse_sd"] = float(np.std([s[k]["smse"] for s in per_seed]))
    print("\n| partition | rule | SMSE | MSLL | NLPD | 95% cover | CRPS |\n|---|---|---|---|---|---|---|")
    for (part, rule), r in table.items():
        print(f"| {part} | {rule} | {r['smse']:.4f} | {r['msll']:+.3f} | {r['nlpd']:+.3f} | "
              f"{r['coverage95']:.3f} | {r['crps']:.4f} |")
    full = next(k for k in keys if k[0] == "full-gp")
    g = table[("kmeans", "gpoe-normalized")]
    checks = {
        "kmeans gpoe-normalized SMSE / full GP": g["smse"] / table[full]["smse"],
        "kmeans gpoe-normalized SMSE / gpoe-uniform": g["smse"] / table[("kmeans", "gpoe-uniform")]["smse"],
        "kmeans gpoe-normalized MSLL - full GP MSLL": g["msll"] - table[full]["msll"],
        **{f"random {rule} MSLL": table[("random", rule)]["msll"] for rule in ("poe", "bcm", "rbcm",
                                                                                "gpoe-normalized", "gpoe-uniform")},
        "lowest NLPD of any rule and seed": min(r["nlpd"] for s in per_seed for r in s.values()),
        "NLPD floor": noise_floor(0.01),
    }
    print()
    for name, value in checks.items():
        print(f"{name}: {value:.4f}")
    print(f"mean seconds per seed: {np.mean(seconds):.1f}; plots of seed 0 in {root / 'seed0'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"table": {f"{p}/{r}": v for (p, r), v in table.items()},
                                               "checks": checks, "seconds": seconds}, indent=2))


if __name__ == "__main__":
    main()
