"""Run folders and atomic writes: a crash never leaves a half-written result, and nothing is overwritten blindly.

A run folder holds config.toml (the resolved configuration), metrics as CSV / JSONL, plots as PNG and a
summary.json. Every file is written to a temporary name in the same folder and renamed into place.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Mapping

SCHEMA_VERSION = 1


def _file_mode() -> int:
    """The mode a plain open() would give a new file (0o666 less the umask); mkstemp's is 0o600."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with _suppress():
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types from numpy / torch scalars and arrays, dataclasses, paths; NaN and inf become null."""
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy arrays and scalars, torch tensors
        return to_jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dumps_json(obj: Any) -> str:
    return json.dumps(to_jsonable(obj), indent=2, sort_keys=False, allow_nan=False)


def write_json(path, obj: Any) -> Path:
    return atomic_write_text(path, dumps_json(obj) + "\n")


def write_csv(path, rows: Iterable[Mapping[str, Any]], columns: list[str] | None = None) -> Path:
    rows = [dict(r) for r in rows]
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: _csv_cell(r.get(k)) for k in columns})
    return atomic_write_text(path, buf.getvalue())


def _csv_cell(v):
    v = to_jsonable(v)
    return "" if v is None else v


def write_jsonl(path, rows: Iterable[Mapping[str, Any]]) -> Path:
    text = "".join(json.dumps(to_jsonable(r), allow_nan=False) + "\n" for r in rows)
    return atomic_write_text(path, text)


def read_json(path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def save_figure(fig, path) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def new_run_dir(prefix: str, parent: str | os.PathLike = ".") -> Path:
    """A fresh folder PARENT/PREFIX-YYYYmmdd-HHMMSS[-n] that did not exist before."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(parent) / f"{prefix}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = Path(f"{base}-{n}")
    path.mkdir(parents=True)
    return path


def _suppress():
    import contextlib

    return contextlib.suppress(OSError)
