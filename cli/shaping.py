"""`toolbox shape-reward`: thermodynamic exploration (Kumar 2023, reconstructed) against PSRL / UCBVI / UCRL2 /
epsilon-greedy / soft Q-learning, with exact regret, the entropy-production ledger and the DeepSea score (`run`,
also reached as plain `toolbox shape-reward [OPTIONS]`); `solve`: the exact hard and soft values of a known MDP."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from toolbox.cli.common import (ConfigOpt, DebugOpt, DefaultCommandGroup, DeviceOpt, ForceOpt, JsonOpt, OutOpt,
                                ReportOpt, SeedOpt, Session, SetOpt, TrackOpt, guarded, run_dir, write_config)
from toolbox.core.tracking import StepTable

# Per-episode tables logged to TensorBoard / MLflow when a run closes: mean cumulative regret and the ledger.
TABLES = (StepTable("regret_curves.csv", "episode", ("env", "agent")),
          StepTable("ledger_curves.csv", "episode", ("env", "agent")))

PANEL = "Reward shaping"


class ShapeRewardGroup(DefaultCommandGroup):
    """`shape-reward` runs its first command, `run`, when the first word is not a command (`toolbox shape-reward
    --env riverswim` is `toolbox shape-reward run --env riverswim`); its --help adds that command's options."""

    def format_help(self, ctx, formatter):
        super().format_help(ctx, formatter)
        default = next(iter(self.commands.values()))
        default.format_help(typer.Context(default, info_name=ctx.info_name, parent=ctx.parent), formatter)


shaping = typer.Typer(cls=ShapeRewardGroup, no_args_is_help=False, rich_markup_mode="rich",
                      help="Thermodynamic exploration (Kumar 2023, reconstructed): [bold]run[/bold], the agents "
                           "benchmark (the default: its options below), and [bold]solve[/bold], the exact hard and "
                           "soft solutions of a known MDP.")


def register(app: typer.Typer) -> None:
    app.add_typer(shaping, name="shape-reward", rich_help_panel=PANEL)


@shaping.command("run", short_help="The agents benchmark (the default): exact regret, entropy ledger, second-law "
                                     "gap, DeepSea score.")
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
    """Agents x environments x seeds: cumulative regret vs the exact optimum (95% CI), the entropy ledger, the
    second-law gap W - F*, the bsuite DeepSea score and the paper's analytic identities."""
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


@shaping.command("solve", short_help="A known MDP exactly: V*, Q*, optimal policy; soft values, Boltzmann "
                                         "policy and free-energy ledger per temperature.")
def solve(
    env: Annotated[Optional[str], typer.Option(
        "--env", help="Built-in MDP: riverswim, sixarms, chain-L, deepsea-N, deepsea-stochastic-N, random-SxA "
                      "(default riverswim; --seed draws deepsea's action mapping and random MDPs).")] = None,
    mdp: Annotated[Optional[Path], typer.Option(
        "--mdp", help="MDP file (.json, .toml or .npz): P [S,A,S], R [S,A] or [S,A,S], optional horizon, gamma, "
                      "start, pi0 (docs/shape-reward.md).")] = None,
    horizon: Annotated[Optional[int], typer.Option(
        "--horizon", help="Horizon H (default: the model's; 0: infinite, discounted).")] = None,
    gamma: Annotated[Optional[float], typer.Option(
        "--gamma", help="Discount in [0, 1] (default: the file's, else 1). On a built-in, gamma < 1 without "
                        "--horizon solves the infinite-horizon discounted MDP.")] = None,
    temperature: Annotated[Optional[list[float]], typer.Option(
        "--temperature", help="Temperature T > 0 of the soft solution (repeatable; default 0.1 and 1).")] = None,
    reference: Annotated[Optional[str], typer.Option(
        "--reference", help="Reference policy pi0: auto (the file's pi0, else uniform) | uniform | counting "
                            "(pi0 = 1) | file | p_1,...,p_A (every state).")] = None,
    json_out: JsonOpt = False, seed: SeedOpt = 0, device: DeviceOpt = "auto", out: OutOpt = None,
    force: ForceOpt = False, config: ConfigOpt = None, set_: SetOpt = None, track: TrackOpt = "tensorboard",
    report: ReportOpt = False, debug: DebugOpt = False,
) -> None:
    """Exact solution of a known finite-horizon or discounted MDP: V*, Q*, the optimal policy; per temperature
    the soft values, Boltzmann policy and free-energy ledger.

    Soft values V_T = T log sum_a pi0 exp(Q_T/T); ledger F = -V_T(s0) <= W(pi) = E(sum c) + T sum KL(pi || pi0)
    for the Boltzmann policy (equality), the hard optimum and the reference policy. Writes values.csv,
    policy.csv, ledger.csv, values.png and summary.json."""
    session = Session(json_out, debug)
    with guarded(session):
        from toolbox.core.config import resolve
        from toolbox.core.device import resolve_device
        from toolbox.core.errors import UserInputError
        from toolbox.shaping.solve import SolveConfig, build, run

        if env is not None and mdp is not None:
            raise UserInputError("give --env or --mdp, not both")
        cfg = resolve(SolveConfig(), config, set_, {
            "env": env, "mdp": str(mdp) if mdp else None, "horizon": horizon, "gamma": gamma,
            "temperatures": temperature or None, "reference": reference})
        problem = build(cfg, seed)
        dev = resolve_device(device)  # tabular solves run on the CPU kernels
        folder = run_dir(out, "shape-reward-solve", force)
        write_config(folder, cfg, seed, dev, track=track, report=report)
        doc = run(cfg, problem, folder, log=session.info)
        model, ref = doc["model"], doc["model"]["reference_policy"]
        session.table(f"{model['name']}: solutions at the start (V*(s0) = {doc['v_star']:.6g}, reference policy "
                      f"{doc['reference_value']:.6g})",
                      ["T", "V_T(s0)", "F", "cost of pi_T", "T KL of pi_T", "W(pi*) - F",
                       "W(uniform) - F" if ref == "uniform" else "W(pi0) - F"],
                      [[r["temperature"], r["v0"], r["free_energy"], r["ledger"]["boltzmann"]["expected_cost"],
                        r["ledger"]["boltzmann"]["kl_cost"], r["ledger"]["optimal"]["gap"],
                        r["ledger"][ref]["gap"]] for r in doc["soft"]])
        shown = min(model["states"], 12)
        step = "" if model["discounted"] else " at step 0"
        session.table(f"values per state{step}" + (f" (first {shown}; all in values.csv)"
                                                    if shown < model["states"] else ""),
                      ["state", "V*", "optimal actions", *(f"V_T, T={r['temperature']:g}" for r in doc["soft"])],
                      [[s, doc["hard"]["V"][s], ",".join(map(str, doc["hard"]["optimal_actions"][s])),
                        *(r["V"][s] for r in doc["soft"])] for s in range(shown)])
        session.info(f"run folder: {folder}")
        session.emit({"out": str(folder), "device": dev, **{k: v for k, v in doc.items() if k != "config"}})

