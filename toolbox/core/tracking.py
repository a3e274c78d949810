"""Run tracking: per-step scalars as TensorBoard event files in the run folder, and optionally an MLflow run.

A pipeline names its step tables (a CSV or JSONL file of the run folder, its step column, and the columns that
name a series, such as env and agent); `Tracker.log_table` logs every numeric cell of a row as the scalar
`<table>/<series>=<value>/.../<column>` at that row's step, so what TensorBoard and MLflow show is what the CSV
holds. A long loop may also log live (`Tracker.scalars`), as train-rl does at every step.

MLflow (extra `toolbox[mlflow]`): the store is MLFLOW_TRACKING_URI when set, else a SQLite file `mlflow.db`
beside the run folder (its artifacts in `mlartifacts/` there); one experiment per command, one MLflow run per
run folder, with the resolved settings as parameters and the run's figures, summary and report as artifacts.
"""
from __future__ import annotations

import csv
import json
import math
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRACKERS = ("tensorboard", "mlflow", "none")
TENSORBOARD_DIR = "tensorboard"
_MLFLOW_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")  # the characters MLflow accepts in a metric or parameter name


@dataclass(frozen=True)
class StepTable:
    """A per-step table of a run folder: `path` (a glob relative to the folder), its step column and the columns
    whose values name a series."""
    path: str
    step: str
    series: tuple[str, ...] = ()


def mlflow_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("mlflow") is not None


class Tracker:
    """TensorBoard event files under FOLDER/tensorboard, plus an MLflow run when `mlflow` is True."""

    def __init__(self, folder: Path, command: str, mlflow: bool = False):
        from torch.utils.tensorboard import SummaryWriter

        self.folder = Path(folder)
        self.writer = SummaryWriter(log_dir=str(self.folder / TENSORBOARD_DIR))
        self.mlflow = _MlflowRun(self.folder, command) if mlflow else None

    def params(self, settings: Mapping[str, Any]) -> None:
        """The resolved settings (nested tables flattened to dotted names): MLflow parameters, TensorBoard text."""
        flat = dict(flatten(settings))
        self.writer.add_text("settings", "\n".join(f"    {k} = {v!r}" for k, v in flat.items()), 0)
        if self.mlflow:
            self.mlflow.params(flat)

    def scalars(self, values: Mapping[str, Any], step: int, prefix: str = "") -> None:
        """Every finite number in `values` as the scalar PREFIX/KEY at `step` (text, None and NaN are skipped)."""
        metrics = {f"{prefix}/{k}" if prefix else str(k): x for k, v in values.items()
                   if (x := as_number(v)) is not None}
        for tag, x in metrics.items():
            self.writer.add_scalar(tag, x, step)
        if self.mlflow:
            self.mlflow.metrics(metrics, step)

    def log_table(self, table: StepTable) -> int:
        """Log every row of the table's files; returns the number of rows logged."""
        rows = 0
        for path in sorted(self.folder.glob(table.path)):
            for prefix, step, values in table_series(path, self.folder, table):
                self.scalars(values, step, prefix)
                rows += 1
        return rows

    def close(self, status: str = "complete") -> None:
        """Flush the event files; the MLflow run gets the figures, summary, settings and report, and its status."""
        self.writer.close()
        if self.mlflow:
            self.mlflow.close(status)

    def discard(self) -> None:
        """A run rejected before it started: close the writer and delete the MLflow run."""
        self.writer.close()
        if self.mlflow:
            self.mlflow.client.delete_run(self.mlflow.run_id)


def table_series(path: Path, folder: Path, table: StepTable) -> Iterable[tuple[str, int, dict]]:
    """(tag prefix, step, {column: value}) per row of a CSV or JSONL step table; rows without a step are skipped."""
    name = path.relative_to(folder).with_suffix("").as_posix()
    for row in read_rows(path):
        step = as_number(row.get(table.step))
        if step is None:
            continue
        prefix = "/".join([name, *(f"{c}={row.get(c)}" for c in table.series)])
        yield prefix, int(step), {k: v for k, v in row.items() if k != table.step and k not in table.series}


def read_rows(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def as_number(v: Any) -> float | None:
    """A finite float from a number or a numeric CSV cell; None for text, booleans, empty cells and NaN/inf."""
    if v is None or isinstance(v, bool) or (isinstance(v, str) and v in ("True", "False")):
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def flatten(d: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for k, v in d.items():
        if isinstance(v, Mapping):
            yield from flatten(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def read_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """All scalars in a run's TensorBoard event files, read with TensorBoard's own reader: {tag: [(step, value)]}."""
    from tensorboard.backend.event_processing.event_accumulator import (
        SCALARS,
        EventAccumulator,
    )

    logdir = Path(folder) / TENSORBOARD_DIR
    if not logdir.is_dir():
        return {}
    acc = EventAccumulator(str(logdir), size_guidance={SCALARS: 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()[SCALARS]}


def mlflow_key(name: str) -> str:
    return _MLFLOW_KEY.sub("_", name)[:250]


def mlflow_uri(folder: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(Path(folder).resolve().parent / 'mlflow.db')}"


class _MlflowRun:
    """One MLflow run through the client API (no global active run), in experiment `command`."""

    def __init__(self, folder: Path, command: str):
        import logging

        from mlflow.tracking import MlflowClient

        logging.getLogger("alembic").setLevel(logging.WARNING)  # the SQLite store's schema migration notes
        self.folder = folder
        self.uri = mlflow_uri(folder)
        self.client = MlflowClient(tracking_uri=self.uri)
        experiment = self.client.get_experiment_by_name(command)
        if experiment is None:
            artifacts = None if os.environ.get("MLFLOW_TRACKING_URI") else \
                (folder.resolve().parent / "mlartifacts").as_uri()
            experiment_id = self.client.create_experiment(command, artifact_location=artifacts)
        else:
            experiment_id = experiment.experiment_id
        self.run_id = self.client.create_run(experiment_id, run_name=folder.name,
                                             tags={"toolbox.run_folder": str(folder.resolve())}).info.run_id

    def params(self, flat: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(mlflow_key(k), str(v)[:6000]) for k, v in flat.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def metrics(self, values: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        items = [Metric(mlflow_key(k), v, stamp, step) for k, v in values.items()]
        for i in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[i:i + 1000])

    def close(self, status: str) -> None:
        for path in sorted(self.folder.rglob("*")):
            if path.is_file() and (path.suffix in (".png", ".html") or path.name in ("summary.json", "config.toml")):
                where = path.parent.relative_to(self.folder).as_posix()
                self.client.log_artifact(self.run_id, str(path), None if where == "." else where)
        self.client.set_terminated(self.run_id, {"complete": "FINISHED", "interrupted": "KILLED"}.get(status,
                                                                                                      "FAILED"))
