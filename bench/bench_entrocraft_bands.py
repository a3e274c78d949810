"""How well `train-rl`'s Entrocraft controller holds bands of every schedule kind, absolute and relative (issue #14).

For each seed the policy is warm-started once and every (band, filter mode) run starts from that warm-started policy
(the same weights a run with `sft_steps` would build itself: the warm start is a function of the seed), then trains
`--steps` RL steps serially, one at a time. Reports, over the steps after the transient, the share strictly inside
the band and the share within +-tolerance of it (`summary.json`'s tracking figures).

    nice -n 5 .venv/bin/python bench/bench_entrocraft_bands.py --out runs/bands --seeds 0,1,2 --steps 60 \
        --modes graded,release [--bands constant-abs,step-rel] [--set prompts_per_step=32 ...]

Writes bands.csv (one row per run), bands_table.csv (mean and sd over seeds) into --out and prints a markdown table.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from toolbox.core.config import merge, parse_set
from toolbox.core.io import write_csv
from toolbox.entrocraft.trainer import TrainConfig, Trainer


def bands(steps: int) -> dict[str, dict]:
    """The measured bands: each schedule kind once absolute (nats; the warm-started H0 is 0.63-0.70) and once
    relative (multiples of H0). 'step' jumps at mid-run; 'knots' goes down, up and down again."""
    mid, third = steps // 2, steps // 3

    def knots(*rows):
        return {"schedule": "piecewise", "band_knots": ",".join(f"{s}:{lo}:{hi}" for s, lo, hi in rows)}

    return {
        "constant-abs": {"schedule": "constant", "band_start": [0.45, 0.55]},
        "linear-abs": {"schedule": "linear", "band_start": [0.6, 0.7], "band_end": [0.4, 0.5]},
        "cosine-abs": {"schedule": "cosine", "band_start": [0.65, 0.75], "band_end": [0.35, 0.45]},
        "step-abs": knots((0, 0.55, 0.65), (mid - 1, 0.55, 0.65), (mid, 0.4, 0.5)),
        "knots-abs": knots((0, 0.6, 0.7), (third, 0.45, 0.55), (2 * third, 0.55, 0.65), (steps, 0.45, 0.55)),
        "constant-rel": {"schedule": "constant", "band_start": [0.75, 0.9], "band_relative": True},
        "linear-rel": {"schedule": "linear", "band_start": [0.95, 1.1], "band_end": [0.6, 0.75], "band_relative": True},
        "cosine-rel": {"schedule": "cosine", "band_start": [0.9, 1.05], "band_end": [0.55, 0.7], "band_relative": True},
        "step-rel": {**knots((0, 0.8, 0.95), (mid - 1, 0.8, 0.95), (mid, 0.95, 1.1)), "band_relative": True},
        "knots-rel": {**knots((0, 0.9, 1.05), (third, 0.65, 0.8), (2 * third, 0.9, 1.05), (steps, 0.7, 0.85)),
                      "band_relative": True},
    }


def run_one(cfg: TrainConfig, warm_state: dict, folder: Path, seed: int) -> dict:
    """One run from the shared warm-started weights (sft_steps = 0 so the trainer does not warm-start again)."""
    tr = Trainer(dataclasses.replace(cfg, sft_steps=0), folder, lambda _: None, seed)
    tr.policy.load_state_dict(warm_state)
    summary = tr.run()
    return {**summary["tracking"], "transient_steps": summary["transient_steps"], "h0": summary["h0"],
            "warnings": " | ".join(summary["warnings"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--modes", default="graded", help="comma-separated filter modes (graded, paper, release)")
    ap.add_argument("--bands", default="", help="comma-separated subset of the band names (default: all)")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="TrainConfig key=value")
    args = ap.parse_args()
    base = merge(TrainConfig(steps=args.steps, prompts_per_step=32, eval_every=10 ** 6, eval_prompts=8, eval_n=2,
                             eval_temperatures=[1.0], ckpt_every=10 ** 6), parse_set(args.sets))
    table = bands(base.steps)
    names = [b for b in args.bands.split(",") if b] or list(table)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        warm = Trainer(base, args.out / "warm", lambda _: None, seed)
        warm.warm_start()
        state = {k: v.clone() for k, v in warm.policy.state_dict().items()}
        for name in names:
            for mode in args.modes.split(","):
                cfg = merge(base, {**table[name], "filter_mode": mode})
                start = time.perf_counter()
                res = run_one(cfg, state, args.out / f"{name}_{mode}_seed{seed}", seed)
                rows.append({"band": name, "filter_mode": mode, "seed": seed, **res,
                             "seconds": round(time.perf_counter() - start, 1)})
                print(f"{name:13s} {mode:9s} seed {seed}: in band {res['in_band']:.0%}, within "
                      f"{cfg.tracking_tolerance:g} {res['near_band']:.0%}, rmse {res['rmse_to_band']:.3f} "
                      f"({rows[-1]['seconds']} s)", flush=True)
                write_csv(args.out / "bands.csv", rows)
    summary = []
    for name in names:
        for mode in args.modes.split(","):
            rs = [r for r in rows if r["band"] == name and r["filter_mode"] == mode]
            near, inside = np.array([r["near_band"] for r in rs]), np.array([r["in_band"] for r in rs])
            summary.append({"band": name, "filter_mode": mode, "seeds": len(rs),
                            "in_band_mean": inside.mean(), "in_band_sd": inside.std(),
                            "near_band_mean": near.mean(), "near_band_sd": near.std(), "near_band_min": near.min(),
                            "rmse_mean": float(np.mean([r["rmse_to_band"] for r in rs]))})
    write_csv(args.out / "bands_table.csv", summary)
    print(f"\n| band | rule | in band | within ±{base.tracking_tolerance:g} (mean ± sd, min) | RMSE to band |")
    print("|---|---|---|---|---|")
    for s in summary:
        print(f"| {s['band']} | {s['filter_mode']} | {s['in_band_mean']:.0%} ± {s['in_band_sd']:.0%} | "
              f"{s['near_band_mean']:.0%} ± {s['near_band_sd']:.0%} ({s['near_band_min']:.0%}) | "
              f"{s['rmse_mean']:.3f} |")


if __name__ == "__main__":
    main()
