"""`toolbox infer-choice`: Bayesian reward inference from human choices and choice-set misspecification
(Freedman, Shah & Dragan 2020)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from toolbox.cli.common import (ConfigOpt, DebugOpt, DeviceOpt, ForceOpt, JsonOpt, OutOpt, ReportOpt, SeedOpt,
                                Session, SetOpt, TrackOpt, guarded, run_dir, write_config)

PANEL = "Choice sets"

ChoicesOpt = Annotated[Optional[Path], typer.Option("--choices",
                                                     help="Choices file (.json or .csv); see docs/infer-choice.md.")]
ScenarioOpt = Annotated[Optional[str], typer.Option("--scenario", help="Built-in: peanuts | gridworld | corrections.")]
BetaOpt = Annotated[Optional[float], typer.Option("--beta", help="Boltzmann rationality of the human (default 1).")]

group = typer.Typer(no_args_is_help=True, rich_markup_mode="rich",
                    help="Reward inference from human choices and what a wrong choice set does to it.")


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="infer-choice", rich_help_panel=PANEL)


def _infer_config(config, sets, choices, scenario, beta):
    from toolbox.choice.pipeline import InferConfig
    from toolbox.core.config import resolve

    return resolve(InferConfig(), config, sets,
                   {"choices": str(choices) if choices else None, "scenario": scenario, "beta": beta})


@group.command("infer", rich_help_panel=PANEL)
def infer(choices: ChoicesOpt = None, scenario: ScenarioOpt = None, beta: BetaOpt = None, json_out: JsonOpt = False,
          seed: SeedOpt = 0, device: DeviceOpt = "auto", out: OutOpt = None, config: ConfigOpt = None,
          force: ForceOpt = False, sets: SetOpt = None, track: TrackOpt = "tensorboard", report: ReportOpt = False,
          debug: DebugOpt = False) -> None:
    """Exact posterior from observed choices, posterior-predictive check, robustness over plausible true sets.

    With d = 2 features it also checks an MCMC sampler over continuous rewards against the exact posterior."""
    session = Session(json_out, debug)
    with guarded(session):
        from toolbox.choice.pipeline import load_scenario, run_infer
        from toolbox.core.device import resolve_device

        cfg = _infer_config(config, sets, choices, scenario, beta)
        dev = resolve_device(device)
        load_scenario(cfg, seed)  # a bad choices file fails before the run folder exists
        folder = run_dir(out, "infer-choice", force)
        write_config(folder, cfg, seed, dev, track=track, report=report)
        doc = run_infer(cfg, folder, seed, log=session.info)
        rows = [[k, doc[k]] for k in ("scenario", "beta", "options", "hypotheses", "map_probability",
                                      "posterior_entropy", "p_true_theta", "p_true_theta_true_set", "robot_choice",
                                      "robot_regret", "ppc_pvalue") if k in doc]
        rows += [[f"robustness.{k}", v] for k, v in doc["robustness"].items()]
        rows += [[f"audit.{k}", v] for k, v in doc.get("audit", {}).items()]
        rows += [[f"sampler.{k}", v] for k, v in doc.get("sampler_check", {}).items()]
        session.table(f"infer-choice: {doc['description']}", ["quantity", "value"], rows)
        session.info(f"run folder: {folder}")
        session.emit({"out": str(folder), "device": dev, "seed": seed, **doc})


@group.command("audit", rich_help_panel=PANEL)
def audit(choices: ChoicesOpt = None, scenario: ScenarioOpt = None, beta: BetaOpt = None, json_out: JsonOpt = False,
          seed: SeedOpt = 0, device: DeviceOpt = "auto", out: OutOpt = None, config: ConfigOpt = None,
          force: ForceOpt = False, sets: SetOpt = None, track: TrackOpt = "tensorboard", report: ReportOpt = False,
          debug: DebugOpt = False) -> None:
    """Class (A1..D3) of an assumed vs true choice set and its exact expected effects.

    Effects are changes in P(true reward), posterior entropy and regret against the correctly specified robot."""
    session = Session(json_out, debug)
    with guarded(session):
        from toolbox.choice.pipeline import load_scenario, run_audit
        from toolbox.core.device import resolve_device

        cfg = _infer_config(config, sets, choices, scenario, beta)
        dev = resolve_device(device)
        load_scenario(cfg, seed)  # a bad choices file fails before the run folder exists
        folder = run_dir(out, "infer-choice-audit", force)
        write_config(folder, cfg, seed, dev, track=track, report=report)
        doc = run_audit(cfg, folder, seed, log=session.info)
        cols = ["theta_label", "cls", "p_true_mis", "p_true_cor", "d_p_true", "d_entropy", "d_regret",
                "confidently_wrong"]
        session.table(f"audit: {doc['description']}", cols, [[r[c] for c in cols] for r in doc["rows"]])
        session.info(f"run folder: {folder}")
        session.emit({"out": str(folder), "device": dev, "seed": seed, **doc})


@group.command("sweep", rich_help_panel=PANEL)
def sweep(trials: Annotated[Optional[int], typer.Option("--trials", help="Instances per class and beta.")] = None,
          backend: Annotated[Optional[str], typer.Option("--backend", help="serial | process | ray.")] = None,
          json_out: JsonOpt = False, seed: SeedOpt = 0, device: DeviceOpt = "auto", out: OutOpt = None,
          force: ForceOpt = False, config: ConfigOpt = None, sets: SetOpt = None, track: TrackOpt = "tensorboard",
          report: ReportOpt = False, debug: DebugOpt = False) -> None:
    """Randomised per-class experiment: exact expected effects of every misspecification class, mean +- SE."""
    session = Session(json_out, debug)
    with guarded(session):
        from toolbox.choice.misspec import CLASSES, METRICS
        from toolbox.choice.pipeline import SweepConfig, check_sweep, run_sweep
        from toolbox.core.config import resolve
        from toolbox.core.device import resolve_device

        cfg = resolve(SweepConfig(), config, sets, {"trials": trials, "backend": backend})
        dev = resolve_device(device)
        check_sweep(cfg)
        folder = run_dir(out, "infer-choice-sweep", force)
        write_config(folder, cfg, seed, dev, track=track, report=report)
        with session.progress("classes x betas", total=len(cfg.betas) * len(CLASSES)) as update:
            doc = run_sweep(cfg, folder, seed, device=dev, progress=update, log=session.info)
        rows = [[r["class"], r["beta"], *(f"{r[m]:+.4f} ± {r[m + '_se']:.4f}" for m in METRICS),
                 f"{r['confidently_wrong_rate']:.0%}", r["verdict"]] for r in doc["table"]]
        session.table("choice-set misspecification by class (vs the correctly specified robot)",
                      ["class", "β", "ΔP(θ*)", "Δentropy", "Δregret", "conf. wrong", "verdict"], rows)
        session.info(f"run folder: {folder}")
        session.emit({"out": str(folder), "device": dev, "seed": seed, **doc})
