"""`toolbox fuse-gp`: GP experts fused by entropy change (Cao & Fleet, generalized product of experts)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from toolbox.cli.common import (ConfigOpt, DebugOpt, DeviceOpt, ForceOpt, JsonOpt, OutOpt, ReportOpt, SeedOpt,
                                Session, SetOpt, TrackOpt, guarded, run_dir, write_config)
from toolbox.core.tracking import StepTable

# The experts' training curves (NLML per point at each evaluation of each expert's own L-BFGS, with the iteration
# it belongs to), logged when a run closes.
TABLES = (StepTable("training.csv", "evaluation", ("partition", "expert")),)

PANEL = "gPoE"
RULES_HELP = "poe | gpoe-uniform | gpoe-entropy | gpoe-normalized | bcm | rbcm | grbcm (repeatable)."

RuleOpt = Annotated[Optional[list[str]], typer.Option("--rule", help=f"Fusion rule: {RULES_HELP}")]
EpsOpt = Annotated[Optional[float], typer.Option("--eps", help="Prior fallback where the sum of weights is below "
                                                                "this (default 1e-9).")]

group = typer.Typer(no_args_is_help=True, rich_markup_mode="rich",
                    help="Scalable GP regression: exact GP experts (batched gpytorch) fused by PoE, gPoE (entropy "
                         "weights), BCM, rBCM and GRBCM; compare, plot, save, predict, fuse raw Gaussians.")


def register(app: typer.Typer) -> None:
    app.add_typer(group, name="fuse-gp", rich_help_panel=PANEL)


@group.command("run", rich_help_panel=PANEL)
def run(dataset: Annotated[Optional[str], typer.Option(
            "--dataset", help="gp-prior | kin-like | sarcos-like | diabetes | co2 | friedman1 | file.")] = None,
        data: Annotated[Optional[Path], typer.Option("--data", help="CSV (with header) or NPZ for --dataset file.")]
        = None,
        target: Annotated[Optional[str], typer.Option("--target", help="Target column / array (default: last).")]
        = None,
        experts: Annotated[Optional[int], typer.Option("--experts", help="Number of experts M.")] = None,
        partition: Annotated[Optional[list[str]], typer.Option(
            "--partition", help="random | kmeans | kdtree | user (repeatable; user needs --set labels=FILE).")] = None,
        rule: RuleOpt = None,
        hyper: Annotated[Optional[str], typer.Option(
            "--hyper", help="auto | independent | shared | fixed (the data set's true values).")] = None,
        kernel: Annotated[Optional[str], typer.Option("--kernel", help="rbf | matern12 | matern32 | matern52.")]
        = None,
        backend: Annotated[Optional[str], typer.Option("--backend", help="serial | process | ray (expert shards).")]
        = None,
        workers: Annotated[Optional[int], typer.Option("--workers", help="Worker processes (default: cores).")]
        = None,
        eps: EpsOpt = None, json_out: JsonOpt = False, seed: SeedOpt = 0, device: DeviceOpt = "auto",
        out: OutOpt = None, force: ForceOpt = False, config: ConfigOpt = None, sets: SetOpt = None,
        track: TrackOpt = "tensorboard", report: ReportOpt = False, debug: DebugOpt = False) -> None:
    """Fit experts on each partition, fuse with every rule, compare with a full exact GP; table, CSV, plots.

    Writes comparison.csv, summary.json, experts.csv and training.csv (each expert's own L-BFGS: iterations,
    convergence, objective per evaluation), experts_<partition>.npz (for `fuse-gp predict`), bands_*.png,
    weight_maps.png and calibration.png. Experts run on the CPU (float64 Cholesky); fusion runs the C++ kernel,
    or the CUDA kernel with --device cuda (auto: when a GPU is visible)."""
    session = Session(json_out, debug)
    with guarded(session):
        from toolbox.core.config import resolve
        from toolbox.core.device import resolve_device
        from toolbox.gpoe.pipeline import FuseGpConfig, check_cost, run as run_pipeline

        cfg = resolve(FuseGpConfig(), config, sets, {
            "dataset": dataset, "data": str(data) if data else None, "target": target, "experts": experts,
            "partitions": partition or None, "rules": rule or None, "hyper": hyper, "kernel": kernel,
            "backend": backend, "workers": workers, "eps": eps})
        dev = resolve_device(device)
        check_cost(cfg)
        folder = run_dir(out, "fuse-gp", force)
        write_config(folder, cfg, seed, dev, track=track, report=report, tables=TABLES)
        with session.progress("fuse-gp", total=len(cfg.partitions) + 1) as update:
            summary = run_pipeline(cfg, folder, seed, log=session.info, progress=update, device=dev)
        cols = {"partition": "partition", "rule": "rule", "smse": "SMSE", "msll": "MSLL", "nlpd": "NLPD",
                "coverage95": "cover95", "fit_s": "fit s"}
        session.table(f"fuse-gp: {summary['dataset']} (n={summary['n_train']}, M={cfg.experts}, "
                      f"hyper {summary['hyper']})", list(cols.values()),
                      [[r[c] for c in cols] for r in summary["rows"]])
        if summary["nlpd_floor"] is not None:
            session.info(f"NLPD noise floor 1/2 log(2 pi e s_n^2) = {summary['nlpd_floor']:.4f}")
        session.info(f"run folder: {folder}")
        session.emit({"out": str(folder), "device": dev, "compute": f"experts: CPU torch float64; fusion: {dev}",
                      **summary})


@group.command("predict", rich_help_panel=PANEL)
def predict(experts_file: Annotated[Path, typer.Option("--experts-file", help="experts_<partition>.npz from a run.")],
            inputs: Annotated[Path, typer.Option("--inputs", help="CSV with a header or NPZ (array x) of new inputs.")],
            rule: RuleOpt = None, eps: EpsOpt = None, json_out: JsonOpt = False, device: DeviceOpt = "auto",
            out: OutOpt = None, force: ForceOpt = False, track: TrackOpt = "tensorboard", report: ReportOpt = False,
            debug: DebugOpt = False) -> None:
    """Predict at new inputs with saved experts (no refitting); writes predictions.csv (mean, var per rule)."""
    session = Session(json_out, debug)
    with guarded(session):
        import numpy as np

        from toolbox.core.device import resolve_device
        from toolbox.core.io import write_csv, write_json
        from toolbox.gpoe.fusion import DEFAULT_EPS
        from toolbox.gpoe.pipeline import predict_saved

        dev = resolve_device(device)
        rules = rule or ["gpoe-normalized"]
        x = _read_inputs(inputs)
        fused = predict_saved(experts_file, x, rules, eps if eps is not None else DEFAULT_EPS)
        folder = run_dir(out, "fuse-gp-predict", force)
        write_config(folder, {"experts_file": str(experts_file), "inputs": str(inputs), "rules": rules,
                              "eps": eps if eps is not None else DEFAULT_EPS}, None, dev, track=track, report=report)
        rows = [{**{f"x{j}": x[i, j] for j in range(x.shape[1])},
                 **{f"{k}_{r}": v[i] for r, (m, s2) in fused.items() for k, v in (("mean", m), ("var", s2))}}
                for i in range(len(x))]
        write_csv(folder / "predictions.csv", rows)
        doc = {"out": str(folder), "device": dev, "points": len(x), "rules": rules,
               "mean": {r: float(np.mean(m)) for r, (m, _) in fused.items()}}
        write_json(folder / "summary.json", doc)
        session.info(f"{len(x)} predictions written to {folder / 'predictions.csv'}")
        session.emit({**doc, "predictions": {r: {"mean": m, "var": s2} for r, (m, s2) in fused.items()}})


@group.command("fuse", rich_help_panel=PANEL)
def fuse(arrays: Annotated[Path, typer.Option("--arrays", help="NPZ with mean [M, N], var [M, N], prior_var "
                                                               "(scalar or [N]); optional prior_mean, weight_prior.")],
         rule: RuleOpt = None, eps: EpsOpt = None, json_out: JsonOpt = False, device: DeviceOpt = "auto",
         out: OutOpt = None, force: ForceOpt = False, track: TrackOpt = "tensorboard", report: ReportOpt = False,
         debug: DebugOpt = False) -> None:
    """Fuse any Gaussian experts given as arrays with the C++ kernel (CUDA with --device cuda or auto on a GPU);
    writes fused.npz and fused.csv."""
    session = Session(json_out, debug)
    with guarded(session):
        import io

        import numpy as np

        from toolbox.core.device import resolve_device
        from toolbox.core.io import atomic_write_bytes, write_csv, write_json
        from toolbox.gpoe.fusion import DEFAULT_EPS, RULES
        from toolbox.gpoe.pipeline import fuse_arrays

        dev = resolve_device(device)
        rules = rule or list(RULES)
        fused = fuse_arrays(arrays, rules, eps if eps is not None else DEFAULT_EPS, dev)
        folder = run_dir(out, "fuse-gp-fuse", force)
        write_config(folder, {"arrays": str(arrays), "rules": rules, "eps": eps if eps is not None else DEFAULT_EPS},
                     None, dev, track=track, report=report)
        buf = io.BytesIO()
        np.savez(buf, **{f"{k}_{r}": getattr(f, k) for r, f in fused.items() for k in ("mean", "var", "fallback")})
        atomic_write_bytes(folder / "fused.npz", buf.getvalue())
        n = len(next(iter(fused.values())).mean)
        write_csv(folder / "fused.csv", [{f"{k}_{r}": getattr(f, k)[i] for r, f in fused.items()
                                          for k in ("mean", "var")} for i in range(n)])
        doc = {"out": str(folder), "device": dev, "points": n, "rules": {
            r: {"mean_of_means": float(np.mean(f.mean)), "mean_var": float(np.mean(f.var)),
                "fallback_points": int(np.sum(f.fallback)), "mean_effective_experts": float(np.mean(
                    f.effective_experts))} for r, f in fused.items()}}
        write_json(folder / "summary.json", doc)
        session.table("fuse-gp fuse", ["rule", "mean of means", "mean var", "fallback points"],
                      [[r, v["mean_of_means"], v["mean_var"], v["fallback_points"]] for r, v in doc["rules"].items()])
        session.emit(doc)


def _read_inputs(path: Path):
    """New inputs [n, d] from an NPZ (array x) or a CSV with a header row of numeric columns (pandas)."""
    import numpy as np
    import pandas as pd

    from toolbox.core.errors import UserInputError

    if not path.is_file():
        raise UserInputError(f"inputs file not found: {path}")
    if path.suffix == ".npz":
        try:
            arrays = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise UserInputError(f"{path}: not a readable NPZ file ({exc})") from None
        if "x" not in arrays:
            raise UserInputError(f"{path}: needs an array named x")
        return np.atleast_2d(np.asarray(arrays["x"], dtype=float))
    try:
        frame = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise UserInputError(f"{path}: not a CSV file with a header row ({type(exc).__name__})") from None
    text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if text or frame.empty:
        raise UserInputError(f"{path}: needs at least one row of numbers" if frame.empty else
                             f"{path}: column(s) {', '.join(map(str, text))} are not numeric")
    return frame.to_numpy(dtype=float)
