"""`toolbox demo`: the smallest real run of every pipeline on built-in data.

Each entry names a module with `run_demo(out: Path, seed: int, device: str, log) -> dict`; the dict holds a
one-line `headline` and any numbers worth keeping. A failing pipeline is reported and the others still run.
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
            status = "ok"
        except Exception as exc:  # one pipeline's failure must not hide the others' results
            summary = {"headline": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            status = "failed"
        results.append({"pipeline": name, "status": status, "seconds": time.perf_counter() - start, **summary})
        if progress:
            progress(i + 1)
    return results
