"""Entrocraft's rejection epilogue: native C++ (and CUDA when present) vs the numpy reference vs a naive torch path.

    .venv/bin/python bench/bench_entrocraft.py [--tokens 4194304] [--seqs 16384] [--group 8] [--json out.json]

The epilogue reads per-token entropies (T floats) and per-sequence advantages (N floats) once; the figure of merit
is its share of a training step (it must be negligible next to the fused entropy pass over [T, V] logits).
"""
from __future__ import annotations

import argparse
import time

import torch

from toolbox.core import native
from toolbox.core.io import write_json
from toolbox.entrocraft.epilogue import rejection_epilogue, rejection_epilogue_reference


def naive_torch(h, seq, adv, band, groups, group_ids, aggregation):
    """What a trainer writes inline: scatter-add per sequence, mean, mode, mask, bincount."""
    if aggregation == "seq-mean":
        n = adv.numel()
        sums = torch.zeros(n, dtype=torch.float64).index_add_(0, seq, h.double())
        counts = torch.zeros(n, dtype=torch.float64).index_add_(0, seq, torch.ones_like(h, dtype=torch.float64))
        hb = (sums[counts > 0] / counts[counts > 0]).mean()
    else:
        hb = h.double().mean()
    mode = int(hb > band[1]) - int(hb < band[0])
    accept = mode * adv >= 0
    return hb, mode, accept, torch.bincount(group_ids, weights=accept.double(), minlength=groups)


def timeit(fn, repeat=5):
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=4_194_304)
    ap.add_argument("--seqs", type=int, default=16_384)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    gen = torch.Generator().manual_seed(0)
    h = torch.rand(args.tokens, generator=gen)
    seq = torch.sort(torch.randint(0, args.seqs, (args.tokens,), generator=gen)).values
    adv = torch.randn(args.seqs, generator=gen)
    group_ids = torch.arange(args.seqs) // args.group
    groups = args.seqs // args.group
    band = (0.4, 0.5)
    rows = []
    for agg in ("token-mean", "seq-mean"):
        entries = {"native C++": lambda: rejection_epilogue(h, seq, adv, band, group_ids, groups, agg),
                   "numpy reference": lambda: rejection_epilogue_reference(h, seq, adv, band, group_ids, groups, agg),
                   "naive torch": lambda: naive_torch(h, seq, adv, band, groups, group_ids, agg)}
        if torch.cuda.is_available() and native.cuda_kernels_usable():
            hc, sc, ac, gc = (t.cuda() for t in (h, seq, adv, group_ids))

            def cuda_run():
                rejection_epilogue(hc, sc, ac, band, gc, groups, agg)
                torch.cuda.synchronize()

            entries["native CUDA"] = cuda_run
        if not native.available():
            entries.pop("native C++")
        for name, fn in entries.items():
            t = timeit(fn)
            rows.append({"aggregation": agg, "path": name, "ms": 1e3 * t,
                         "GB_per_s": (args.tokens * 12 + args.seqs * 12) / t / 1e9})
    ref = rejection_epilogue_reference(h, seq, adv, band, group_ids, groups, "seq-mean")
    got = rejection_epilogue(h, seq, adv, band, group_ids, groups, "seq-mean")
    assert abs(float(ref.entropy) - float(got.entropy)) < 1e-9 and torch.equal(ref.accept, got.accept)
    print(f"rejection epilogue, T={args.tokens} tokens, N={args.seqs} sequences, groups of {args.group}; "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'aggregation':<12} {'path':<16} {'ms':>9} {'GB/s':>7}")
    for r in rows:
        print(f"{r['aggregation']:<12} {r['path']:<16} {r['ms']:>9.2f} {r['GB_per_s']:>7.2f}")
    if args.json:
        write_json(args.json, {"tokens": args.tokens, "seqs": args.seqs, "rows": rows})


if __name__ == "__main__":
    main()
