"""Provenance of a run: what produced it (toolbox version and commit, command line, seed, device) and on what
(Python, numpy, torch, the native build). Written into every run's config.toml and summary.json."""
from __future__ import annotations

import functools
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the checkout the package runs from (with '+dirty' for local changes), or None."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def provenance(seed: int | None = None, device: str | None = None, argv: list[str] | None = None) -> dict[str, Any]:
    import numpy
    import torch

    from toolbox import __version__
    from toolbox.core import native

    build = native.build_info()
    return {
        "toolbox": __version__,
        "git_commit": git_commit(),
        "command_line": list(sys.argv if argv is None else argv),
        "seed": seed,
        "device": device,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "native_extension": native.available(),
        "native_import_error": native.import_error(),
        "cuda_compiled": bool(build.get("cuda")),
        "cuda_version": build.get("cuda_version"),
    }
