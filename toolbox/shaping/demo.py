"""`toolbox demo` entry for shape-reward: the analytic checks, a short RiverSwim regret bench and DeepSea 5-8."""
from __future__ import annotations

from pathlib import Path

from toolbox.core.config import dumps_toml
from toolbox.core.io import atomic_write_text
from toolbox.demo import check
from toolbox.shaping.pipeline import ShapeRewardConfig, run


def run_demo(out: Path, seed: int = 0, device: str = "cpu", log=print) -> dict:
    cfg = ShapeRewardConfig(envs=["riverswim"], agents=["thermo", "psrl", "ucbvi:simplified=1", "eps-greedy"],
                            seeds=4, episodes=300, deepsea_sizes=[5, 6, 7, 8], seed=seed, backend="serial")
    atomic_write_text(out / "config.toml", dumps_toml(cfg))
    doc = run(cfg, out, log=log)
    regret = {r["agent"]: round(r["cumulative_regret"], 1) for r in doc["regret"]}
    scores = doc["deepsea_scores"]
    headline = (f"{sum(r['ok'] for r in doc['checks'])} identities ok; RiverSwim regret (300 ep) "
                + ", ".join(f"{a} {v}" for a, v in regret.items())
                + "; DeepSea 5-8 score " + ", ".join(f"{a} {s:.2f}" for a, s in scores.items()))
    # the paper's analytic identities (checks.csv), each against its closed form (the two inequalities, tol 0, as
    # holds = 1)
    checks = [check(r["check"], r["value"], r["reference"], r["tol"]) if r["tol"] > 0
              else check(f"{r['check']} holds", float(r["ok"]), 1.0, 0.0) for r in doc["checks"]]
    return {"headline": headline, "riverswim_regret": regret, "deepsea_scores": scores,
            "checks": checks}
