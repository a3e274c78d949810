"""Fused per-token entropy, label log-prob and logsumexp over logits [T, V] (the design card's fused kernel).

One streaming pass per row (online max / sum / weighted sum) gives H = lse - E_p[x], log p_y = x_y - lse and lse,
with O(T) extra memory; the backward recomputes p from the saved lse:
    dH/dx = -p (log p + H),  d log p_y/dx = onehot(y) - p,  d lse/dx = p.
`row_entropy_reference` is the plain torch oracle and the fallback for other dtypes or a missing extension.
"""
from __future__ import annotations

import torch

from toolbox.core import dispatch, native


def row_entropy_reference(logits: torch.Tensor, labels: torch.Tensor | None = None):
    """(entropy, logp, lse) per row in the input's dtype, by log_softmax (materialises [T, V])."""
    lse = torch.logsumexp(logits, dim=-1)
    logp_all = logits - lse.unsqueeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    logp = logp_all.gather(-1, labels.unsqueeze(-1)).squeeze(-1) if labels is not None else torch.zeros_like(lse)
    return entropy, logp, lse


def _check(logits: torch.Tensor, labels: torch.Tensor | None) -> None:
    if logits.dim() != 2:
        raise ValueError(f"logits must be [T, V], got shape {tuple(logits.shape)}")
    if logits.shape[1] == 0:
        raise ValueError("logits: the vocabulary axis is empty")
    if labels is not None and (labels.dim() != 1 or labels.shape[0] != logits.shape[0]):
        raise ValueError(f"labels must be [T] with T = {logits.shape[0]}, got {tuple(labels.shape)}")


def _native_ok(logits: torch.Tensor) -> bool:
    if dispatch.native_cuda(logits):
        return logits.dtype in (torch.float32, torch.bfloat16)
    return dispatch.native_cpu(logits, ("float32",))


class _RowEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, labels):
        rows, vocab = logits.shape
        x = logits.contiguous()
        y = labels.contiguous().long() if labels is not None else None
        if x.is_cuda:
            h, lp, lse = (torch.empty(rows, device=x.device, dtype=torch.float32) for _ in range(3))
            with dispatch.on_device(x) as stream:
                native.module().row_entropy_forward_cuda(dispatch.ptr(x), dispatch.dtype_code(x), dispatch.ptr(y),
                                                         rows, vocab, dispatch.ptr(h), dispatch.ptr(lp),
                                                         dispatch.ptr(lse), stream)
        else:
            h, lp, lse = map(torch.from_numpy, native.module().row_entropy_forward(x.numpy(), dispatch.as_numpy(y)))
        ctx.save_for_backward(x, y, h, lse)
        return h, lp, lse

    @staticmethod
    def backward(ctx, g_h, g_lp, g_lse):
        x, y, h, lse = ctx.saved_tensors
        grads = [g.contiguous().float() if g is not None else None for g in (g_h, g_lp, g_lse)]
        if x.is_cuda:
            out = torch.empty(x.shape, device=x.device, dtype=torch.float32)
            with dispatch.on_device(x) as stream:
                native.module().row_entropy_backward_cuda(dispatch.ptr(x), dispatch.dtype_code(x), dispatch.ptr(y),
                                                          dispatch.ptr(h), dispatch.ptr(lse),
                                                          *(dispatch.ptr(g) for g in grads), x.shape[0], x.shape[1],
                                                          dispatch.ptr(out), stream)
        else:
            out = torch.from_numpy(native.module().row_entropy_backward(
                x.numpy(), dispatch.as_numpy(y), h.numpy(), lse.numpy(), *(dispatch.as_numpy(g) for g in grads)))
        return out.to(x.dtype), None


def row_entropy(logits: torch.Tensor, labels: torch.Tensor | None = None):
    """(entropy, logp, lse) per row of logits [T, V], differentiable w.r.t. the logits.

    Uses the fused C++ (float32) or CUDA (float32 / bfloat16) kernel when available, else the torch reference.
    Outputs are float32 from the kernels and the input dtype from the reference.
    """
    _check(logits, labels)
    if _native_ok(logits):
        return _RowEntropy.apply(logits, labels)
    return row_entropy_reference(logits, labels)
