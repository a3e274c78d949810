"""The fuse-gp pipeline: partition the data, train batched GP experts (sharded on the executor), fuse their
predictions with every rule, compare against a full exact GP, and write tables, plots and saved experts."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import numpy as np

from toolbox.core.config import Backend, Count, NonNegFloat, PosFloat, PosInt
from toolbox.core.errors import UserInputError
from toolbox.core.executor import map_tasks
from toolbox.core.guards import check_memory
from toolbox.core.io import write_csv
from toolbox.gpoe import data as gdata, experts as gexperts, fusion
from toolbox.gpoe.data import DATASETS
from toolbox.gpoe.experts import HYPER_MODES, KERNELS
from toolbox.gpoe.metrics import evaluate, noise_floor
from toolbox.gpoe.partition import PARTITIONS, check_labels, partition

PREDICT_TARGETS = ("y", "f")


@dataclass
class FuseGpConfig:
    dataset: Literal[DATASETS] = "gp-prior"
    data: str = ""  # CSV / NPZ path for dataset = "file"
    target: str = ""  # target column (default: the last)
    n_train: PosInt = 4000
    n_test: PosInt = 1000
    dims: PosInt = 4  # gp-prior input dimension
    noise_var: PosFloat = 0.01  # gp-prior observation noise
    lengthscale: PosFloat = 1.0  # gp-prior: the SE kernel's lengthscale (inputs uniform on [-2, 2]^dims)
    signal_var: PosFloat = 1.0  # gp-prior: the SE kernel's signal variance
    noise_fraction: PosFloat = 0.01  # kin-like, sarcos-like: observation noise variance as a fraction of Var(f)
    friedman1_noise_sd: PosFloat = 1.0  # friedman1: the noise standard deviation (make_friedman1's noise)
    experts: PosInt = 16
    partitions: list[Literal[(*PARTITIONS, "user")]] = field(default_factory=lambda: ["random", "kmeans", "kdtree"])
    labels: str = ""  # .npy / .csv of one integer expert label per training point (partition "user")
    rules: list[Literal[fusion.ALL_RULES]] = field(default_factory=lambda: list(fusion.ALL_RULES))
    hyper: Literal[("auto", *HYPER_MODES)] = "auto"  # auto: fixed (true values) when the data set knows them, else shared
    kernel: Literal[KERNELS] = "rbf"
    iterations: PosInt = 50  # L-BFGS iterations at most, per expert (its own optimiser; shared: the joint fit's)
    tolerance_grad: PosFloat = gexperts.TOLERANCE_GRAD  # stop when max |gradient of the NLML per point| <= this
    tolerance_change: PosFloat = gexperts.TOLERANCE_CHANGE  # ... or when the NLML per point or step changes less
    predict: Literal[PREDICT_TARGETS] = "y"  # entropy weights on the noisy-y predictive (prior k + s_n^2) or on the latent f
    eps: NonNegFloat = fusion.DEFAULT_EPS  # prior fallback where the sum of weights is below this
    full_gp_max: Count = 4000  # full exact GP reference on at most this many training points (0: none)
    backend: Backend = "serial"  # serial | process | ray
    workers: Count = 0
    experts_per_task: PosInt = 16
    plots: bool = True


def fit_predict_shard(task: dict) -> dict:
    """One shard of experts: train (unless hyper-parameters are given) and predict at the query points."""
    start = time.perf_counter()
    trace: list[dict] = []
    fitted = gexperts.fit(task["x"], task["y"], task["mask"], task["kernel"], task["hyper"], task["iterations"],
                          task["init"], trace=trace, **task["tolerances"])
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    mean, var, prior = gexperts.predict(fitted, task["query"])
    return {"experts": fitted, "mean": mean, "var": var, "prior": prior, "fit_s": fit_s,
            "predict_s": time.perf_counter() - start, "trace": trace}


def train_and_predict(x, y, mask, query, kernel, hyper, iterations, init, backend="serial", workers=0,
                      experts_per_task=16, log=None, traces: list | None = None, tolerances: dict | None = None):
    """Shared hyper-parameters are fitted jointly on all experts first; then shards of experts train (independent:
    each expert by its own optimiser, so the shard size does not matter) or just factorise (shared / fixed) and
    predict, on any executor backend, with identical results. `traces`, when given, receives the training rows of
    `experts.fit` (expert numbered over all experts; "all" for the joint shared fit). `tolerances`: tolerance_grad
    and tolerance_change of the experts' L-BFGS."""
    shared_s, tolerances, stats = 0.0, tolerances or {}, {}
    if hyper == "shared":
        start = time.perf_counter()
        shared = gexperts.fit(x, y, mask, kernel, "shared", iterations, init, log=log, trace=traces, **tolerances)
        shared_s = time.perf_counter() - start
        init = {"lengthscale": shared.lengthscale[0], "outputscale": shared.outputscale[0],
                "noise": shared.noise[0]}
        stats = {k: getattr(shared, k) for k in ("converged", "iterations", "evaluations", "failed")}
        hyper = "fixed"
    shards = [slice(s, s + experts_per_task) for s in range(0, x.shape[0], max(1, experts_per_task))]
    tasks = [{"x": x[s], "y": y[s], "mask": mask[s], "query": query, "kernel": kernel, "hyper": hyper,
              "iterations": iterations, "init": init, "tolerances": tolerances} for s in shards]
    parts = map_tasks(fit_predict_shard, tasks, backend=backend, workers=workers or None)
    if traces is not None:
        traces += [{**row, "expert": s.start + row["expert"]} for s, p in zip(shards, parts) for row in p["trace"]]
    joined = {k: np.concatenate([getattr(p["experts"], k) for p in parts]) for k in
              ("lengthscale", "outputscale", "noise", "jitter", "nlml", "converged", "iterations", "evaluations",
               "failed")}
    experts = gexperts.ExpertSet(x, y * mask, mask, kernel, **{**joined, **stats})
    bad = int(joined["failed"].sum())
    if bad and log:
        log(f"gpoe: {bad} expert(s) failed to train and kept their initial hyper-parameters")
    return (experts, np.concatenate([p["mean"] for p in parts]), np.concatenate([p["var"] for p in parts]),
            np.concatenate([p["prior"] for p in parts]), shared_s + sum(p["fit_s"] for p in parts),
            sum(p["predict_s"] for p in parts))


@dataclass
class Predictions:
    """Expert predictions at the query points, in standardised units, ready to fuse."""
    mean: np.ndarray  # [M, Q]
    var: np.ndarray  # [M, Q]: of y (latent + noise) or of f
    weight_prior: np.ndarray  # [M, 1]: each expert's prior variance at x
    prior_var: float  # the fused prior
    noise: float  # added after fusion when fusing f


def as_target(mean, var_f, outputscale, noise, target: str) -> Predictions:
    if target == "y":
        prior = (outputscale + noise)[:, None]
        return Predictions(mean, var_f + noise[:, None], prior, float(prior.mean()), 0.0)
    return Predictions(mean, var_f, outputscale[:, None], float(outputscale.mean()), float(noise.mean()))


def fuse_rule(rule: str, p: Predictions, eps: float, comm: Predictions | None = None,
              device: str = "cpu") -> fusion.Fused:
    """One rule on expert predictions (the CUDA kernel when device is cuda); GRBCM takes the communication
    expert's predictions separately."""
    if rule == "grbcm":
        fused = fusion.fuse_grbcm(comm.mean[0], comm.var[0], p.mean, p.var, eps)
    elif device == "cuda":
        import torch

        mean, var = (torch.as_tensor(a, device="cuda") for a in (p.mean, p.var))
        fused = fusion.fuse(mean, var, np.array([p.prior_var]), rule, weight_prior=p.weight_prior, eps=eps).numpy()
    else:
        fused = fusion.fuse(p.mean, p.var, np.array([p.prior_var]), rule, weight_prior=p.weight_prior, eps=eps)
    fused.var = fused.var + p.noise
    return fused


def _standardiser(d: gdata.Dataset, fixed: bool):
    if fixed:
        return np.zeros(d.x_train.shape[1]), np.ones(d.x_train.shape[1]), 0.0, 1.0
    x_scale = d.x_train.std(0)
    return d.x_train.mean(0), np.where(x_scale > 0, x_scale, 1.0), float(d.y_train.mean()), float(d.y_train.std())


def _grbcm_layout(labels: np.ndarray, n_experts: int, seed: int):
    """Communication set D_c (a random 1/M of the data) and enlarged experts D_c + D_i, i = 1..M-1."""
    rng = np.random.default_rng(seed + 1)
    n = len(labels)
    comm = np.sort(rng.choice(n, size=max(1, n // n_experts), replace=False))
    rest = np.setdiff1d(np.arange(n), comm)
    return comm, rest


def check_cost(cfg: FuseGpConfig) -> None:
    """Refuse a run whose float64 Gram matrices (full GP reference, every expert's shard) and predictions cannot
    fit in memory; the settings' types, ranges and choices are checked by their schema."""
    full = min(cfg.full_gp_max, cfg.n_train)
    shard = -(-cfg.n_train // cfg.experts)
    gram = 3 * 8.0 * max(full ** 2, min(cfg.experts, cfg.experts_per_task) * shard ** 2)
    check_memory(gram + 8.0 * cfg.experts * cfg.n_test * 4 + 8.0 * (cfg.n_train + cfg.n_test) * cfg.dims * 2,
                 f"fuse-gp with n_train={cfg.n_train}, {cfg.experts} experts and n_test={cfg.n_test}",
                 "use more experts, a smaller full_gp_max or fewer points")


def run(cfg: FuseGpConfig, out: Path, seed: int = 0, log: Callable[[str], None] = print,
        progress: Callable[..., None] | None = None, device: str = "cpu") -> dict:
    """The whole comparison; experts run on the CPU, the fusion on `device` (cpu or cuda)."""
    check_cost(cfg)
    d = gdata.load(cfg.dataset, cfg.n_train, cfg.n_test, seed, cfg.dims, cfg.noise_var, cfg.data, cfg.target,
                   lengthscale=cfg.lengthscale, signal_var=cfg.signal_var, noise_fraction=cfg.noise_fraction,
                   friedman1_noise_sd=cfg.friedman1_noise_sd)
    hyper = cfg.hyper if cfg.hyper != "auto" else ("fixed" if d.true_hyper else "shared")
    if hyper == "fixed" and not d.true_hyper:
        raise UserInputError(f"hyper = fixed needs known hyper-parameters; data set {d.name} has none")
    if hyper == "fixed" and cfg.kernel != d.true_hyper["kernel"]:
        raise UserInputError(f"hyper = fixed: the true kernel of {d.name} is {d.true_hyper['kernel']}")
    x_shift, x_scale, y_shift, y_scale = _standardiser(d, hyper == "fixed")
    xs, ys = (d.x_train - x_shift) / x_scale, (d.y_train - y_shift) / y_scale
    xt = (d.x_test - x_shift) / x_scale
    slice_x = _slice_points(xs)
    query = np.concatenate([xt, slice_x])
    n_test = len(xt)
    init = ({k: d.true_hyper[k] for k in ("lengthscale", "outputscale", "noise")} if hyper == "fixed" else
            {"lengthscale": 1.0, "outputscale": 1.0, "noise": 0.1})
    tolerances = {"tolerance_grad": cfg.tolerance_grad, "tolerance_change": cfg.tolerance_change}
    unstd = lambda m, v: (m * y_scale + y_shift, v * y_scale ** 2)  # noqa: E731
    log(f"fuse-gp: {d.name}, {len(ys)} training / {n_test} test points, d = {xs.shape[1]}, "
        f"{cfg.experts} experts, hyper-parameters {hyper}, kernel {cfg.kernel}")
    rows, curves, tests, maps = [], {}, {}, {}
    saved, training, expert_rows, optimisation = {}, [], [], {}
    reference = None
    steps = len(cfg.partitions) + (cfg.full_gp_max > 0)
    done = 0
    if cfg.full_gp_max > 0:
        sub = np.random.default_rng(seed + 2).permutation(len(ys))[:cfg.full_gp_max]
        xp, yp, mp = gexperts.pad(xs[sub], ys[sub], np.zeros(len(sub), dtype=int), 1)
        start = time.perf_counter()
        full, mean, var, _, fit_s, predict_s = train_and_predict(
            xp, yp, mp, query, cfg.kernel, "independent" if hyper != "fixed" else "fixed", cfg.iterations, init,
            log=log, tolerances=tolerances)
        expert_rows += _expert_rows("full-gp", full)
        optimisation["full-gp"] = _optimisation(full)
        pred = as_target(mean, var, full.outputscale, full.noise, "y")
        m_, v_ = unstd(pred.mean[0], pred.var[0])
        reference = {"mean": m_, "var": v_}
        row = {"partition": "full-gp", "rule": "exact GP", "n_points": len(sub), **evaluate(
            d.y_test, m_[:n_test], v_[:n_test], d.y_train), "fit_s": fit_s, "predict_s": predict_s,
            "fuse_s": 0.0, "fallback_frac": 0.0, "effective_experts": 1.0}
        rows.append(row)
        log(f"  full GP on {len(sub)} points: SMSE {row['smse']:.4f}, MSLL {row['msll']:.3f} "
            f"({time.perf_counter() - start:.1f} s)")
        done += 1
        if progress:
            progress(done, steps)
    for part in cfg.partitions:
        if part == "user":
            if not cfg.labels:
                raise UserInputError("partition 'user' needs labels = PATH (one integer label per training point)")
            labels, n_experts = check_labels(_read_labels(cfg.labels), len(ys))
        else:
            labels, n_experts = partition(xs, cfg.experts, part, seed), cfg.experts
        xp, yp, mp = gexperts.pad(xs, ys, labels, n_experts)
        sizes = mp.sum(1)
        if sizes.max() > 3 * sizes.mean():
            log(f"  {part}: unequal experts (largest {sizes.max()}, mean {sizes.mean():.0f}); padding to the largest")
        traces: list[dict] = []
        experts, mean, var, prior, fit_s, predict_s = train_and_predict(
            xp, yp, mp, query, cfg.kernel, hyper, cfg.iterations, init, cfg.backend, cfg.workers,
            cfg.experts_per_task, log, traces, tolerances)
        training += [{"partition": part, **row} for row in traces]
        expert_rows += _expert_rows(part, experts)
        optimisation[part] = _optimisation(experts)
        path = out / f"experts_{part}.npz"
        experts.save(path, labels=labels, x_shift=x_shift, x_scale=x_scale, y_shift=np.array(y_shift),
                     y_scale=np.array(y_scale), predict=np.array(cfg.predict))
        saved[part] = str(path)
        pred = as_target(mean, var, experts.outputscale, experts.noise, cfg.predict)
        comm = None
        grbcm_fit = grbcm_predict = 0.0
        if "grbcm" in cfg.rules and n_experts >= 2:
            comm, pred_plus, grbcm_fit, grbcm_predict = _grbcm_experts(xs, ys, labels, n_experts, part, query, cfg,
                                                                       hyper, init, seed, log, tolerances)
        part_curves, part_tests = {}, {}
        for rule in cfg.rules:
            if rule == "grbcm" and comm is None:
                continue
            start = time.perf_counter()
            fused = fuse_rule(rule, pred_plus if rule == "grbcm" else pred, cfg.eps, comm, device)
            fuse_s = time.perf_counter() - start
            m_, v_ = unstd(fused.mean, fused.var)
            rows.append({"partition": part, "rule": rule, **evaluate(d.y_test, m_[:n_test], v_[:n_test], d.y_train),
                         "fit_s": grbcm_fit if rule == "grbcm" else fit_s,
                         "predict_s": grbcm_predict if rule == "grbcm" else predict_s, "fuse_s": fuse_s,
                         "fallback_frac": float(np.mean(fused.fallback[:n_test])),
                         "effective_experts": float(np.mean(fused.effective_experts[:n_test]))})
            part_curves[rule] = (m_[n_test:], v_[n_test:])
            part_tests[rule] = (m_[:n_test], v_[:n_test])
        beta = fusion.expert_weights(pred.var, pred.weight_prior, "entropy")
        maps[part] = {"sum_beta": beta[:, :n_test].sum(0), "dominant": beta[:, :n_test].argmax(0),
                      "slice_beta": beta[:, n_test:]}
        curves[part], tests[part] = part_curves, part_tests
        its = optimisation[part]
        log(f"  {part}: {n_experts} experts (sizes {sizes.min()}-{sizes.max()}), fit {fit_s:.1f} s "
            f"({its['iterations_min']}-{its['iterations_max']} L-BFGS iterations, {its['converged']} converged), "
            f"predict {predict_s:.1f} s")
        done += 1
        if progress:
            progress(done, steps)
    write_csv(out / "training.csv", training, ["partition", "expert", "evaluation", "iteration", "nlml_per_point"])
    write_csv(out / "experts.csv", expert_rows, list(expert_rows[0]) if expert_rows else ["partition", "expert"])
    return _report(cfg, d, hyper, rows, curves, tests, maps, reference, saved, slice_x[:, 0] * x_scale[0] + x_shift[0],
                   out, seed, optimisation)


def _expert_rows(part: str, experts: gexperts.ExpertSet) -> list[dict]:
    """One row per expert: its size, optimisation (iterations, evaluations, converged, failed) and fitted values."""
    return [{"partition": part, "expert": i, "points": int(experts.sizes[i]),
             "iterations": int(experts.iterations[i]), "evaluations": int(experts.evaluations[i]),
             "converged": bool(experts.converged[i]), "failed": bool(experts.failed[i]),
             "nlml_per_point": float(experts.nlml[i]),
             "outputscale": float(experts.outputscale[i]), "noise": float(experts.noise[i]),
             "jitter": float(experts.jitter[i]),
             **{f"lengthscale_{j}": float(v) for j, v in enumerate(experts.lengthscale[i])}}
            for i in range(experts.n_experts)]


def _optimisation(experts: gexperts.ExpertSet) -> dict:
    """A partition's optimisation in summary.json: iteration counts and how many experts converged or failed."""
    its = experts.iterations
    return {"iterations_min": int(its.min()), "iterations_median": float(np.median(its)),
            "iterations_max": int(its.max()), "evaluations_total": int(experts.evaluations.sum()),
            "converged": int(experts.converged.sum()), "failed": int(experts.failed.sum()),
            "experts": experts.n_experts}


def _grbcm_experts(xs, ys, labels, n_experts, part, query, cfg, hyper, init, seed, log, tolerances):
    comm_idx, rest = _grbcm_layout(labels, n_experts, seed)
    if part == "user":
        sub_labels, local = check_labels(labels[rest], len(rest))
    else:
        sub_labels, local = partition(xs[rest], n_experts - 1, part, seed), n_experts - 1
    groups = [comm_idx] + [np.concatenate([comm_idx, rest[sub_labels == i]]) for i in range(local)]
    index = np.concatenate(groups)
    owner = np.concatenate([np.full(len(g), i) for i, g in enumerate(groups)])
    xp, yp, mp = gexperts.pad(xs[index], ys[index], owner, local + 1)
    experts, mean, var, prior, fit_s, predict_s = train_and_predict(
        xp, yp, mp, query, cfg.kernel, hyper, cfg.iterations, init, cfg.backend, cfg.workers, cfg.experts_per_task,
        log, tolerances=tolerances)
    pred = as_target(mean, var, experts.outputscale, experts.noise, cfg.predict)
    comm = Predictions(pred.mean[:1], pred.var[:1], pred.weight_prior[:1], pred.prior_var, pred.noise)
    plus = Predictions(pred.mean[1:], pred.var[1:], pred.weight_prior[1:], pred.prior_var, pred.noise)
    return comm, plus, fit_s, predict_s


def _slice_points(xs: np.ndarray, count: int = 200) -> np.ndarray:
    """A line along the first input through the training median (the 1-D view of the predictive bands)."""
    line = np.tile(np.median(xs, 0), (count, 1))
    lo, hi = xs[:, 0].min(), xs[:, 0].max()
    pad = 0.25 * (hi - lo)
    line[:, 0] = np.linspace(lo - pad, hi + pad, count)
    return line


def _read_labels(path: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise UserInputError(f"labels file not found: {p}")
    return np.load(p) if p.suffix == ".npy" else np.loadtxt(p, delimiter=",", ndmin=1)


def _report(cfg, d, hyper, rows, curves, tests, maps, reference, saved, slice_t, out, seed, optimisation) -> dict:
    from toolbox.core.io import write_json

    write_csv(out / "comparison.csv", rows)
    floor = noise_floor(d.noise_var) if d.noise_var else None
    best = min((r for r in rows if r["partition"] != "full-gp"), key=lambda r: r["nlpd"], default=None)
    summary = {"dataset": d.name, "n_train": len(d.y_train), "n_test": len(d.y_test), "dims": d.x_train.shape[1],
               "experts": cfg.experts, "hyper": hyper, "kernel": cfg.kernel, "predict": cfg.predict, "seed": seed,
               "noise_var": d.noise_var, "true_hyper": d.true_hyper, "nlpd_floor": floor, "rows": rows, "saved_experts": saved,
               "optimisation": optimisation,
               "best": best and {"partition": best["partition"], "rule": best["rule"], "nlpd": best["nlpd"],
                                 "smse": best["smse"]}}
    if cfg.plots:
        from toolbox.gpoe import plots

        summary["plots"] = plots.write_all(out, d, curves, tests, maps, reference, slice_t)
    write_json(out / "summary.json", summary)
    return summary


def predict_saved(path: str | Path, x_new: np.ndarray, rules: list[str], eps: float = fusion.DEFAULT_EPS) -> dict:
    """Fused predictions {rule: (mean, var)} at x_new (original units) from experts saved by a run, no refitting."""
    experts, extra = gexperts.ExpertSet.load(path)
    if "x_shift" not in extra:
        raise UserInputError(f"{path}: saved without its standardisation; save experts through fuse-gp")
    x_new = np.atleast_2d(np.asarray(x_new, dtype=float))
    if x_new.shape[1] != experts.x.shape[2]:
        raise UserInputError(f"inputs have {x_new.shape[1]} columns, the experts were trained on "
                             f"{experts.x.shape[2]}")
    if not np.all(np.isfinite(x_new)):
        raise UserInputError("inputs contain NaN or inf")
    mean, var, _ = gexperts.predict(experts, (x_new - extra["x_shift"]) / extra["x_scale"])
    pred = as_target(mean, var, experts.outputscale, experts.noise, str(extra.get("predict", "y")))
    out = {}
    for rule in rules:
        if rule == "grbcm":
            raise UserInputError("grbcm needs its own communication experts; pick another rule for saved experts")
        fused = fuse_rule(rule, pred, eps)
        out[rule] = (fused.mean * float(extra["y_scale"]) + float(extra["y_shift"]),
                     fused.var * float(extra["y_scale"]) ** 2)
    return out


def fuse_arrays(path: str | Path, rules: list[str], eps: float = fusion.DEFAULT_EPS, device: str = "cpu") -> dict:
    """Fuse any Gaussian experts from an NPZ with mean [M, N], var [M, N], prior_var (scalar or [N]) and optional
    prior_mean, weight_prior ([N] or [M, N]); returns {rule: Fused} (numpy). device cuda runs the CUDA kernel."""
    try:
        arrays = dict(np.load(path, allow_pickle=False))
    except (OSError, ValueError) as exc:
        raise UserInputError(f"{path}: not an NPZ file ({exc})") from exc
    missing = {"mean", "var", "prior_var"} - set(arrays)
    if missing:
        raise UserInputError(f"{path}: missing array(s) {', '.join(sorted(missing))} (need mean, var, prior_var)")
    mean, var = arrays["mean"], arrays["var"]
    if mean.ndim != 2 or mean.shape != var.shape:
        raise UserInputError(f"{path}: mean and var must both be [M, N], got {mean.shape} and {var.shape}")
    for name in ("mean", "var", "prior_var"):
        if not np.all(np.isfinite(arrays[name])):
            raise UserInputError(f"{path}: {name} contains NaN or inf")
    if np.any(var <= 0) or np.any(arrays["prior_var"] <= 0):
        raise UserInputError(f"{path}: variances must be positive")
    dtype = np.float32 if mean.dtype == np.float32 and var.dtype == np.float32 else np.float64
    prior_var = np.atleast_1d(arrays["prior_var"]).astype(dtype)
    if prior_var.shape not in ((1,), (mean.shape[1],)):
        raise UserInputError(f"{path}: prior_var must be a scalar or [N = {mean.shape[1]}]")
    mean, var = mean.astype(dtype), var.astype(dtype)
    if device == "cuda":
        import torch

        mean, var = torch.from_numpy(mean).cuda(), torch.from_numpy(var).cuda()
    out = {}
    for rule in rules:
        if rule == "grbcm":
            raise UserInputError("grbcm needs a communication expert; it is not available for raw arrays")
        fused = fusion.fuse(mean, var, prior_var, rule, prior_mean=arrays.get("prior_mean"),
                            weight_prior=arrays.get("weight_prior"), eps=eps)
        out[rule] = fused.numpy()
    return out
