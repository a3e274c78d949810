"""Loading the compiled module toolbox._core and reporting what it can do; a missing module is never fatal."""
from __future__ import annotations

import functools
from types import ModuleType


@functools.lru_cache(maxsize=1)
def module() -> ModuleType | None:
    """The compiled extension, or None when it is not built (the numpy/torch references then serve)."""
    try:
        from toolbox import _core
    except ImportError:
        return None
    return _core


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
