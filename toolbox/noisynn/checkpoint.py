"""Model checkpoints of `train-noisy`, readable by `audit-noisy`: weights plus what rebuilds the model and its data."""
from __future__ import annotations

from pathlib import Path

from toolbox.core.errors import UserInputError


def save_checkpoint(path: Path, model, model_name: str, dataset: str, seed: int, input_shape, classes: int,
                    depth: int) -> Path:
    import io

    import torch

    from toolbox.core.io import atomic_write_bytes

    meta = {"model": model_name, "dataset": dataset, "seed": int(seed), "input_shape": [int(s) for s in input_shape],
            "classes": int(classes), "depth": int(depth)}
    buf = io.BytesIO()
    torch.save({"meta": meta, "state_dict": model.state_dict()}, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path):
    """(model in eval mode, meta dict)."""
    import torch

    from toolbox.noisynn.models import build_model

    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"checkpoint not found: {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        meta = blob["meta"]
        model = build_model(meta["model"], tuple(meta["input_shape"]), meta["classes"], meta["depth"] or None)
        model.load_state_dict(blob["state_dict"])
    except UserInputError:
        raise
    except Exception as exc:  # whatever torch.load or the state dict rejects, the file is not a checkpoint
        raise UserInputError(f"{path}: not a train-noisy checkpoint ({type(exc).__name__})") from exc
    return model.eval(), meta
