"""`toolbox demo` entry for infer-choice: the peanuts example, a gridworld with the sampler check, a small sweep."""
from __future__ import annotations

import math
from pathlib import Path

from toolbox.choice.misspec import CLASSES
from toolbox.choice.pipeline import InferConfig, SweepConfig, run_infer, run_sweep
from toolbox.demo import check


def run_demo(out: Path, seed: int = 0, device: str = "cpu", log=print) -> dict:
    peanuts = {}
    for beta in (1.0, 2.0):
        folder = out / f"peanuts_beta{beta:g}"
        folder.mkdir(parents=True, exist_ok=True)
        doc = run_infer(InferConfig(scenario="peanuts", beta=beta, sampler_check=False), folder, seed, log)
        peanuts[beta] = (doc["p_true_theta"], doc["p_true_theta_true_set"])
    grid_folder = out / "gridworld"
    grid_folder.mkdir(exist_ok=True)
    grid = run_infer(InferConfig(scenario="gridworld"), grid_folder, seed, log)
    sweep_folder = out / "sweep"
    sweep_folder.mkdir(exist_ok=True)
    table = run_sweep(SweepConfig(betas=[2.0], trials=300), sweep_folder, seed, device=device, log=log)["table"]
    harmful = [r["class"] for r in table if r["verdict"] == "harmful"]
    worst = max(table, key=lambda r: r["confidently_wrong_rate"])
    return {
        "headline": (f"peanuts P(θ*)={peanuts[1.0][0]:.6f} (β=1), {peanuts[2.0][0]:.6f} (β=2) vs correct "
                     f"{peanuts[1.0][1]:.1f}; sweep harmful: {','.join(harmful)} (max confidently wrong "
                     f"{worst['class']} {worst['confidently_wrong_rate']:.0%}); MCMC TV "
                     f"{grid['sampler_check']['total_variation']:.4f}; gridworld P(assumed set)="
                     f"{grid['robustness']['p_assumed_set']:.3f}"),
        "peanuts_p_true": {str(b): v[0] for b, v in peanuts.items()},
        "peanuts_p_true_correct_set": {str(b): v[1] for b, v in peanuts.items()},
        "gridworld_class": grid["audit"]["cls"],
        "gridworld_p_true": grid["p_true_theta"],
        "gridworld_p_true_correct_set": grid["p_true_theta_true_set"],
        "sampler_total_variation": grid["sampler_check"]["total_variation"],
        "gridworld_p_assumed_set": grid["robustness"]["p_assumed_set"],
        "sweep_verdicts": {r["class"]: r["verdict"] for r in table},
        "classes": list(CLASSES),
        # peanuts in closed form: the robot that assumes both packs gives P(theta*) = 1 / (1 + e^beta); with the
        # true choice set the choice is uninformative (1/2). The MCMC check's TV distance: within its 0.02 gate.
        "checks": [check("peanuts P(theta*), beta=1", peanuts[1.0][0], 1 / (1 + math.e), 1e-9),
                   check("peanuts P(theta*), beta=2", peanuts[2.0][0], 1 / (1 + math.e ** 2), 1e-9),
                   check("peanuts P(theta*) with the true set", peanuts[2.0][1], 0.5, 1e-9),
                   check("gridworld MCMC total variation", grid["sampler_check"]["total_variation"], 0.0, 0.02)],
    }
