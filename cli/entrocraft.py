"""`toolbox train-rl`: RL with Entrocraft's entropy-band control (Li et al., arXiv 2604.26326), baselines, pass@k."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from toolbox.cli.common import (ConfigOpt, DebugOpt, DeviceOpt, ForceOpt, JsonOpt, OutOpt, ReportOpt, SeedOpt,
                                Session, SetOpt, TrackOpt, guarded, run_dir, tracker, write_config)

PANEL = "Entrocraft"
# Step tables logged to TensorBoard / MLflow when a run closes (metrics.csv is logged live, step by step).
EVAL_TABLES = (("eval.csv", "updates", ("temperature",)),)
SEED_TABLES = (("seed_*/metrics.csv", "step", ()), ("seed_*/eval.csv", "updates", ("temperature",)))


def register(app: typer.Typer) -> None:
    app.command("train-rl", rich_help_panel=PANEL)(train_rl)


def train_rl(
    task: Annotated[Optional[str], typer.Option(
        help="countdown | modarith | subsetsum | letterset (the testbed) | jsonl (--set prompts=F).")] = None,
    control: Annotated[Optional[str], typer.Option(
        help="entrocraft | none | entropy-loss | clip-higher | clip-cov | kl-cov | w-reinforce | entropic.")] = None,
    estimator: Annotated[Optional[str], typer.Option(help="grpo | rloo | reinforce++ | gspo.")] = None,
    filter_mode: Annotated[Optional[str], typer.Option(
        help="graded (default, beyond the paper) | paper (Alg. 1) | release (authors' code).")] = None,
    schedule: Annotated[Optional[str], typer.Option(help="constant | linear | cosine | piecewise | csv.")] = None,
    steps: Annotated[Optional[int], typer.Option(help="RL steps.")] = None,
    model: Annotated[Optional[str], typer.Option(help="Local Hugging Face causal-LM folder (default: built-in GPT).")] = None,
    seeds: Annotated[Optional[str], typer.Option(help="Several seeds, e.g. 0,1,2: one sub-run each, then a comparison.")] = None,
    backend: Annotated[str, typer.Option(help="For --seeds: serial | process | ray.")] = "serial",
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")] = False,
    show_schedule: Annotated[bool, typer.Option("--show-schedule", help="Preview the band schedule and exit.")] = False,
    theory_check: Annotated[bool, typer.Option("--theory-check", help="Theorem 1: predicted vs actual one-step dH, exit.")] = False,
    compare: Annotated[Optional[list[Path]], typer.Option("--compare", help="Compare finished run folders, exit.")] = None,
    json_out: JsonOpt = False, seed: SeedOpt = 0, device: DeviceOpt = "auto", out: OutOpt = None,
    force: ForceOpt = False, config: ConfigOpt = None, set_: SetOpt = None, track: TrackOpt = "tensorboard",
    report: ReportOpt = False, debug: DebugOpt = False,
) -> None:
    """RL fine-tuning with precise entropy-curve control (Entrocraft), baselines, pass@k, checkpoints."""
    session = Session(json_out, debug)
    with guarded(session):
        from toolbox.core.config import resolve
        from toolbox.core.device import resolve_device
        from toolbox.core.errors import UserInputError
        from toolbox.core.io import read_json, write_csv, write_json
        from toolbox.entrocraft import plots, theory
        from toolbox.entrocraft.trainer import TrainConfig, make_schedule, run_seeds, train, validate

        if compare:
            folder = run_dir(out, "train-rl-compare", force)
            table = plots.compare_runs(compare, folder)
            session.table("train-rl comparison", list(table[0]) if table else [], [list(r.values()) for r in table])
            session.emit({"out": str(folder), "runs": table})
            return
        if theory_check:
            rows = theory.theory_table()
            session.table("Theorem 1: one-step entropy change, logits [2, 1, 0, -1]",
                          ["k", "p_k", "eta*A", "actual dH", "cov. pred.", "paper pred.", "baseline", "sign ok"],
                          [[r["k"], r["p_k"], r["eta_advantage"], f"{r['actual']:+.3e}",
                            f"{r['covariance_prediction']:+.3e}", f"{r['paper_prediction']:+.3e}",
                            r["geometric_mean_baseline"], r["sign_correct"]] for r in rows])
            if out is not None:
                write_csv(run_dir(out, "train-rl-theory", force) / "theory.csv", rows)
            session.emit({"theory": rows})
            return
        explicit = {"task": task, "control": control, "estimator": estimator, "filter_mode": filter_mode,
                    "schedule": schedule, "steps": steps, "model": model}
        if resume:
            if out is None or not (out / "config.toml").is_file():
                raise UserInputError("--resume needs --out pointing at an earlier train-rl run folder")
            if any(v is not None for v in explicit.values()) or config or set_:
                raise UserInputError("--resume continues with the run's saved settings; pass only --out and --seed")
            cfg = resolve(TrainConfig(), out / "config.toml")
        else:
            cfg = resolve(TrainConfig(), config, set_, explicit)
        validate(cfg)
        sched = make_schedule(cfg)
        dev = resolve_device(device)
        if show_schedule:
            rows = sched.table()
            folder = run_dir(out, "train-rl-schedule", force)
            write_csv(folder / "schedule.csv", rows)
            plots.plot_schedule(rows, folder / "schedule.png", f"{cfg.schedule} band")
            stride = max(1, (len(rows) - 1) // 10)
            shown = rows[::stride] + ([rows[-1]] if (len(rows) - 1) % stride else [])
            session.table(f"{cfg.schedule} band" + (" (x H0)" if cfg.band_relative else " (nats)"),
                          ["step", "h_low", "h_high"], [[r["step"], r["h_low"], r["h_high"]] for r in shown])
            session.emit({"out": str(folder), "schedule": rows})
            return
        from toolbox.core.tracking import StepTable

        folder = run_dir(out, "train-rl", force, resume=resume)
        write_config(folder, cfg, seed, dev, track=track, report=report,
                     tables=[StepTable(*t) for t in (SEED_TABLES if seeds else EVAL_TABLES)])
        if seeds:
            try:
                seed_list = [int(s) for s in seeds.split(",") if s.strip()]
            except ValueError:
                raise UserInputError(f"--seeds expects integers like 0,1,2, got {seeds!r}") from None
            summaries = run_seeds(cfg, folder, seed_list, backend, dev)
            table = plots.compare_runs([folder / f"seed_{s}" for s in seed_list], folder)
            session.table("train-rl seeds", list(table[0]), [list(r.values()) for r in table])
            document = {"out": str(folder), "runs": summaries}
            write_json(folder / "summary.json", document)
            session.emit(document)
            return
        session.info(f"train-rl run folder: {folder}  ({cfg.control} / {cfg.estimator} on {cfg.task}, {dev})")
        with session.progress("train-rl", total=cfg.steps) as update:
            live = tracker()

            def on_step(t, row):
                update(t + 1)
                if live is not None:
                    live.scalars({k: v for k, v in row.items() if k != "step"}, row["step"], "metrics")
                if not session.json_mode and ((t + 1) % max(1, cfg.steps // 20) == 0):
                    session.info(f"step {t + 1:4d}  H {row['entropy']:.3f}  band [{row['h_low']:.3f}, "
                                 f"{row['h_high']:.3f}]  m {row['mode']:+d}  kept {row['accepted_fraction']:.2f}  "
                                 f"reward {row['reward']:+.3f}  kl {row['kl']:.4f}")

            summary = train(cfg, folder, seed=seed, log=session.info, resume=resume, on_step=on_step, device=dev)
        rows = [[f"{t:g}", r["mean_at_n"], r["pass@1"], r[f"pass@{cfg.eval_n}"], r["distinct_correct"]]
                for t, r in summary["eval_final"].items()]
        session.table(f"held-out evaluation after {summary['steps']} steps",
                      ["T", f"mean@{cfg.eval_n}", "pass@1", f"pass@{cfg.eval_n}", "distinct-correct"], rows)
        tr = summary["tracking"]
        session.info(f"entropy {summary['entropy_first']:.3f} -> {summary['entropy_final']:.3f}; in band "
                     f"{tr['in_band']:.0%} of steps after {summary['transient_steps']}, RMSE to band "
                     f"{tr['rmse_to_band']:.4f}; outputs in {folder}")
        session.emit({"out": str(folder), **read_json(folder / "summary.json")})
