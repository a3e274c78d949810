"""The one torch <-> native glue: pick the CUDA kernel, the C++ kernel or the reference for a tensor.

CUDA entry points take raw device pointers, sizes and the caller's current stream as integers; CPU entry points
take numpy arrays (zero-copy views of contiguous CPU tensors). No torch header is ever compiled.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any

from toolbox.core import native

_TORCH_TO_CODE = {"float32": 0, "bfloat16": 1}


def use_native() -> bool:
    """False when TOOLBOX_KERNELS=reference forces the pure references everywhere (debugging, A/B checks)."""
    return os.environ.get("TOOLBOX_KERNELS", "native") != "reference" and native.available()


def native_cuda(tensor) -> bool:
    """True when the tensor lives on a GPU and this build can run its CUDA kernels."""
    return bool(tensor.is_cuda) and use_native() and native.cuda_kernels_usable()


def native_cpu(tensor, dtypes=("float32",)) -> bool:
    return (not tensor.is_cuda) and use_native() and str(tensor.dtype).removeprefix("torch.") in dtypes


def dtype_code(tensor) -> int:
    name = str(tensor.dtype).removeprefix("torch.")
    if name not in _TORCH_TO_CODE:
        raise ValueError(f"CUDA kernels take float32 or bfloat16, got {name}")
    return _TORCH_TO_CODE[name]


def ptr(tensor) -> int:
    """Device pointer of a tensor, or 0 for None (an absent optional input)."""
    return 0 if tensor is None else int(tensor.data_ptr())


@contextlib.contextmanager
def on_device(tensor):
    """Make the tensor's GPU current and yield its current CUDA stream handle (an int)."""
    import torch

    with torch.cuda.device(tensor.device):
        yield int(torch.cuda.current_stream(tensor.device).cuda_stream)


def as_numpy(tensor) -> Any:
    """Zero-copy numpy view of a CPU tensor (made contiguous first), or None."""
    if tensor is None:
        return None
    return tensor.detach().contiguous().numpy()
