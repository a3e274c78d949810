"""Kernel self-check (part of `toolbox demo`): Philox known answers and native-vs-reference parity."""
from __future__ import annotations

import time
from pathlib import Path


from toolbox.core import native, rng
from toolbox.core.io import write_json
from toolbox.demo import check

# Random123's known answers for Philox4x32-10.
PHILOX_KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
]


def run_demo(out: Path, seed: int = 0, device: str = "cpu", log=print) -> dict:
    import torch

    from toolbox.entrocraft.fused_entropy import row_entropy, row_entropy_reference

    philox_ok = all(tuple(rng.philox4x32_10(c, k)) == want for c, k, want in PHILOX_KNOWN_ANSWERS)
    if native.available():
        philox_ok &= all(tuple(native.module().philox4x32_10(*c, *k)) == want for c, k, want in PHILOX_KNOWN_ANSWERS)
    gen = torch.Generator().manual_seed(seed)
    logits = (3 * torch.randn(256, 4096, generator=gen)).to(device)
    labels = torch.randint(0, 4096, (256,), generator=gen).to(device)
    t0 = time.perf_counter()
    h, lp, lse = row_entropy(logits, labels)
    t_fused = time.perf_counter() - t0
    t0 = time.perf_counter()
    h_ref, lp_ref, lse_ref = row_entropy_reference(logits.double(), labels)
    t_ref = time.perf_counter() - t0
    err = max(float((a.double() - b).abs().max()) for a, b in ((h, h_ref), (lp, lp_ref), (lse, lse_ref)))
    result = {
        "philox_known_answers": philox_ok,
        "native_extension": native.available(),
        "fused_entropy_max_abs_err": err,
        "fused_entropy_seconds": t_fused,
        "reference_float64_seconds": t_ref,
        "mean_token_entropy_nats": float(h.mean()),
    }
    write_json(out / "selfcheck.json", result)
    if not philox_ok:
        raise RuntimeError(f"kernel self-check failed: Philox known answers differ ({result})")
    # float32 against float64: the lse of these rows is ~15, float32's relative rounding 6e-8 and a blocked sum over
    # 4096 entries adds ~log2(4096) = 12 roundings: ~1e-5 at worst (1.2-1.5e-6 measured over seeds 0-2)
    result["checks"] = [check("fused entropy vs float64 (max abs error)", err, 0.0, 1e-5)]
    result["headline"] = f"Philox KAT ok, fused entropy max err {err:.1e} (native={native.available()})"
    return result
