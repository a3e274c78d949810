"""The numeric core of the noises: batch mixing by the linear transform noises and per-sample keyed random noise.

Mixing acts on a [K, M] matrix whose rows are the K samples mixed together (the batch axis by default):
    optimal Q  (paper eq. 19):  out_i = (x_i + sum_j x_j) / (K + 1)         i.e. (I + Q*) x, Q* = -k/(k+1) I + 11'/(k+1)
    circulant  (paper eq. 17):  out_i = x_i + alpha (x_{i+1 mod K} - x_i)   i.e. (I + alpha (P - I)) x
Both are O(K M) without a K x K matrix. Gaussian and impulse draws are keyed Philox streams: element j of the sample
with key k uses draw (j mod 4) of counter (k, j div 4), so a sample's noise never depends on its batch.

The C++ / CUDA kernels of toolbox._core serve float32 tensors; `*_reference` are the torch/numpy oracles and fallback.
"""
from __future__ import annotations

import numpy as np
import torch

from toolbox.core import dispatch, native, rng


# ---- references --------------------------------------------------------------------------------------------------

def mix_optimal_reference(x: torch.Tensor) -> torch.Tensor:
    return (x + x.sum(0, keepdim=True)) / (x.shape[0] + 1)


def mix_circulant_reference(x: torch.Tensor, alpha: float, shift: int = 1) -> torch.Tensor:
    return x + alpha * (torch.roll(x, -shift, dims=0) - x)


def keyed_normal_reference(seed: int, stream: int, keys: torch.Tensor, m: int) -> torch.Tensor:
    """Standard normals [B, m]: row b is Philox counter (keys[b], j div 4), draw j mod 4 (float64 -> float32)."""
    groups = (m + 3) // 4
    a = keys.cpu().numpy().astype(np.uint64)[:, None]
    z = rng.philox_normal4(seed, stream, a, np.arange(groups, dtype=np.uint64)[None, :])
    return torch.from_numpy(z.reshape(len(a), 4 * groups)[:, :m].astype(np.float32))


def keyed_uniform_reference(seed: int, stream: int, keys: torch.Tensor, m: int) -> torch.Tensor:
    groups = (m + 3) // 4
    a = keys.cpu().numpy().astype(np.uint64)[:, None]
    u = rng.philox_uniform4(seed, stream, a, np.arange(groups, dtype=np.uint64)[None, :])
    return torch.from_numpy(u.reshape(len(a), 4 * groups)[:, :m].astype(np.float32))


def gaussian_reference(x: torch.Tensor, keys: torch.Tensor, seed: int, stream: int, shift: float,
                       scale: float) -> torch.Tensor:
    """x + shift + scale * z with keyed standard normals z (x is [B, M])."""
    return x + (shift + scale * keyed_normal_reference(seed, stream, keys, x.shape[1])).to(x.device, x.dtype)


def impulse_reference(x: torch.Tensor, keys: torch.Tensor, seed: int, stream: int, p: float, salt: float,
                      pepper: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Salt-and-pepper: u < p/2 -> salt, u > 1 - p/2 -> pepper (official code); returns (out, kept mask)."""
    u = keyed_uniform_reference(seed, stream, keys, x.shape[1]).to(x.device)
    salted, peppered = u < p / 2, u > 1 - p / 2
    out = torch.where(salted, torch.as_tensor(salt, dtype=x.dtype, device=x.device), x)
    out = torch.where(peppered, torch.as_tensor(pepper, dtype=x.dtype, device=x.device), out)
    return out, ~(salted | peppered)


# ---- dispatch ----------------------------------------------------------------------------------------------------

def _native(x: torch.Tensor) -> str | None:
    """'cuda', 'cpu' or None (reference) for a float32 [K, M] tensor."""
    if x.dtype != torch.float32:
        return None
    if dispatch.native_cuda(x):
        return "cuda"
    return "cpu" if dispatch.native_cpu(x) else None


def _mix_optimal_raw(x: torch.Tensor) -> torch.Tensor:
    where = _native(x)
    if where is None:
        return mix_optimal_reference(x)
    x = x.contiguous()
    if where == "cpu":
        return torch.from_numpy(native.module().noisynn_mix_optimal(x.numpy()))
    out = torch.empty_like(x)
    with dispatch.on_device(x) as stream:
        native.module().noisynn_mix_optimal_cuda(dispatch.ptr(x), x.shape[0], x.shape[1], dispatch.ptr(out), stream)
    return out


def _mix_circulant_raw(x: torch.Tensor, alpha: float, shift: int) -> torch.Tensor:
    where = _native(x)
    if where is None:
        return mix_circulant_reference(x, alpha, shift)
    x = x.contiguous()
    if where == "cpu":
        return torch.from_numpy(native.module().noisynn_mix_circulant(x.numpy(), float(alpha), int(shift)))
    out = torch.empty_like(x)
    with dispatch.on_device(x) as stream:
        native.module().noisynn_mix_circulant_cuda(dispatch.ptr(x), x.shape[0], x.shape[1], float(alpha), int(shift),
                                                   dispatch.ptr(out), stream)
    return out


class _MixOptimal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, detach_partner):
        ctx.k, ctx.detach_partner = x.shape[0], detach_partner
        return _mix_optimal_raw(x.detach())

    @staticmethod
    def backward(ctx, grad):
        if ctx.detach_partner:  # only the own term 2 x_i / (K + 1) carries a gradient
            return grad * (2.0 / (ctx.k + 1)), None
        return _mix_optimal_raw(grad), None  # I + Q* is symmetric: the adjoint is the same map


class _MixCirculant(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, alpha, detach_partner):
        ctx.alpha, ctx.detach_partner = alpha, detach_partner
        return _mix_circulant_raw(x.detach(), alpha, 1)

    @staticmethod
    def backward(ctx, grad):
        if ctx.detach_partner:  # official CNN: x + alpha (roll(x) - x).detach(), gradient is the identity
            return grad, None, None
        return _mix_circulant_raw(grad, ctx.alpha, -1), None, None  # adjoint: (1-a) g_i + a g_{i-1}


def mix_optimal(x: torch.Tensor, detach_partner: bool = False) -> torch.Tensor:
    """(I + Q*) x over the rows of x [K, M]; K = 1 returns x exactly."""
    _check_matrix(x)
    return _MixOptimal.apply(x, detach_partner)


def mix_circulant(x: torch.Tensor, alpha: float, detach_partner: bool = True) -> torch.Tensor:
    """(1 - alpha) x_i + alpha x_{i+1 mod K} over the rows of x [K, M]; K = 1 returns x exactly."""
    _check_matrix(x)
    _check_finite(alpha=alpha)
    return _MixCirculant.apply(x, float(alpha), detach_partner)


def gaussian(x: torch.Tensor, keys: torch.Tensor, seed: int, stream: int, shift: float, scale: float) -> torch.Tensor:
    """x + shift + scale * z, z keyed standard normals (gradient: identity)."""
    _check_matrix(x, keys)
    _check_finite(shift=shift, scale=scale)
    where = _native(x)
    if where is None:
        return gaussian_reference(x, keys, seed, stream, shift, scale)
    xc, k = x.detach().contiguous(), keys.to(x.device, torch.int64).contiguous()
    if where == "cpu":
        noisy = torch.from_numpy(native.module().noisynn_gaussian(xc.numpy(), k.numpy(), int(seed), int(stream),
                                                                  float(shift), float(scale)))
    else:
        noisy = torch.empty_like(xc)
        with dispatch.on_device(xc) as cuda_stream:
            native.module().noisynn_gaussian_cuda(dispatch.ptr(xc), dispatch.ptr(k), xc.shape[0], xc.shape[1],
                                                  int(seed), int(stream), float(shift), float(scale),
                                                  dispatch.ptr(noisy), cuda_stream)
    return x + (noisy - xc)  # the noise is a constant: gradient flows unchanged


def impulse(x: torch.Tensor, keys: torch.Tensor, seed: int, stream: int, p: float, salt: float,
            pepper: float) -> torch.Tensor:
    """Salt-and-pepper noise; replaced elements carry no gradient."""
    _check_matrix(x, keys)
    _check_finite(salt=salt, pepper=pepper)
    if not 0 <= p <= 1:
        raise ValueError(f"p must be in [0, 1], got {p}")
    where = _native(x)
    if where is None:
        out, kept = impulse_reference(x.detach(), keys, seed, stream, p, salt, pepper)
    else:
        xc, k = x.detach().contiguous(), keys.to(x.device, torch.int64).contiguous()
        if where == "cpu":
            out, kept = map(torch.from_numpy, native.module().noisynn_impulse(
                xc.numpy(), k.numpy(), int(seed), int(stream), float(p), float(salt), float(pepper)))
        else:
            out, kept = torch.empty_like(xc), torch.empty(xc.shape, dtype=torch.uint8, device=xc.device)
            with dispatch.on_device(xc) as cuda_stream:
                native.module().noisynn_impulse_cuda(dispatch.ptr(xc), dispatch.ptr(k), xc.shape[0], xc.shape[1],
                                                     int(seed), int(stream), float(p), float(salt), float(pepper),
                                                     dispatch.ptr(out), dispatch.ptr(kept), cuda_stream)
        kept = kept.bool()
    return torch.where(kept, x, out)


def _check_finite(**params: float) -> None:
    """The kernels' parameter check, for every path."""
    for name, value in params.items():
        if not np.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")


def _check_matrix(x: torch.Tensor, keys: torch.Tensor | None = None) -> None:
    if x.dim() != 2 or x.shape[0] == 0:
        raise ValueError(f"expected a non-empty [K, M] matrix, got shape {tuple(x.shape)}")
    if keys is not None and (keys.dim() != 1 or keys.shape[0] != x.shape[0]):
        raise ValueError(f"keys must be [{x.shape[0]}], got shape {tuple(keys.shape)}")
