"""Particle-steps per second of the fused Langevin kernel (reverse SDE, symmetric mixture score, EM, heat and
endpoint log-densities in the same pass) against a vectorised torch implementation of the same step and the numpy
reference, alternated, median of --repeats rounds. Usage: python bench/bench_diffusion.py [--particles N] [--steps K]
[--dim D] [--threads T] [--repeats R] [--json FILE] (--threads sets both torch's and the C++ kernels' thread count;
on a shared machine use 1)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if "--threads" in sys.argv:  # before the extension reads it
    os.environ["TOOLBOX_NUM_THREADS"] = sys.argv[sys.argv.index("--threads") + 1]

import numpy as np
import torch

from toolbox.core import native
from toolbox.core.io import write_json
from toolbox.diffusion.densities import GaussianMixture
from toolbox.diffusion.sampler import simulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import alternate, load_average  # noqa: E402


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--particles", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--dim", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dens = GaussianMixture.symmetric(1.0, 0.4, args.dim)
    n, k = args.particles, args.steps
    x0 = dens.sample(n, 2.0, 0)
    small = max(1, n // 20)
    # Compute bound (the state stays in registers): the figure of merit is particle-steps/s, not bandwidth.
    fns = {
        "fused C++": lambda: simulate(dens, n, "reverse", "euler", 0.0, 2.0, k, x_start=x0),
        "torch CPU, unfused": lambda: torch_reverse(dens, x0, 0.0, 2.0, k, "cpu"),
        "numpy reference (1/20 of N, x20)": lambda: simulate(dens, small, "reverse", "euler", 0.0, 2.0, k,
                                                             x_start=x0[:small], backend="reference"),
    }
    if torch.cuda.is_available() and native.cuda_kernels_usable():
        sync = torch.cuda.synchronize
        fns[f"fused CUDA ({torch.cuda.get_device_name()})"] = lambda: (
            simulate(dens, n, "reverse", "euler", 0.0, 2.0, k, x_start=x0, device="cuda"), sync())
        fns["torch CUDA, unfused"] = lambda: torch_reverse(dens, x0, 0.0, 2.0, k, "cuda")
    load_before = load_average()
    sec = alternate(fns, args.repeats)
    sec["numpy reference (1/20 of N, x20)"] *= 20
    anchor = sec["torch CPU, unfused"]
    print(f"reverse SDE, d = {args.dim}, N = {n}, steps = {k}, threads: torch {torch.get_num_threads()}, "
          f"C++ {native.build_info().get('threads')}; median of {args.repeats} alternated rounds; "
          f"{load_before} before, {load_average()} after")
    print(f"{'implementation':40s} {'seconds':>9s} {'particle-steps/s':>18s} {'vs torch CPU':>13s}")
    for name, t in sec.items():
        print(f"{name:40s} {t:9.3f} {n * k / t:18.3e} {anchor / t:12.2f}x")
    if args.json:
        write_json(args.json, [{"impl": a, "seconds": b, "particle_steps_per_s": n * k / b, "vs_torch_cpu": anchor / b}
                               for a, b in sec.items()])


if __name__ == "__main__":
    main()
