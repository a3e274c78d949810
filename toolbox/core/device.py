"""The --device option: auto | cpu | cuda, resolved the same way by every pipeline."""
from __future__ import annotations

from toolbox.core.errors import UserInputError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> str:
    """'cpu' or 'cuda'. auto picks CUDA when torch sees a GPU; an explicit cuda without one is a user error."""
    if name not in DEVICES:
        raise UserInputError(f"--device must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if name == "cuda":
        raise UserInputError("--device cuda was asked for, but torch sees no CUDA GPU on this machine")
    return "cpu"
