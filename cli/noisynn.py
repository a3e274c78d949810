"""NoisyNN commands: `train-noisy` (paired multi-seed noise studies, task entropy) and `audit-noisy` (leak audit)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from toolbox.cli.common import (ConfigOpt, DebugOpt, DeviceOpt, ForceOpt, JsonOpt, OutOpt, ReportOpt, SeedOpt,
                                Session, SetOpt, TrackOpt, guarded, run_dir, write_config)
from toolbox.core.tracking import StepTable

# Per-epoch training curves (loss, train accuracy) of every condition and seed, logged when a run closes.
TABLES = (StepTable("history.jsonl", "epoch", ("condition", "seed")),)

PANEL = "NoisyNN"

Dataset = Annotated[Optional[str], typer.Option("--dataset", help="digits | mnist5k | mnist1d | folder:PATH.")]
Model = Annotated[Optional[str], typer.Option("--model", help="cnn | vit.")]
Noise = Annotated[Optional[str], typer.Option("--noise", help="gaussian | impulse | linear | optimal.")]
Axis = Annotated[Optional[str], typer.Option("--axis", help="Mixing axis: batch (paper) | token | channel.")]
Epochs = Annotated[Optional[int], typer.Option("--epochs", help="Training epochs.")]


def _layer(value: str | None, name: str = "--layer") -> int | str | None:
    from toolbox.core.errors import UserInputError

    if value is None or value == "head":
        return value
    try:
        return int(value)
    except ValueError:
        raise UserInputError(f"{name} takes a block index or 'head', got {value!r}") from None


def _floats(value: str | None, name: str) -> list[float] | None:
    from toolbox.core.errors import UserInputError

    if value is None:
        return None
    try:
        return [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise UserInputError(f"{name} takes comma-separated numbers, got {value!r}") from None


def train_noisy(
    dataset: Dataset = None, model: Model = None,
    plan: Annotated[Optional[str], typer.Option("--plan", help="full (the digits study) | sweep | paper | entropy "
                                                "(closed forms only).")] = None,
    noise: Noise = None,
    strength: Annotated[Optional[str], typer.Option("--strength", help="Sweep strengths, e.g. 0.1,0.3 (gaussian "
                                                    "s x feature std, impulse p, linear alpha).")] = None,
    layer: Annotated[Optional[str], typer.Option("--layer", help="Sweep layers, e.g. 0,1 or head.")] = None,
    apply: Annotated[Optional[str], typer.Option("--apply", help="When the noise fires: train | eval | both.")] = None,
    axis: Axis = None,
    k: Annotated[Optional[str], typer.Option("--k", help="Entropy plan: numbers of mixed samples, e.g. 10,14.")]
    = None,
    seeds: Annotated[Optional[int], typer.Option("--seeds", help="Paired seeds (same init and data order).")] = None,
    epochs: Epochs = None,
    eval_batch_size: Annotated[Optional[int], typer.Option("--eval-batch-size")] = None,
    eval_order: Annotated[Optional[str], typer.Option("--eval-order", help="shuffled | sorted | as-is.")] = None,
    paper_protocol: Annotated[bool, typer.Option("--paper-protocol", help="The official evaluation: optimal Q at "
                                                 "test time on class-sorted batches of 10 (leaks labels; warns).")]
    = False,
    backend: Annotated[Optional[str], typer.Option("--backend", help="serial | process | ray.")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers")] = None,
    json_out: JsonOpt = False, seed: SeedOpt = 0, device: DeviceOpt = "cpu", out: OutOpt = None,
    force: ForceOpt = False, config: ConfigOpt = None, set_: SetOpt = None, track: TrackOpt = "tensorboard",
    report: ReportOpt = False, debug: DebugOpt = False,
) -> None:
    """Train and evaluate baseline and noise conditions over paired seeds: paired CIs, Holm, McNemar, heatmap."""
    session = Session(json_out, debug)
    with guarded(session):
        from toolbox.core.config import resolve
        from toolbox.core.device import resolve_device
        from toolbox.noisynn.study import StudyConfig, run_study, validate

        if resolve_device(device) != "cpu":
            session.info("note: the NoisyNN models are CPU-sized; training runs on the CPU")
        dev = "cpu"
        layers = None if layer is None else [_layer(v) for v in layer.split(",")]
        explicit = {"dataset": dataset, "model": model, "plan": plan, "noise": noise,
                    "strengths": _floats(strength, "--strength"), "layers": layers, "apply": apply, "axis": axis,
                    "seeds": seeds, "epochs": epochs, "eval_batch_size": eval_batch_size, "eval_order": eval_order,
                    "backend": backend, "workers": workers, "first_seed": seed,
                    "ks": _floats(k, "--k")}
        if paper_protocol:
            explicit.update(plan="paper")
        cfg = resolve(StudyConfig(), config, set_, explicit)
        if cfg.plan == "entropy":
            _entropy_plan(session, cfg, run_dir(out, "train-noisy", force), seed, track, report)
            return
        validate(cfg)
        folder = run_dir(out, "train-noisy", force)
        write_config(folder, cfg, seed, dev, track=track, report=report, tables=TABLES)
        session.info(f"train-noisy: {cfg.dataset} / {cfg.model}, plan {cfg.plan}, {cfg.seeds} seeds -> {folder}")
        with session.progress("training runs") as update:
            summary = run_study(cfg, folder, log=session.info, progress=update)
        rows = [[r["condition"], 100 * r["mean_accuracy"], 100 * r.get("diff_mean", 0.0),
                 f"[{100 * r.get('diff_t_low', 0):+.2f}, {100 * r.get('diff_t_high', 0):+.2f}]",
                 r.get("p_holm", ""), r.get("delta_S_analytic", ""), r.get("delta_H_features", "")]
                for r in summary["conditions"]]
        session.table(f"train-noisy ({summary['seeds']} seeds, {summary['wall_seconds']:.0f} s)",
                      ["condition", "acc %", "diff pts", "95% t CI", "p Holm", "dS paper", "dH(Y|Z)"], rows)
        for key, value in summary["checks"].items():
            session.info(f"  {key}: {value}")
        session.emit({"out": str(folder), **summary})


def _entropy_plan(session: Session, cfg, folder: Path, seed: int, track: str, report: bool) -> None:
    from toolbox.noisynn.study import run_entropy

    write_config(folder, cfg, seed, "cpu", track=track, report=report)
    table = run_entropy(cfg, folder)
    session.table("paper's entropy change dS = -log|det(I + Q)| (closed forms)", ["Q", "k", "alpha", "dS"],
                  [[r["q"], r["k"], "" if r["alpha"] is None else r["alpha"], r["delta_S"]]
                   for r in table["linear_transform"]])
    session.table("Gaussian noise, X ~ N(0,1), Y = X + N(0,1)", ["noise variance", "dS estimate", "dS closed form"],
                  [[g["noise_variance"], g["delta_S_estimate"], g["delta_S_closed_form"]]
                   for g in table["scalar_gaussian"]])
    for where in table["singular"]:
        session.info(f"[yellow]warning:[/yellow] singular transform at {where}: det(I + Q) = 0, dS = +inf", markup=True)
    session.emit({"out": str(folder), **table})


def audit_noisy(
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", help="A train-noisy checkpoint (.pt); "
                                                       "without it a baseline is trained first.")] = None,
    dataset: Dataset = None, model: Model = None, noise: Noise = None,
    strength: Annotated[Optional[float], typer.Option("--strength")] = None,
    layer: Annotated[Optional[str], typer.Option("--layer", help="Block index or head (default head).")] = None,
    axis: Axis = None,
    eval_batch_size: Annotated[Optional[int], typer.Option("--eval-batch-size")] = None,
    permutations: Annotated[Optional[int], typer.Option("--permutations")] = None,
    epochs: Epochs = None,
    json_out: JsonOpt = False, seed: SeedOpt = 0, device: DeviceOpt = "cpu", out: OutOpt = None,
    force: ForceOpt = False, config: ConfigOpt = None, set_: SetOpt = None, track: TrackOpt = "tensorboard",
    report: ReportOpt = False, debug: DebugOpt = False,
) -> None:
    """Leak audit: B = 1 vs shuffled vs class-sorted batches, a permutation test of batch dependence, a verdict."""
    session = Session(json_out, debug)
    with guarded(session):
        from toolbox.core.config import resolve
        from toolbox.core.device import resolve_device
        from toolbox.core.io import write_json
        from toolbox.noisynn.audit import AuditConfig, run_audit

        resolve_device(device)
        dev = "cpu"  # the audit's models are CPU-sized
        explicit = {"dataset": dataset, "model": model, "noise": noise, "strength": strength,
                    "layer": _layer(layer), "axis": axis, "batch_size": eval_batch_size,
                    "permutations": permutations, "epochs": epochs,
                    "checkpoint": None if checkpoint is None else str(checkpoint)}
        cfg = resolve(AuditConfig(), config, set_, explicit)
        if cfg.checkpoint:
            from toolbox.noisynn.checkpoint import load_checkpoint

            load_checkpoint(Path(cfg.checkpoint))  # a file that is not a checkpoint fails before the run folder
        folder = run_dir(out, "audit-noisy", force)
        write_config(folder, cfg, seed, dev, track=track, report=report)
        result = run_audit(cfg, folder, seed, log=session.info)
        session.table("audit-noisy", ["protocol", "accuracy %"], [
            ["no noise", 100 * result["accuracy_clean"]], ["batch size 1", 100 * result["accuracy_batch1"]],
            [f"class-sorted /{result['batch_size']}", 100 * result["accuracy_sorted"]],
            [f"shuffled /{result['batch_size']} (mean of {result['permutations']})",
             100 * result["accuracy_shuffled_mean"]]])
        session.info(f"verdict: [bold]{result['verdict']}[/bold] - {result['verdict_text']}", markup=True)
        write_json(folder / "summary.json", result)
        session.emit({"out": str(folder), **result})


def register(app: typer.Typer) -> None:
    app.command("train-noisy", rich_help_panel=PANEL)(train_noisy)
    app.command("audit-noisy", rich_help_panel=PANEL)(audit_noisy)
