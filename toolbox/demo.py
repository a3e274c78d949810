"""`toolbox demo`: the smallest real run of every pipeline on built-in data.

Each entry names a module with `run_demo(out: Path, seed: int, device: str, log) -> dict`; the dict holds a
one-line `headline`, any numbers worth keeping and optional `checks`: [{name, value, reference, tolerance}]. An entry
whose computed figure misses its reference by more than the tolerance has status "mismatch", one that raises
"failed"; the others still run, and `toolbox demo` exits 1 unless every entry is "ok".
"""
from __future__ import annotations

import importlib
import time
import traceback
from pathlib import Path
from typing import Callable

DEMOS: dict[str, str] = {
    "kernels": "toolbox.selfcheck",
    "entrocraft": "toolbox.entrocraft.demo",
    "ises": "toolbox.ises.demo",
    "gpoe": "toolbox.gpoe.demo",
    "diffusion": "toolbox.diffusion.demo",
    "landscape": "toolbox.landscape.demo",
    "noisynn": "toolbox.noisynn.demo",
    "shaping": "toolbox.shaping.demo",
    "choice": "toolbox.choice.demo",
}


def check(name: str, value: float, reference: float, tolerance: float = 0.0) -> dict:
    """A figure of a demo and the reference it must reproduce within `tolerance` (absolute)."""
    return {"name": name, "value": value, "reference": reference, "tolerance": tolerance}


def missed_checks(summary: dict) -> list[str]:
    """The demo's checks whose value misses the reference by more than the tolerance (NaN misses)."""
    return [f"{c['name']} = {c['value']} (reference {c['reference']} +- {c['tolerance']})"
            for c in summary.get("checks", []) if not abs(c["value"] - c["reference"]) <= c["tolerance"]]


def run_demos(out: Path, seed: int = 0, device: str = "cpu", only: list[str] | None = None,
              progress: Callable[..., None] | None = None, log: Callable[[str], None] = print) -> list[dict]:
    results = []
    names = [n for n in DEMOS if not only or n in only]
    for i, name in enumerate(names):
        start = time.perf_counter()
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        log(f"[{i + 1}/{len(names)}] {name} ...")
        try:
            summary = importlib.import_module(DEMOS[name]).run_demo(folder, seed=seed, device=device, log=log)
            missed = missed_checks(summary)
            status = "mismatch" if missed else "ok"
            if missed:
                summary["headline"] = "reference mismatch: " + "; ".join(missed)
        except Exception as exc:  # one pipeline's failure must not hide the others' results
            summary = {"headline": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            status = "failed"
        results.append({"pipeline": name, "status": status, "seconds": time.perf_counter() - start, **summary})
        if progress:
            progress(i + 1)
    return results
