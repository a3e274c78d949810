"""Fusion-kernel benchmark: M experts x N test points, float32, every rule: the C++ kernel (threads), a vectorised
numpy float32 version, the float64 numpy reference; on a GPU the CUDA kernel against the measured copy bandwidth.
On the CPU the same run measures one read of the inputs (numpy sum over an array of their size); the C++ kernel,
numpy and that read alternate, median of --repeats rounds, and the kernel's time is reported as a multiple of it.

    .venv/bin/python bench/bench_gpoe.py [--experts 64] [--points 1000000] [--repeats 5] [--json out.json]

--log-error also measures the kernel's float32 log (log_ge1 of gpoe.h) against float64 np.log: one expert with
v = 1 and per-point weight prior v** = x gives S_b = 1/2 log_ge1(x) exactly, over every float32 in [1, 2) (the
polynomial sees only the mantissa; the exponent adds k ln 2) plus 10^6 log-uniform x in [2, 2^127].
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from toolbox.core import native
from toolbox.core.io import write_json
from toolbox.gpoe import fusion

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import alternate, best_of, load_average  # noqa: E402


def numpy_float32(mean, var, prior_var, rule):
    """The obvious vectorised numpy fusion in float32 (materialises [M, N] weights and precisions)."""
    weight, combine = fusion.RULES[rule]
    precision = 1.0 / var
    beta = (np.maximum(0.5 * np.log(prior_var / var), 0) if weight == "entropy"
            else np.ones_like(var))
    bt = beta * precision
    s_t, s_tm, s_b = bt.sum(0), (bt * mean).sum(0), beta.sum(0)
    if combine == "normalised":
        s_t, s_tm = s_t / s_b, s_tm / s_b
    elif combine == "corrected":
        s_t = s_t + (1 - s_b) / prior_var
    out_var = 1 / s_t
    return s_tm * out_var, out_var


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--experts", type=int, default=64)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rules", nargs="*", default=["gpoe-normalized", "poe", "rbcm"])
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--vanguard-points", type=int, default=1000, help="N for the Vanguard comparison (0: skip)")
    ap.add_argument("--log-error", action="store_true", help="max error of the kernel's float32 log")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    log_err = log_error() if args.log_error and native.available() else None
    rng = np.random.default_rng(0)
    m, n = args.experts, args.points
    mean = rng.standard_normal((m, n), dtype=np.float32)
    var = rng.uniform(0.05, 1.0, (m, n)).astype(np.float32)
    prior = np.array([1.01], np.float32)
    nbytes = mean.nbytes + var.nbytes
    print(f"fusion of M = {m} experts x N = {n} points, float32 ({nbytes / 1e9:.2f} GB read), "
          f"native={native.available()}, threads={native.build_info().get('threads')}; median of {args.repeats} "
          f"alternated rounds; {load_average()}")
    inputs = np.concatenate([mean.ravel(), var.ravel()])  # one array of the inputs' size for the read bandwidth
    rows = []
    for rule in args.rules:
        fns = {"read": lambda: inputs.sum()}  # one read of the inputs: numpy sum (one thread)
        if native.available():
            fns["cpp"] = lambda: fusion.fuse(mean, var, prior, rule)
        fns["numpy_f32"] = lambda: numpy_float32(mean, var, np.float32(1.01), rule)
        sec = alternate(fns, args.repeats)
        row = {"rule": rule, "read_s": sec["read"], "read_GBps": nbytes / sec["read"] / 1e9}
        if native.available():
            row |= {"cpp_s": sec["cpp"], "cpp_GBps": nbytes / sec["cpp"] / 1e9,
                    "cpp_over_read": sec["cpp"] / sec["read"], "numpy_over_cpp": sec["numpy_f32"] / sec["cpp"]}
        row["numpy_f32_s"] = sec["numpy_f32"]
        if not args.skip_reference:
            row["numpy_f64_reference_s"] = best_of(lambda: fusion.fuse_reference(mean, var, 1.01, rule), 1, warmup=0)
        rows.append(row)
        print("  " + "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
    print(f"after: {load_average()}")
    cuda = cuda_rows(mean, var, args)
    anchor = vanguard_rows(args.vanguard_points)
    if args.json:
        write_json(args.json, {"experts": m, "points": n, "cpu": rows, "cuda": cuda, "vanguard": anchor,
                               "log_error": log_err})


def log_error() -> dict:
    """Max error of the kernel's float32 log in ulps of the float32 result (and absolute), against np.log."""
    mantissas = (np.arange(1 << 23, dtype=np.int32) | np.int32(0x3F800000)).view(np.float32)  # [1, 2)
    wide = np.exp2(np.random.default_rng(2).uniform(1, 127, 1_000_000)).astype(np.float32)
    x = np.concatenate([mantissas, wide])
    got = 2 * fusion.fuse(np.zeros((1, x.size), np.float32), np.ones((1, x.size), np.float32),
                          np.float32(1), "gpoe-normalized", weight_prior=x[None, :]).sum_beta
    want = np.log(x.astype(np.float64))
    ulp = np.spacing(np.maximum(np.abs(want), np.finfo(np.float32).tiny).astype(np.float32)).astype(np.float64)
    err = np.abs(got - want)
    worst = int(np.argmax(err / ulp))
    out = {"points": int(x.size), "max_ulp": float(err[worst] / ulp[worst]), "at": float(x[worst]),
           "max_abs": float(err.max()), "log1_exact": bool(got[0] == 0.0)}
    print(f"float32 log of the entropy weight over {x.size} inputs in [1, 2^127]: max {out['max_ulp']:.3f} ulp "
          f"(x = {out['at']:.9g}), max abs {out['max_abs']:.2e}, log(1) = 0 exactly: {out['log1_exact']}")
    return out


def cuda_rows(mean, var, args):
    import torch

    if not (torch.cuda.is_available() and native.cuda_kernels_usable()):
        print("CUDA: not available here")
        return []
    mt, vt = torch.from_numpy(mean).cuda(), torch.from_numpy(var).cuda()
    prior = torch.tensor([1.01], device="cuda")
    nbytes = 2 * mt.numel() * 4
    dst = torch.empty_like(mt)

    def timed(fn, reps=20):
        fn()
        torch.cuda.synchronize()
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1e3 / reps

    copy_s = timed(lambda: dst.copy_(mt))
    copy_bw = 2 * mt.numel() * 4 / copy_s  # read + write
    print(f"CUDA {torch.cuda.get_device_name()}: measured copy bandwidth {copy_bw / 1e9:.0f} GB/s")
    rows = []
    for rule in args.rules:
        t = timed(lambda: fusion.fuse(mt, vt, prior, rule))
        bw = (nbytes + 41 * mt.shape[1]) / t  # reads 8 M bytes, writes mean, var, flag, 4 double sums per point
        rows.append({"rule": rule, "cuda_s": t, "cuda_GBps": bw / 1e9, "fraction_of_copy": bw / copy_bw})
        print(f"  {rule}: {t * 1e3:.3f} ms, {bw / 1e9:.0f} GB/s = {100 * bw / copy_bw:.0f}% of copy bandwidth")
    return rows


def vanguard_rows(points: int, experts: int = 16):
    """The anchor library (PyPI vanguard-gp): its aggregators take [N, N] covariance matrices per expert, so it is
    compared at a small N: same numbers (float32) and time, against fusion.fuse on the same inputs."""
    try:
        import torch
        from vanguard.distribute import aggregators as agg
    except ImportError:
        print("vanguard-gp: not installed (pip install vanguard-gp), skipped")
        return []
    if points <= 0:
        return []
    rng = np.random.default_rng(1)
    mean = rng.standard_normal((experts, points), dtype=np.float32)
    var = rng.uniform(0.05, 1.0, (experts, points)).astype(np.float32)  # below the prior: weights agree
    covars = [torch.diag(torch.from_numpy(v)) for v in var]
    means = [torch.from_numpy(m) for m in mean]
    prior = torch.full((points,), 1.01)
    rows = []
    print(f"vanguard-gp aggregators vs fusion.fuse, M = {experts}, N = {points} (float32):")
    for rule, cls in (("poe", agg.POEAggregator), ("gpoe-uniform", agg.GPOEAggregator), ("bcm", agg.BCMAggregator),
                      ("rbcm", agg.RBCMAggregator)):
        start = time.perf_counter()
        v_mean, v_covar = cls(means, covars, prior).aggregate()
        v_s = time.perf_counter() - start
        start = time.perf_counter()
        ours = fusion.fuse(mean, var, np.float32(1.01), rule)
        ours_s = time.perf_counter() - start
        diff = float(np.max(np.abs(ours.var - v_covar.diagonal().numpy()) / ours.var))
        diff_mean = float(np.max(np.abs(ours.mean - v_mean.numpy())))
        rows.append({"rule": rule, "vanguard_s": v_s, "toolbox_s": ours_s, "max_rel_var_diff": diff,
                     "max_abs_mean_diff": diff_mean})
        print(f"  {rule}: vanguard {v_s * 1e3:.1f} ms, toolbox {ours_s * 1e3:.2f} ms, max rel var diff {diff:.1e}, "
              f"max abs mean diff {diff_mean:.1e}")
    return rows


if __name__ == "__main__":
    main()
