"""NoisyNN kernels side by side: batch mixing (native C++ vs torch vs the naive k x k matrix product), keyed noise
(native vs the numpy Philox reference vs torch.randn, which is not keyed), and the closed-form entropy change vs
slogdet of the explicit k x k matrix.

    .venv/bin/python bench/bench_noisynn.py [--json out.json] [--repeats 5]
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

from toolbox.core.io import write_json
from toolbox.noisynn import entropy as E
from toolbox.noisynn import kernels as K

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_of  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = []
    m = 196 * 768  # ViT-B patch tokens x width at one block: the official site
    for k in (10, 64, 256):
        x = torch.randn(k, m)
        q = torch.from_numpy(np.eye(k) + E.q_matrix("optimal", k)).float()
        rows.append({"op": "optimal-Q mix", "k": k, "m": m,
                     "native_ms": 1e3 * best_of(lambda: K.mix_optimal(x), args.repeats),
                     "torch_ms": 1e3 * best_of(lambda: K.mix_optimal_reference(x), args.repeats),
                     "naive_kxk_ms": 1e3 * best_of(lambda: q @ x, args.repeats)})
        qc = torch.from_numpy(np.eye(k) + E.q_matrix("linear", k, 0.3)).float()
        rows.append({"op": "circulant mix", "k": k, "m": m,
                     "native_ms": 1e3 * best_of(lambda: K.mix_circulant(x, 0.3), args.repeats),
                     "torch_ms": 1e3 * best_of(lambda: K.mix_circulant_reference(x, 0.3), args.repeats),
                     "naive_kxk_ms": 1e3 * best_of(lambda: qc @ x, args.repeats)})
    for b, width in ((64, 512), (64, 16 * 64)):
        x, keys = torch.randn(b, width), torch.arange(b)
        rows.append({"op": "keyed gaussian", "k": b, "m": width,
                     "native_ms": 1e3 * best_of(lambda: K.gaussian(x, keys, 0, 1, 0.0, 1.0), args.repeats),
                     "numpy_reference_ms": 1e3 * best_of(lambda: K.gaussian_reference(x, keys, 0, 1, 0.0, 1.0),
                                                         args.repeats),
                     "torch_randn_unkeyed_ms": 1e3 * best_of(lambda: x + torch.randn_like(x), args.repeats)})
    for k in (100, 1000, 4000):
        want = E.entropy_change_matrix(E.q_matrix("linear", k, 0.3))
        rows.append({"op": "dS circulant", "k": k, "m": 0,
                     "closed_form_ms": 1e3 * best_of(lambda: E.entropy_change("linear", k, 0.3), args.repeats),
                     "slogdet_kxk_ms": 1e3 * best_of(lambda: E.entropy_change_matrix(E.q_matrix("linear", k, 0.3)),
                                                     max(1, args.repeats // 2)),
                     "abs_diff": abs(E.entropy_change("linear", k, 0.3) - want)})
    rows.append({"op": "dS optimal", "k": 1_281_167, "m": 0,
                 "closed_form_ms": 1e3 * best_of(lambda: E.entropy_change("optimal", 1_281_167), args.repeats),
                 "slogdet_kxk_ms": math.nan, "note": "k x k would need 13 TB in float64"})
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    for r in rows:
        print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()))
    if args.json:
        write_json(args.json, rows)


if __name__ == "__main__":
    main()
