"""The rejection epilogue of the fused entropy kernel (Alg. 1 steps 1-3) with CPU / CUDA / reference dispatch.

From per-token entropies (the fused kernel's output), the token -> sequence map and the sequence advantages:
batch entropy (token-mean or seq-mean), mode m, accept_i = (m * A_i >= 0), kept counts per group. The CUDA path
never syncs with the host; `mode` and `entropy` come back as 0-d tensors on the device.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from toolbox.core import dispatch, native
from toolbox.core.errors import UserInputError
from toolbox.entrocraft.control import batch_entropy, controller_mode


@dataclass(frozen=True)
class Epilogue:
    entropy: torch.Tensor          # 0-d float64
    mode: torch.Tensor             # 0-d int32
    accept: torch.Tensor           # bool [N]
    kept_per_group: torch.Tensor | None   # int64 [G]


def _check(token_entropy, token_seq, advantages, band, group_ids, aggregation):
    if aggregation not in ("token-mean", "seq-mean"):
        raise UserInputError(f"entropy aggregation must be token-mean or seq-mean, got {aggregation!r}")
    if token_entropy.dim() != 1 or token_seq.shape != token_entropy.shape or advantages.dim() != 1:
        raise ValueError("token_entropy and token_seq must be [T], advantages [N]")
    if group_ids is not None and group_ids.shape != advantages.shape:
        raise ValueError("group_ids must be [N] like advantages")
    low, high = (float(b) for b in band)
    if not (np.isfinite(low) and np.isfinite(high) and low <= high):
        raise ValueError(f"entropy band: need finite h_low <= h_high, got {band}")
    if not token_entropy.is_cuda and not (torch.isfinite(token_entropy).all() and torch.isfinite(advantages).all()):
        raise ValueError("token_entropy and advantages must be finite")


def rejection_epilogue_reference(token_entropy, token_seq, advantages, band, group_ids=None, groups: int = 0,
                                 aggregation: str = "token-mean") -> Epilogue:
    """numpy oracle built from the controller's functions."""
    _check(token_entropy, token_seq, advantages, band, group_ids, aggregation)
    h_np = token_entropy.detach().double().cpu().numpy()
    s_np = token_seq.cpu().numpy()
    h = batch_entropy(h_np, np.ones_like(h_np), s_np, aggregation) if h_np.size else 0.0
    mode = controller_mode(h, *band)
    accept = mode * advantages.detach().float().cpu().numpy() >= 0
    kept = None
    if group_ids is not None:
        kept = torch.from_numpy(np.bincount(group_ids.cpu().numpy(), weights=accept, minlength=groups).astype(np.int64))
    return Epilogue(torch.tensor(h, dtype=torch.float64), torch.tensor(mode, dtype=torch.int32),
                    torch.from_numpy(accept), kept)


def rejection_epilogue(token_entropy: torch.Tensor, token_seq: torch.Tensor, advantages: torch.Tensor,
                       band: tuple[float, float], group_ids: torch.Tensor | None = None, groups: int = 0,
                       aggregation: str = "token-mean") -> Epilogue:
    _check(token_entropy, token_seq, advantages, band, group_ids, aggregation)
    if group_ids is not None and groups <= 0:
        groups = int(group_ids.max()) + 1 if group_ids.numel() else 0
    seq_mean = aggregation == "seq-mean"
    h = token_entropy.detach().float().contiguous()
    s = token_seq.long().contiguous()
    a = advantages.detach().float().contiguous()
    g = group_ids.long().contiguous() if group_ids is not None else None
    if dispatch.native_cuda(h):
        dev = h.device
        ws = torch.zeros(2 * a.numel() + 1, dtype=torch.float64, device=dev)
        accept = torch.empty(a.numel(), dtype=torch.uint8, device=dev)
        kept = torch.zeros(max(groups, 1), dtype=torch.int64, device=dev)
        entropy = torch.empty((), dtype=torch.float64, device=dev)
        mode = torch.empty((), dtype=torch.int32, device=dev)
        with dispatch.on_device(h) as stream:
            native.module().rejection_epilogue_cuda(
                dispatch.ptr(h), dispatch.ptr(s), h.numel(), dispatch.ptr(a), dispatch.ptr(g), a.numel(), groups,
                seq_mean, float(band[0]), float(band[1]), dispatch.ptr(ws), dispatch.ptr(accept), dispatch.ptr(kept),
                dispatch.ptr(entropy), dispatch.ptr(mode), stream)
        return Epilogue(entropy, mode, accept.bool(), kept[:groups] if g is not None else None)
    if dispatch.native_cpu(h):
        entropy, mode, accept, kept = native.module().rejection_epilogue(
            h.numpy(), s.numpy(), a.numpy(), None if g is None else g.numpy(), groups, seq_mean,
            float(band[0]), float(band[1]))
        return Epilogue(torch.tensor(entropy, dtype=torch.float64), torch.tensor(mode, dtype=torch.int32),
                        torch.from_numpy(accept).bool(), None if kept is None else torch.from_numpy(kept))
    return rejection_epilogue_reference(token_entropy, token_seq, advantages, band, group_ids, groups, aggregation)
