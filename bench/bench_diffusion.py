"""Particle-steps per second of the fused Langevin kernel (reverse SDE, symmetric mixture score, EM, heat and
endpoint log-densities in the same pass) against a vectorised torch implementation of the same step and the numpy
reference. Usage: python bench/bench_diffusion.py [--particles N] [--steps K] [--dim D] [--threads T] [--json FILE]
(--threads sets both torch's and the C++ kernels' thread count; on a shared machine use 1)."""
from __future__ import annotations

import argparse
import os
import sys
import time

if "--threads" in sys.argv:  # before the extension reads it
    os.environ["TOOLBOX_NUM_THREADS"] = sys.argv[sys.argv.index("--threads") + 1]

import numpy as np
import torch

from toolbox.core import native
from toolbox.core.io import write_json
from toolbox.diffusion.densities import GaussianMixture
from toolbox.diffusion.sampler import simulate


def torch_reverse(dens: GaussianMixture, x0: np.ndarray, t_lo: float, t_hi: float, steps: int, device: str):
    """Unfused torch: the same EM step, score and trapezoid heat as separate tensor ops (torch.randn noise)."""
    means = torch.as_tensor(dens.means, device=device)
    logw = torch.as_tensor(np.log(dens.weights), device=device)
    var = torch.as_tensor(dens.variances, device=device)
    x = torch.as_tensor(x0, device=device)
    h = (t_hi - t_lo) / steps
    d = x.shape[1]

    def drift(x, t):
        e = float(np.exp(-t))
        v = 1 - e * e + var * e * e
        m = e * means
        dist2 = (x * x).sum(1, keepdim=True) - 2 * x @ m.T + (m * m).sum(1)
        logits = logw - 0.5 * dist2 / v - 0.5 * d * torch.log(v)
        r = torch.softmax(logits, 1) / v
        return x + 2 * (r @ m - r.sum(1, keepdim=True) * x)

    t = t_hi
    f = drift(x, t)
    heat = torch.zeros(len(x), dtype=x.dtype, device=device)
    for _ in range(steps):
        dx = f * h + np.sqrt(2 * h) * torch.randn_like(x)
        x = x + dx
        t -= h
        f_new = drift(x, t)
        heat += 0.5 * ((f + f_new) * dx).sum(1)
        f = f_new
    if device == "cuda":
        torch.cuda.synchronize()
    return x, heat


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--particles", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--dim", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dens = GaussianMixture.symmetric(1.0, 0.4, args.dim)
    n, k = args.particles, args.steps
    x0 = dens.sample(n, 2.0, 0)
    rows = []
    work = n * k
    rows.append(("fused C++ (threads)", timed(lambda: simulate(dens, n, "reverse", "euler", 0.0, 2.0, k, x_start=x0))))
    rows.append(("torch CPU, unfused", timed(lambda: torch_reverse(dens, x0, 0.0, 2.0, k, "cpu"))))
    small = max(1, n // 20)
    rows.append(("numpy reference (1/20 of N)", 20 * timed(lambda: simulate(
        dens, small, "reverse", "euler", 0.0, 2.0, k, x_start=x0[:small], backend="reference"))))
    if torch.cuda.is_available() and native.cuda_kernels_usable():
        simulate(dens, 1000, "reverse", "euler", 0.0, 2.0, 10, device="cuda")  # warm-up
        torch_reverse(dens, x0[:1000], 0.0, 2.0, 10, "cuda")
        rows.append((f"fused CUDA ({torch.cuda.get_device_name()})", timed(
            lambda: simulate(dens, n, "reverse", "euler", 0.0, 2.0, k, x_start=x0, device="cuda"))))
        rows.append(("torch CUDA, unfused", timed(lambda: torch_reverse(dens, x0, 0.0, 2.0, k, "cuda"))))
    print(f"reverse SDE, d = {args.dim}, N = {n}, steps = {k}, threads: torch {torch.get_num_threads()}, "
          f"C++ {native.build_info().get('threads')}")
    print(f"{'implementation':40s} {'seconds':>9s} {'particle-steps/s':>18s}")
    for name, sec in rows:
        print(f"{name:40s} {sec:9.3f} {work / sec:18.3e}")
    if args.json:
        write_json(args.json, [{"impl": a, "seconds": b, "particle_steps_per_s": work / b} for a, b in rows])


if __name__ == "__main__":
    main()
