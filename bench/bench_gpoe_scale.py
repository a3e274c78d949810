"""Scale check for fuse-gp: N training points (default 100,000, kin-like, 8-D) over M experts (default 200 of
500 points, kd-tree cells), independent hyper-parameters (each expert its own L-BFGS) trained shard by shard on the
process backend, every rule fused on T test points; then the same run on the Ray backend (or serial) must give
bit-identical predictions. Prints each backend's wall and CPU time and the experts' L-BFGS iteration counts.

    .venv/bin/python bench/bench_gpoe_scale.py [--n 100000] [--experts 200] [--test 2000] [--backends serial]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from toolbox.core.io import write_json
from toolbox.gpoe import data as gdata
from toolbox.gpoe import experts as ge
from toolbox.gpoe import fusion
from toolbox.gpoe.metrics import evaluate
from toolbox.gpoe.partition import partition
from toolbox.gpoe.pipeline import as_target, fuse_rule, train_and_predict


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (process-backend workers; not Ray's workers)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_backend(backend, xp, yp, mp, xt, args):
    start, cpu = time.perf_counter(), cpu_seconds()
    experts, mean, var, _, fit_s, predict_s = train_and_predict(
        xp, yp, mp, xt, "rbf", "independent", args.iterations, None, backend, args.workers, args.per_task)
    return experts, mean, var, time.perf_counter() - start, cpu_seconds() - cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--experts", type=int, default=200)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--per-task", type=int, default=20)
    ap.add_argument("--backends", nargs="*", default=["process", "ray"])
    ap.add_argument("--save", default="", help="write the last backend's expert predictions to this NPZ")
    ap.add_argument("--compare", default="", help="NPZ from --save: check bit-identity with this run")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    t0 = time.perf_counter()
    d = gdata.kin_like(args.n, args.test, seed=0)
    x_mean, x_sd, y_mean, y_sd = d.x_train.mean(0), d.x_train.std(0), d.y_train.mean(), d.y_train.std()
    xs, ys, xt = (d.x_train - x_mean) / x_sd, (d.y_train - y_mean) / y_sd, (d.x_test - x_mean) / x_sd
    labels = partition(xs, args.experts, "kdtree", 0)
    xp, yp, mp = ge.pad(xs, ys, labels, args.experts)
    prep_s = time.perf_counter() - t0
    print(f"N = {args.n}, M = {args.experts} experts of {mp.sum(1).min()}-{mp.sum(1).max()} points, "
          f"T = {args.test}; data + partition {prep_s:.1f} s")
    results, report = {}, {"n": args.n, "experts": args.experts, "test": args.test, "prep_s": prep_s}
    for backend in args.backends:
        experts, mean, var, wall, cpu = run_backend(backend, xp, yp, mp, xt, args)
        results[backend] = (mean, var)
        pred = as_target(mean, var, experts.outputscale, experts.noise, "y")
        rows = {}
        for rule in fusion.RULES:
            start = time.perf_counter()
            f = fuse_rule(rule, pred, fusion.DEFAULT_EPS)
            rows[rule] = {**evaluate(d.y_test, f.mean * y_sd + y_mean, f.var * y_sd ** 2, d.y_train),
                          "fuse_s": time.perf_counter() - start}
        its = experts.iterations
        report[backend] = {"fit_predict_wall_s": wall, "total_s": prep_s + wall, "cpu_s": cpu, "rules": rows,
                           "converged": int(experts.converged.sum()), "failed": int(experts.failed.sum()),
                           "iterations": [int(its.min()), float(np.median(its)), int(its.max())],
                           "evaluations": int(experts.evaluations.sum())}
        print(f"{backend}: fit + predict {wall:.1f} s wall (total with data {prep_s + wall:.1f} s), "
              f"{cpu:.1f} CPU-s{' (workers not counted)' if backend == 'ray' else ''}, load average "
              f"{__import__('os').getloadavg()[0]:.1f}")
        print(f"  L-BFGS per expert: iterations min / median / max {its.min()} / {np.median(its):g} / {its.max()}, "
              f"{int(experts.evaluations.sum())} evaluations in all, {int(experts.converged.sum())} of "
              f"{experts.n_experts} stopped by their tolerance, {int(experts.failed.sum())} failed")
        for rule, r in rows.items():
            print(f"  {rule:16s} SMSE {r['smse']:.4f} MSLL {r['msll']:+.3f} NLPD {r['nlpd']:+.3f} "
                  f"cov95 {r['coverage95']:.3f} fuse {r['fuse_s'] * 1e3:.1f} ms")
    if args.compare:
        saved = np.load(args.compare)
        results["saved"] = (saved["mean"], saved["var"])
    if args.save:
        np.savez(args.save, mean=results[args.backends[-1]][0], var=results[args.backends[-1]][1])
    if len(results) > 1:
        first, *others = list(results)
        same = all(np.array_equal(results[first][k], results[o][k]) for o in others for k in (0, 1))
        report["identical_predictions"] = same
        print(f"predictions identical across {', '.join(results)}: {same}")
    if args.json:
        write_json(args.json, report)


if __name__ == "__main__":
    main()
