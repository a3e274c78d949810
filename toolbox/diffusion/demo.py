"""`toolbox demo` entry: a short, real run of the diffusion-thermodynamics pipeline (well under a minute)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from toolbox.demo import check
from toolbox.diffusion.pipeline import DiffusionConfig, run


def run_demo(out: Path, seed: int = 0, device: str = "cpu", log=print) -> dict:
    cfg = dataclasses.replace(DiffusionConfig(), particles=4000, steps=400, t_hi=4.0, rates_points=301,
                              clone_dim=64, clone_pairs=300, clone_times=[1.5, 2.0794, 3.0], fp_samples=4000,
                              fp_points=120, collapse_dim=64, collapse_n=2000, collapse_samples=128,
                              collapse_times=[0.8, 1.2, 1.6, 2.0, 2.4], memo_n=100, memo_samples=100)
    res = run(cfg, out, ["entropy", "rates", "speciation", "collapse"], seed=seed, device=device, log=log)
    fwd, rev = res["entropy"]["ift"]
    return {
        "headline": (f"IFT fwd {fwd['mean_exp']:.3f}+-{fwd['se_exp']:.3f}, rev {rev['mean_exp']:.3f}+-"
                     f"{rev['se_exp']:.3f}; t_S(1,0.4) = {res['rates']['t_S_curvature']:.6f}; "
                     f"t_C {res['collapse']['t_C_monte_carlo_self_weight_half'] or float('nan'):.2f} "
                     f"(formula {res['collapse']['t_C_formula']:.2f})"),
        "ift_forward": fwd["mean_exp"], "ift_reverse": rev["mean_exp"], "pi_0": res["rates"]["pi_0"],
        "t_star": res["rates"]["t_star"], "t_C_formula": res["collapse"]["t_C_formula"],
        # the integral fluctuation theorem <exp(-dS_tot)> = 1 within 4 of its standard errors, and the note's
        # acceptance numbers (diffusion.md §5.1, 5.4): t_S(1, 0.4) and pi(0) by quadrature
        "checks": [check("IFT forward <exp(-dS)>", fwd["mean_exp"], 1.0, 4 * fwd["se_exp"]),
                   check("IFT reverse <exp(-dS)>", rev["mean_exp"], 1.0, 4 * rev["se_exp"]),
                   check("t_S(mu=1, sigma2=0.4)", res["rates"]["t_S_curvature"], 0.386485, 1e-6),
                   check("pi(0), mu=1, sigma2=0.4", res["rates"]["pi_0"], 0.84504, 1e-4)],
    }
