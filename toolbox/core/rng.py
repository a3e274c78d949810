"""Seeding and the counter-based Philox4x32-10 RNG (numpy reference of csrc/include/toolbox/philox.h).

A draw is a pure function of (seed, stream, a, b): a and b are two 64-bit counters (e.g. particle and step), so
every backend, batch size and chunking gives the same bits.
"""
from __future__ import annotations

import numpy as np

_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = np.uint32(0x9E3779B9), np.uint32(0xBB67AE85)
_MASK32 = np.uint64(0xFFFFFFFF)


def philox4x32_10(counter, key) -> np.ndarray:
    """Philox4x32-10 of counters [..., 4] and keys [..., 2] (uint32, broadcast); returns uint32 [..., 4]."""
    c = np.asarray(counter, dtype=np.uint32)
    k = np.asarray(key, dtype=np.uint32)
    c0, c1, c2, c3 = (c[..., i].astype(np.uint64) for i in range(4))
    k0, k1 = k[..., 0].copy(), k[..., 1].copy()
    with np.errstate(over="ignore"):
        for _ in range(10):
            p0 = _M0 * c0
            p1 = _M1 * c2
            hi0, lo0 = p0 >> np.uint64(32), p0 & _MASK32
            hi1, lo1 = p1 >> np.uint64(32), p1 & _MASK32
            c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
            k0 = k0 + _W0
            k1 = k1 + _W1
    return np.stack([c0, c1, c2, c3], axis=-1).astype(np.uint32)


def philox_key(seed: int, stream: int = 0) -> np.ndarray:
    """Key words of (seed, stream), as in philox.h: the seed's two halves, the stream mixed into the high word."""
    seed = int(seed) & 0xFFFFFFFFFFFFFFFF
    k1 = ((seed >> 32) ^ ((int(stream) * 0x9E3779B9) & 0xFFFFFFFF)) & 0xFFFFFFFF
    return np.array([seed & 0xFFFFFFFF, k1], dtype=np.uint32)


def _split64(x) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.uint64)
    return (x & _MASK32).astype(np.uint32), (x >> np.uint64(32)).astype(np.uint32)


def philox_uniform4(seed: int, stream: int, a, b) -> np.ndarray:
    """Uniforms in (0, 1), shape [..., 4], for counters (a, b) broadcast together: (bits + 0.5) / 2^32."""
    a_lo, a_hi = _split64(a)
    b_lo, b_hi = _split64(b)
    a_lo, a_hi, b_lo, b_hi = np.broadcast_arrays(a_lo, a_hi, b_lo, b_hi)
    bits = philox4x32_10(np.stack([a_lo, a_hi, b_lo, b_hi], axis=-1), philox_key(seed, stream))
    return (bits.astype(np.float64) + 0.5) * 2.0**-32


def philox_normal4(seed: int, stream: int, a, b) -> np.ndarray:
    """Standard normals [..., 4] by Box-Muller on uniform pairs (0, 1) and (2, 3), as philox_normal4 in C++."""
    u = philox_uniform4(seed, stream, a, b)
    r01 = np.sqrt(-2.0 * np.log(u[..., 0]))
    r23 = np.sqrt(-2.0 * np.log(u[..., 2]))
    t1, t3 = 2.0 * np.pi * u[..., 1], 2.0 * np.pi * u[..., 3]
    return np.stack([r01 * np.cos(t1), r01 * np.sin(t1), r23 * np.cos(t3), r23 * np.sin(t3)], axis=-1)


def philox_uniform(seed: int, stream: int, n: int, a0: int = 0, b: int = 0) -> np.ndarray:
    """n uniforms: element 4i + k is uniform k of counter (a0 + i, b); the layout of the native kernels."""
    groups = (n + 3) // 4
    return philox_uniform4(seed, stream, np.arange(groups, dtype=np.uint64) + np.uint64(a0), b).reshape(-1)[:n]


def numpy_generator(seed: int, *streams: int) -> np.random.Generator:
    """A numpy Generator for (seed, stream...), independent across streams (SeedSequence spawning by key)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), *map(int, streams)]))


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's legacy and torch's global generators (for code that uses them implicitly)."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(seed)
