"""Loading the compiled module toolbox._core and reporting what it can do.

A missing module is never fatal (the numpy/torch references serve), but it is never silent either: `import_error()`
keeps the full reason, the CLI warns on every command and `toolbox doctor` prints it.
"""
from __future__ import annotations

import functools
from types import ModuleType

_import_error: str | None = None


@functools.lru_cache(maxsize=1)
def module() -> ModuleType | None:
    """The compiled extension, or None when it is not built (the numpy/torch references then serve)."""
    global _import_error
    try:
        from toolbox import _core
    except ImportError as exc:
        _import_error = f"{type(exc).__name__}: {exc}"
        return None
    return _core


def import_error() -> str | None:
    """Why toolbox._core could not be imported (None when it loaded)."""
    module()
    return _import_error


def available() -> bool:
    return module() is not None


def build_info() -> dict:
    """CUDA compiled (version, architectures) and the kernel thread count; empty when the extension is missing."""
    core = module()
    return dict(core.build_info()) if core is not None else {"cuda": False, "cuda_version": None, "cuda_archs": None}


@functools.lru_cache(maxsize=1)
def cuda_status() -> tuple[bool, str]:
    """(usable, device name or the reason CUDA kernels cannot run here)."""
    core = module()
    if core is None:
        return False, "native extension not built"
    usable, detail = core.cuda_status()
    return bool(usable), str(detail)


def cuda_kernels_usable() -> bool:
    return cuda_status()[0]
