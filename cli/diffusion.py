"""`toolbox sample-diffusion`: thermodynamics of diffusion sampling (Yu & Huang; Biroli et al.)."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from toolbox.cli.common import (ConfigOpt, DebugOpt, DeviceOpt, ForceOpt, JsonOpt, OutOpt, ReportOpt, SeedOpt,
                                Session, SetOpt, TrackOpt, guarded, run_dir, write_config)
from toolbox.core.tracking import StepTable

# The learned score's training loss per step (section learned), logged to TensorBoard / MLflow at the end.
TABLES = (StepTable("learned/score_training.csv", "step"),)

PANEL = "Diffusion physics"
SECTIONS_HELP = "simulate, entropy, rates, speciation, phase-diagram, collapse, fp-potential, learned, or all"


def sample_diffusion(
    sections: Annotated[Optional[list[str]], typer.Argument(help=f"Sections to run: {SECTIONS_HELP}.")] = None,
    data: Annotated[Optional[str], typer.Option(help="gauss | paper | gmm | empirical | digits.")] = None,
    direction: Annotated[Optional[str], typer.Option(help="simulate: forward | reverse | flow.")] = None,
    scheme: Annotated[Optional[str], typer.Option(help="euler | exact (forward OU) | heun.")] = None,
    particles: Annotated[Optional[int], typer.Option(help="Trajectories per run.")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Time steps between t_lo and t_hi.")] = None,
    json_out: JsonOpt = False, seed: SeedOpt = 0, device: DeviceOpt = "auto", out: OutOpt = None,
    force: ForceOpt = False, config: ConfigOpt = None, sets: SetOpt = None, track: TrackOpt = "tensorboard",
    report: ReportOpt = False, debug: DebugOpt = False,
) -> None:
    """Forward / reverse Langevin sampling with entropy production, the fluctuation theorem, ensemble rates,
    speciation, collapse and the Franz-Parisi potential; a report folder with CSV, JSON and the paper's figures."""
    session = Session(json_out, debug)
    with guarded(session):
        from toolbox.core.config import resolve
        from toolbox.core.device import resolve_device
        from toolbox.diffusion.pipeline import SECTIONS, DiffusionConfig, check, run

        names = list(sections or ["all"])
        if names == ["all"]:
            names = list(SECTIONS)
        cfg = resolve(DiffusionConfig(), config, sets, {"data": data, "direction": direction, "scheme": scheme,
                                                         "particles": particles, "steps": steps})
        dev = resolve_device(device)
        check(cfg, names)
        folder = run_dir(out, "sample-diffusion", force)
        write_config(folder, cfg, seed, dev, track=track, report=report, tables=TABLES)
        session.info(f"run folder: {folder}  (device {dev})")
        result = run(cfg, folder, names, seed=seed, device=dev, log=session.info)
        rows = []
        for name in names:
            rows.append([name, f"{result[name]['seconds']:.1f}", _headline(name, result[name])])
        session.table("sample-diffusion", ["section", "seconds", "result"], rows)
        session.emit({"out": str(folder), **result})


def _headline(name: str, r: dict) -> str:
    if name == "entropy":
        return "; ".join(f"{row['process']}: <e^-S> = {row['mean_exp']:.4f} +- {row['se_exp']:.4f}, "
                         f"<S> = {row['mean_dS_tot']:.4f}" for row in r["ift"]) + f"; int pi = {r['integral_pi']:.5f}"
    if name == "rates":
        t_star = f"{r['t_star']:.3f}" if r["t_star"] is not None else f"at the {r['t_star_at_edge']} edge"
        return f"pi(0) = {r['pi_0']:.5f}, dS(0) = {r['dS_0']:.5f}, int pi = {r['integral_pi']:.5f}, t* = {t_star}"
    if name == "speciation":
        return ", ".join(f"t_S({row['mu']:g},{row['sigma2']:g}) = {row['t_S_curvature_formula']:.6f}"
                         for row in r["table"][:3]) + f"; phi(1/2 ln d) = {r['clone_phi_at_half_ln_d']['phi']:.3f}"
    if name == "collapse":
        t_mc = r["t_C_monte_carlo_self_weight_half"]
        mc = (f"{t_mc:.3f} +- {r['t_C_monte_carlo_se']:.3f}" if t_mc is not None
              else f"beyond the {r['t_C_monte_carlo_at_edge']} edge of the grid")
        return (f"t_C formula {r['t_C_formula']:.4f}, Monte Carlo {mc}; "
                f"digits: memorised-half {r['digits_t_C_memorised_half']:.3f}, "
                f"Gaussian-cluster {r['digits_t_C_gaussian_formula']:.3f}")
    if name == "simulate":
        return f"{r['direction']} {r['scheme']}: {r['particle_steps_per_s']:.3g} particle-steps/s ({r['backend']})"
    if name == "phase-diagram":
        return "; ".join(f"sigma2={t['sigma2']:g} ({t['phase']}): KS {t['ks_statistic']:.4f}" for t in r["unstable_test"])
    if name == "learned":
        ex, nn = r["table"][:2]
        return (f"log p0 of samples: exact {ex['mean_log_p0_of_samples']:.3f}, learned "
                f"{nn['mean_log_p0_of_samples']:.3f}; <dS_tot> {ex['mean_dS_tot']:.3f} vs {nn['mean_dS_tot']:.3f}")
    if name == "fp-potential":
        flags = ", ".join(f"{k}: {'reliable' if v['reliable'] else 'NOT reliable'}" for k, v in r["reliability"].items())
        return f"inflection points: {r['inflection_points']}; d > 1 V'': {flags}"
    return ""


def register(app: typer.Typer) -> None:
    app.command("sample-diffusion", rich_help_panel=PANEL)(sample_diffusion)
