"""`toolbox shape-reward`: thermodynamic exploration (Kumar 2023, reconstructed) against PSRL / UCBVI / UCRL2 /
epsilon-greedy / soft Q-learning, with exact regret, the entropy-production ledger and the DeepSea score."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from toolbox.cli.common import (ConfigOpt, DebugOpt, DeviceOpt, ForceOpt, JsonOpt, OutOpt, ReportOpt, SeedOpt,
                                Session, SetOpt, TrackOpt, guarded, run_dir, write_config)
from toolbox.core.tracking import StepTable

# Per-episode tables logged to TensorBoard / MLflow when a run closes: mean cumulative regret and the ledger.
TABLES = (StepTable("regret_curves.csv", "episode", ("env", "agent")),
          StepTable("ledger_curves.csv", "episode", ("env", "agent")))

PANEL = "Reward shaping"


def register(app: typer.Typer) -> None:
    app.command("shape-reward", rich_help_panel=PANEL)(shape_reward)


def shape_reward(
    env: Annotated[Optional[list[str]], typer.Option(
        "--env", help="Environment (repeatable): riverswim, sixarms, chain-L, deepsea-N, deepsea-stochastic-N, "
                      "random-SxA.")] = None,
    agent: Annotated[Optional[list[str]], typer.Option(
        "--agent", help="Agent (repeatable): thermo, psrl, ucbvi, ucrl2, eps-greedy, soft-q; parameters as "
                        "'thermo:temperature=0.1,eta=0.1,beta=1'.")] = None,
    seeds: Annotated[Optional[int], typer.Option("--seeds", help="Seeds per agent and environment.")] = None,
    episodes: Annotated[Optional[int], typer.Option("--episodes", help="Episodes per run.")] = None,
    deepsea_sizes: Annotated[Optional[list[int]], typer.Option(
        "--deepsea-size", help="DeepSea sizes for the bsuite score (repeatable; default 5..12).")] = None,
    no_deepsea: Annotated[bool, typer.Option("--no-deepsea", help="Skip the DeepSea score.")] = False,
    backend: Annotated[Optional[str], typer.Option("--backend", help="serial | process | ray.")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="Parallel workers (0: all cores).")] = None,
    json_out: JsonOpt = False, seed: SeedOpt = 0, device: DeviceOpt = "auto", out: OutOpt = None,
    force: ForceOpt = False, config: ConfigOpt = None, set_: SetOpt = None, track: TrackOpt = "tensorboard",
    report: ReportOpt = False, debug: DebugOpt = False,
) -> None:
    """Agents x environments x seeds: cumulative regret vs the exact optimum (95% CI), the entropy ledger,
    the second-law gap W - F*, the bsuite DeepSea score and the paper's analytic identities."""
    session = Session(json_out, debug)
    with guarded(session):
        from toolbox.core.config import resolve
        from toolbox.core.device import resolve_device
        from toolbox.shaping.pipeline import ShapeRewardConfig, run

        explicit = {"envs": env, "agents": agent, "seeds": seeds, "episodes": episodes, "seed": seed,
                    "deepsea_sizes": [] if no_deepsea else deepsea_sizes, "backend": backend, "workers": workers}
        cfg = resolve(ShapeRewardConfig(), config, set_, explicit).validate()
        dev = resolve_device(device)  # the tabular planners are small: they run on the CPU kernels
        folder = run_dir(out, "shape-reward", force)
        write_config(folder, cfg, seed, dev, track=track, report=report, tables=TABLES)
        session.info(f"shape-reward run folder: {folder}  (device {dev}; tabular kernels run on the CPU)")
        with session.progress("runs") as update:
            doc = run(cfg, folder, log=session.info, progress=lambda done, total: update(done, total))
        session.table("analytic checks (notes §7)", ["check", "value", "reference", "ok"],
                      [[r["check"], r["value"], r["reference"], r["ok"]] for r in doc["checks"]])
        session.table("cumulative regret (mean ± 95% CI)", ["env", "agent", "seeds", "regret", "± CI",
                                                             "last-10% regret/ep", "final I(theta) [nats]",
                                                             "final W - F*"],
                      [[r["env"], r["agent"], r["seeds"], r["cumulative_regret"], r["ci95"],
                        r["regret_per_episode_last10pct"], r["final_epistemic_total"], r["final_second_law_gap"]]
                       for r in doc["regret"]])
        if doc["deepsea"]:
            session.table("DeepSea score (bsuite: share of sizes solved before 2^N + 100)", ["agent", "score"],
                          [[a, s] for a, s in doc["deepsea_scores"].items()])
        session.emit({"out": str(folder), "device": dev, **{k: v for k, v in doc.items() if k != "config"}})
        if not doc["checks_passed"]:
            raise typer.Exit(1)
