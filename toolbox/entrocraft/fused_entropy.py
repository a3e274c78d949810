"""Fused per-token entropy, label log-prob and logsumexp over logits [T, V] (the design card's fused kernel).

One streaming pass per row keeps its statistics relative to the running row max m (csrc/include/toolbox/entropy.h):
    s = sum_j exp(x_j - m),  u = sum_j exp(x_j - m) (x_j - m)                              (N1, rescaled by N2)
    H = log s - u / s,  log p_y = (x_y - m) - log s,  lse = m + log s                       (N3)
with O(T) extra memory; the backward recomputes log p = (x - m) - log s from the saved m and log s:
    dH/dx = -p (log p + H),  d log p_y/dx = onehot(y) - p,  d lse/dx = p.
Conventions, on every path: entries at -inf contribute 0; a fully masked row (padding) gives H = 0,
logp = lse = -inf and a zero gradient; NaN or +inf logits raise ValueError naming the rows.
`row_entropy_reference` is the plain torch oracle and the fallback for float64 or a missing extension.
"""
from __future__ import annotations

import torch

from toolbox.core import dispatch, native

_DTYPE_CODES = {torch.float32: 0, torch.bfloat16: 1, torch.float16: 2}  # entropy.h's LogitsDtype
_HALF = (torch.bfloat16, torch.float16)


def row_entropy_reference(logits: torch.Tensor, labels: torch.Tensor | None = None):
    """(entropy, logp, lse) per row by log_softmax (materialises [T, V]), with the kernels' conventions.

    Computes in float32 for 16-bit logits and in the input's dtype otherwise.
    """
    x = logits.float() if logits.dtype in _HALF else logits
    dead = torch.isneginf(x).all(-1)
    live = x.masked_fill(dead.unsqueeze(-1), 0.0)  # keeps the gradient of fully masked rows finite (then 0)
    lse = torch.logsumexp(live, dim=-1)
    logp_all = live - lse.unsqueeze(-1)
    terms = logp_all.exp() * logp_all.masked_fill(torch.isneginf(live), 0.0)  # p log p -> 0 at -inf
    entropy = torch.where(dead, 0.0, -terms.sum(-1))
    if labels is None:
        logp = torch.zeros_like(lse)
    else:
        logp = torch.where(dead, float("-inf"), logp_all.gather(-1, labels.unsqueeze(-1)).squeeze(-1))
    return entropy, logp, torch.where(dead, float("-inf"), lse)


def _check(logits: torch.Tensor, labels: torch.Tensor | None) -> None:
    if logits.dim() != 2:
        raise ValueError(f"logits must be [T, V], got shape {tuple(logits.shape)}")
    if logits.shape[1] == 0:
        raise ValueError("logits: the vocabulary axis is empty")
    if labels is not None and (labels.dim() != 1 or labels.shape[0] != logits.shape[0]):
        raise ValueError(f"labels must be [T] with T = {logits.shape[0]}, got {tuple(labels.shape)}")


def backend(logits: torch.Tensor) -> str:
    """The path `row_entropy` takes for these logits: "cuda" or "cpu" (the fused kernels), or "reference"."""
    if logits.dtype not in _DTYPE_CODES:
        return "reference"
    if dispatch.native_cuda(logits):
        return "cuda"
    if dispatch.native_cpu(logits, ("float32", "bfloat16", "float16")):
        return "cpu"
    return "reference"


def _host(x: torch.Tensor):
    """Zero-copy numpy view for the C++ kernel: float32, or the uint16 bit patterns of 16-bit logits."""
    x = x.detach()
    return (x.view(torch.uint16) if x.dtype in _HALF else x).numpy()


class _RowEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, labels):
        rows, vocab = logits.shape
        x = logits.contiguous()
        y = labels.contiguous().long() if labels is not None else None
        code = _DTYPE_CODES[x.dtype]
        if x.is_cuda:
            h, lp, mx, ls = (torch.empty(rows, device=x.device, dtype=torch.float32) for _ in range(4))
            with dispatch.on_device(x) as stream:
                native.module().row_entropy_forward_cuda(dispatch.ptr(x), code, dispatch.ptr(y), rows, vocab,
                                                         *map(dispatch.ptr, (h, lp, mx, ls)), stream)
        else:
            h, lp, mx, ls = map(torch.from_numpy,
                                native.module().row_entropy_forward(_host(x), dispatch.as_numpy(y), code))
        ctx.save_for_backward(x, y, h, mx, ls)
        ctx.code = code
        return h, lp, mx + ls  # lse (N3)

    @staticmethod
    def backward(ctx, g_h, g_lp, g_lse):
        x, y, h, mx, ls = ctx.saved_tensors
        grads = [g.contiguous().float() if g is not None else None for g in (g_h, g_lp, g_lse)]
        if x.is_cuda:
            out = torch.empty(x.shape, device=x.device, dtype=torch.float32)
            with dispatch.on_device(x) as stream:
                native.module().row_entropy_backward_cuda(dispatch.ptr(x), ctx.code, dispatch.ptr(y),
                                                          *map(dispatch.ptr, (h, mx, ls, *grads)), x.shape[0],
                                                          x.shape[1], dispatch.ptr(out), stream)
        else:
            out = torch.from_numpy(native.module().row_entropy_backward(
                _host(x), dispatch.as_numpy(y), h.numpy(), mx.numpy(), ls.numpy(),
                *(dispatch.as_numpy(g) for g in grads), ctx.code))
        return out.to(x.dtype), None


def _report_nonfinite(lse: torch.Tensor) -> None:
    bad = torch.isnan(lse) | torch.isposinf(lse)
    if bool(bad.any()):
        rows = bad.nonzero().flatten()
        raise ValueError(f"logits hold NaN or +inf in {rows.numel()} row(s), first: {rows[:8].tolist()}")


def row_entropy(logits: torch.Tensor, labels: torch.Tensor | None = None, *, check_finite: bool = True):
    """(entropy, logp, lse) per row of logits [T, V], differentiable w.r.t. the logits.

    Uses the fused C++ or CUDA kernel (float32, bfloat16, float16 logits, read in their own type and accumulated in
    float32; outputs float32) when available, else the torch reference (float32 for 16-bit logits, float64 stays
    float64). Entries at -inf (masks) contribute 0. A fully masked row gives H = 0, logp = lse = -inf and a zero
    gradient. NaN or +inf logits raise ValueError with the row indices; on CUDA that check synchronises once, and
    check_finite=False skips it (those rows then come back NaN from the kernels, non-finite from the reference).
    """
    _check(logits, labels)
    if backend(logits) == "reference":
        out = row_entropy_reference(logits, labels)
    else:
        out = _RowEntropy.apply(logits, labels)
    if check_finite:
        _report_nonfinite(out[2])
    return out
