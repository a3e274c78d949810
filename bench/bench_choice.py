"""Benchmarks for `toolbox infer-choice` (numpy; no native kernels).

    .venv/bin/python bench/bench_choice.py [--json out.json] [--repeats 3]

Rows: exact posterior on the gridworld (naive Python loops vs vectorised), exact expected misspecification effects
(one posterior per human choice vs the batched update; numpy reference vs the native C++ kernel over 2000 trials),
sweep throughput (serial vs process backend), and the
continuous-theta sampler (our MH with plain / compressed likelihood vs emcee's ensemble sampler when installed),
each with its total variation to the exact posterior at the same number of likelihood evaluations.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

from toolbox.choice import misspec, sampler
from toolbox.choice.model import ChoiceProblem, Observation, posterior, unit_directions
from toolbox.choice.scenarios import builtin
from toolbox.core import native
from toolbox.core.executor import map_tasks
from toolbox.core.io import write_json
from toolbox.core.rng import numpy_generator


def timed(fn, repeats):
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def naive_posterior(p: ChoiceProblem, observations: list[Observation]) -> np.ndarray:
    """Textbook Bayes rule, one hypothesis and one option at a time."""
    post = []
    for k in range(len(p.thetas)):
        w = p.prior[k]
        for obs in observations:
            members = [c for c in range(p.n_options) if obs.choice_set[c] or c == obs.choice]
            z = sum(math.exp(p.beta * float(p.thetas[k] @ p.features[c])) for c in members)
            w *= math.exp(p.beta * float(p.thetas[k] @ p.features[obs.choice])) / z
        post.append(w)
    post = np.array(post)
    return post / post.sum()


def naive_effect_p_true(p: ChoiceProblem, assumed, true, star) -> float:
    """E_c[b_R(theta* | c)] by one full posterior per possible human choice."""
    util = p.utilities()[star]
    choices = np.flatnonzero(true)
    w = np.exp(util[choices] - util[choices].max())
    w /= w.sum()
    return float(sum(wi * posterior(p, [Observation(int(c), assumed)])[star] for wi, c in zip(w, choices)))


def bench(repeats: int) -> list[dict]:
    rows = []
    scn = builtin("gridworld", 1.0, 16, 3, 0)
    p, obs = scn.problem, scn.observations
    t_naive, b_naive = timed(lambda: naive_posterior(p, obs), 1)
    t_vec, b_vec = timed(lambda: posterior(p, obs), repeats)
    rows.append({"task": f"exact posterior, gridworld ({p.n_options} trajectories x 16 thetas x 3 choices)",
                 "naive_s": t_naive, "toolbox_s": t_vec, "speedup": t_naive / t_vec,
                 "max_abs_diff": float(np.abs(b_naive - b_vec).max())})

    t_naive, e_naive = timed(lambda: naive_effect_p_true(p, scn.assumed, scn.true, scn.true_theta), 1)
    t_vec, eff = timed(lambda: misspec.misspecification_effects(p, scn.assumed, scn.true, scn.true_theta), repeats)
    rows.append({"task": f"exact expected effects, gridworld B3 ({int(scn.true.sum())} human choices)",
                 "naive_s": t_naive, "toolbox_s": t_vec, "speedup": t_naive / t_vec,
                 "max_abs_diff": abs(e_naive - eff.p_true_mis)})

    thetas = unit_directions(3, 32)
    prior = np.ones(32)
    batch = misspec.sample_instances(numpy_generator(1), "C3", 2000, 8, 3, thetas)
    t_ref, ref = timed(lambda: misspec.batched_effects_reference(*batch, thetas, prior, 2.0), 1)
    if native.available():
        t_nat, nat = timed(lambda: native.module().choice_effects(
            batch[0], batch[1].astype(np.uint8), batch[2].astype(np.uint8), batch[3], thetas,
            np.log(prior / prior.sum()), 2.0), repeats)
        rows.append({"task": "batched exact effects, 2000 C3 trials (n=8, d=3, K=32)", "naive_s": t_ref,
                     "naive": "numpy reference, one trial at a time", "toolbox_s": t_nat, "speedup": t_ref / t_nat,
                     "max_abs_diff": float(np.abs(nat - ref).max()), "threads": native.build_info()["threads"]})

    tasks = [misspec.SweepTask(c, 2.0, 1000, 8, 2, 16, 0) for c in misspec.CLASSES]
    t_serial, serial = timed(lambda: map_tasks(misspec.run_sweep_task, tasks, backend="serial"), 1)
    t_proc, proc = timed(lambda: map_tasks(misspec.run_sweep_task, tasks, backend="process", workers=2), 1)
    n = 1000 * len(tasks)
    rows.append({"task": f"per-class sweep end to end, {n} trials (sampling + {misspec.effects_backend()} effects)",
                 "toolbox_s": t_serial, "trials_per_s": n / t_serial, "process2_s": t_proc,
                 "backends_identical": serial == proc})

    plain = sampler.observation_loglik(p.features, p.beta, obs, compress=False)
    fast = sampler.observation_loglik(p.features, p.beta, obs)
    exact = sampler.exact_angle_posterior(plain, 36)
    steps, chains = 2000, 64
    for name, ll in (("MH, plain likelihood", plain), ("MH, compressed likelihood", fast)):
        t, (samples, acc) = timed(lambda: sampler.sample_sphere_posterior(ll, 2, numpy_generator(0, 2), chains,
                                                                          steps, 500), 1)
        rows.append({"task": f"sampler: {name}, {chains}x{steps} steps", "toolbox_s": t, "acceptance": acc,
                     "total_variation": sampler.total_variation(exact, sampler.angle_histogram(samples, 36))})
    try:
        import emcee
    except ImportError:
        rows.append({"task": "sampler: emcee (not installed: pip install emcee)"})
    else:
        def log_prob(x):  # direction posterior x Gaussian radius: the angle marginal is our posterior
            x = np.atleast_2d(x)
            return fast(x / np.linalg.norm(x, axis=1, keepdims=True)) - 0.5 * (x**2).sum(axis=1)

        def run_emcee():
            ens = emcee.EnsembleSampler(chains, 2, log_prob, vectorize=True)
            ens.run_mcmc(numpy_generator(0, 3).standard_normal((chains, 2)), steps, progress=False)
            return ens.get_chain(discard=500, flat=True), float(np.mean(ens.acceptance_fraction))

        t, (samples, acc) = timed(run_emcee, 1)
        rows.append({"task": f"sampler: emcee {emcee.__version__} stretch move, {chains}x{steps} steps",
                     "toolbox_s": t, "acceptance": acc,
                     "total_variation": sampler.total_variation(exact, sampler.angle_histogram(samples, 36))})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the rows to this file")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rows = bench(args.repeats)
    for r in rows:
        print("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()))
    if args.json:
        write_json(args.json, rows)


if __name__ == "__main__":
    main()
