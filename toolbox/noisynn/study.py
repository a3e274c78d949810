"""`toolbox train-noisy`: baseline and noise conditions over paired seeds, with paired statistics and task entropy.

Plans:
  full   the note's digits study (Sec. 8): train-time Gaussian, impulse, circulant and optimal Q at the chosen layer;
         eval-time Gaussian / impulse on the baseline models (harmfulness); eval-time optimal Q and circulant on the
         penultimate features under class-sorted batches of 10 (the official protocol), shuffled batches and B = 1.
  sweep  one noise over strengths x layers (`apply` train, eval or both) -> a heatmap of accuracy vs (layer, strength).
  paper  the official protocol alone: no noise in training, optimal Q at test time on class-sorted batches of 10,
         with its shuffled and B = 1 controls (prints the leakage warning).
  entropy  no training: the closed-form dS of optimal and circulant Q for each k in `ks` and alpha in `strengths`,
         and the scalar linear-Gaussian experiment (`run_entropy`).
A seed's baseline model is trained once and evaluated under every eval-time condition; train-time conditions train
their own model from the same initial weights and batch order. Seeds run through `toolbox.core.executor.map_tasks`.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import numpy as np

from toolbox.core.config import Backend, Count, NonNegFloat, PosFloat, PosInt, Real, Seed
from toolbox.core.errors import UserInputError
from toolbox.noisynn.models import HEAD, MODELS, block_index
from toolbox.noisynn.noise import APPLY, AXES, KINDS, NoiseSpec
from toolbox.noisynn.train import ORDERS

PLANS = ("full", "sweep", "paper", "entropy")


@dataclass
class StudyConfig:
    dataset: str = "digits"
    model: Literal[MODELS] = "cnn"
    depth: Count = 0  # 0: model default (cnn 2 residual blocks, vit 4 blocks)
    seeds: PosInt = 10
    first_seed: Seed = 0  # seeds are first_seed, first_seed + 1, ...
    epochs: PosInt = 30
    batch_size: PosInt = 64
    lr: PosFloat = 1e-3
    weight_decay: NonNegFloat = 0.01
    plan: Literal[PLANS] = "full"
    stages: Literal["all", "train", "eval"] = "all"  # all | train (train-time conditions only) | eval (eval-time only)
    noise: Literal[KINDS] = "linear"  # sweep: which noise
    strengths: list[Real] = field(default_factory=lambda: [0.1, 0.3])
    ks: list[PosInt] = field(default_factory=lambda: [10, 14, 16])  # entropy plan: numbers of mixed samples
    layers: list[int | Literal["head"]] = field(default_factory=lambda: [-1])  # block indices (negative from the end) or "head"
    apply: Literal[APPLY] = "train"  # sweep: train | eval | both
    axis: Literal[AXES] = "batch"
    detach_partner: Literal["official", "detach", "full"] = "official"  # official (linear detached, optimal not) | detach | full
    gauss_mean: Real = 0.0
    gauss_std: NonNegFloat = 1.0
    relative_gauss: bool = True  # Gaussian strength in units of the clean feature std at the site
    impulse_extrema: Literal["batch", "sample"] = "batch"
    eval_batch_size: PosInt = 64
    eval_order: Literal[ORDERS] = "shuffled"  # shuffled (leak-free) | sorted (official) | as-is
    entropy_dims: PosInt = 32
    backend: Backend = "process"
    workers: Count = 2
    threads: Count = 1
    checkpoints: Literal["none", "first-seed", "all"] = "first-seed"


@dataclass(frozen=True)
class Condition:
    name: str
    spec: NoiseSpec
    layer: int | str  # block index or "head"
    stage: str  # "train": trains its own model; "eval": evaluates the baseline model
    eval_order: str
    eval_batch_size: int

    @property
    def leak_protocol(self) -> bool:
        return self.stage == "eval" and self.spec.cross_sample and self.eval_order == "sorted" \
            and self.eval_batch_size > 1


def noise_spec(cfg: StudyConfig, kind: str, strength: float, apply: str) -> NoiseSpec:
    detach = {"official": None, "detach": True, "full": False}.get(cfg.detach_partner, "bad")
    if detach == "bad":
        raise UserInputError(f"detach_partner must be official, detach or full, got {cfg.detach_partner!r}")
    return NoiseSpec(kind, float(strength), cfg.axis, apply, cfg.gauss_mean, cfg.gauss_std, cfg.relative_gauss,
                     detach, cfg.impulse_extrema)


def build_plan(cfg: StudyConfig) -> list[Condition]:
    """The conditions of a study (the baseline is implicit)."""
    if cfg.plan not in PLANS:
        raise UserInputError(f"plan must be one of {', '.join(PLANS)}, got {cfg.plan!r}")
    if not cfg.layers or not cfg.strengths:
        raise UserInputError("layers and strengths must not be empty")
    layer, order, batch = cfg.layers[0], cfg.eval_order, cfg.eval_batch_size
    conditions: list[Condition] = []

    def add(kind, strength, apply, at, order_=order, batch_=batch, suffix=""):
        spec = noise_spec(cfg, kind, strength, apply)
        stage = "eval" if apply == "eval" else "train"
        where = "head" if at == HEAD else f"L{at}"
        name = f"{apply}:{spec.label()}@{where}{suffix}"
        conditions.append(Condition(name, spec, at, stage, order_, batch_))

    def leak_trio(kind, strength):  # the official protocol and its two controls
        add(kind, strength, "eval", HEAD, "sorted", 10, " sorted/10")
        add(kind, strength, "eval", HEAD, "shuffled", 10, " shuffled/10")
        add(kind, strength, "eval", HEAD, "shuffled", 1, " B=1")

    if cfg.plan == "full":
        for kind, values in (("gaussian", (0.1, 0.5)), ("impulse", (0.05, 0.2)), ("linear", (0.1, 0.3)),
                             ("optimal", (0.0,))):
            for s in values:
                add(kind, s, "train", layer)
        for s in (0.5, 1.0, 2.0):
            add("gaussian", s, "eval", layer)
        for s in (0.05, 0.2):
            add("impulse", s, "eval", layer)
        leak_trio("optimal", 0.0)
        leak_trio("linear", 0.3)
    elif cfg.plan == "paper":
        leak_trio("optimal", 0.0)
    elif cfg.plan == "sweep":
        for at in cfg.layers:
            for s in (cfg.strengths if cfg.noise != "optimal" else [0.0]):
                add(cfg.noise, s, cfg.apply, at)
    if cfg.stages not in ("all", "train", "eval"):
        raise UserInputError(f"stages must be all, train or eval, got {cfg.stages!r}")
    return [c for c in conditions if cfg.stages in ("all", c.stage)]


# ---- one task: a seed's baseline (+ every eval-time condition) or one train-time condition -----------------------

@dataclass(frozen=True)
class Task:
    cfg: StudyConfig
    seed: int
    conditions: tuple[Condition, ...]  # eval-time conditions (baseline task) or the one train-time condition
    baseline: bool
    checkpoint_dir: str | None


def run_task(task: Task) -> list[dict]:
    """Train one model for one seed and evaluate it; returns one record per condition (the baseline's first)."""
    import torch

    from toolbox.noisynn.data import load_dataset

    cfg = task.cfg
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, cfg.threads))  # one thread per worker: oversubscribed torch threads crawl
    try:
        return _run_task(task, load_dataset(cfg.dataset, task.seed))
    finally:
        torch.set_num_threads(threads)


def _run_task(task: Task, data) -> list[dict]:
    cfg = task.cfg
    if task.baseline:
        trained = _train(cfg, data, NoiseSpec(), -1, task.seed)
        records = [_record("baseline", "baseline", trained, data, cfg, task.seed, cfg.eval_order, cfg.eval_batch_size)]
        for cond in task.conditions:
            records.append(_eval_condition(cond, trained, data, cfg, task.seed))
        _save(task, "baseline", trained, data, cfg)
        return records
    (cond,) = task.conditions
    trained = _train(cfg, data, cond.spec, cond.layer, task.seed)
    _save(task, cond.name, trained, data, cfg)
    return [_record(cond.name, "train", trained, data, cfg, task.seed, cond.eval_order, cond.eval_batch_size,
                    noise_at_eval=cond.spec.apply == "both")]


def _train(cfg: StudyConfig, data, spec: NoiseSpec, layer, seed: int) -> dict:
    from toolbox.noisynn.train import TrainSettings, build_noisy_model, train

    start = time.perf_counter()
    noisy = build_noisy_model(cfg.model, data.input_shape, data.classes, spec,
                              block_index(cfg.model, cfg.depth, layer), seed,
                              cfg.depth)
    history = train(noisy, data.x_train, data.y_train,
                    TrainSettings(cfg.epochs, cfg.batch_size, cfg.lr, cfg.weight_decay, cfg.depth), seed)
    return {"noisy": noisy, "history": history, "seconds": time.perf_counter() - start}


def _record(name, stage, trained, data, cfg, seed, order, batch, noise_at_eval=False) -> dict:
    from toolbox.noisynn.train import evaluate

    noisy = trained["noisy"]
    result = evaluate(noisy, data.x_test, data.y_test, batch, order, seed, noise=noise_at_eval)
    return {"condition": name, "stage": stage, "seed": seed, "accuracy": result["accuracy"], "nll": result["nll"],
            "ece": result["ece"], "train_accuracy": trained["history"][-1]["train_accuracy"],
            "train_loss": trained["history"][-1]["loss"], "seconds": trained["seconds"],
            "correct": result["correct"], "history": trained["history"]}


def _eval_condition(cond: Condition, trained, data, cfg: StudyConfig, seed: int) -> dict:
    """Evaluate the baseline model with the condition's noise attached at eval time, plus the task entropy change."""
    import torch

    from toolbox.noisynn import entropy
    from toolbox.noisynn.noise import attach_noise, noise_site, to_canonical
    from toolbox.noisynn.train import NoisyModel, batch_order, batch_purity, calibrate, metrics, predict

    model = trained["noisy"].model
    layer = block_index(cfg.model, cfg.depth, cond.layer)
    module, layout, prefix = noise_site(model, layer)
    injector = attach_noise(module, cond.spec, layout, prefix, seed=seed)
    try:
        noisy = NoisyModel(model, injector, layer)
        if cond.spec.kind == "gaussian":
            calibrate(noisy, torch.from_numpy(data.x_train))
        order = batch_order(data.y_test, cond.eval_order, seed)
        logits, noisy_features = predict(noisy, data.x_test, cond.eval_batch_size, order, capture=True)
        clean_logits, clean_features = predict(noisy, data.x_test, cond.eval_batch_size, order, noise=False,
                                               capture=True)
    finally:
        injector.detach()
    m = metrics(logits, data.y_test)
    change = entropy.feature_entropy_change(data.y_test, clean_features, noisy_features, data.classes,
                                            cfg.entropy_dims)
    canonical = to_canonical(torch.from_numpy(clean_features[:1]), layout, prefix).shape
    k = _mixed_k(cond.spec, canonical, cond.eval_batch_size)
    analytic = entropy_change_or_none(cond.spec, k)
    return {"condition": cond.name, "stage": "eval", "seed": seed, "accuracy": m["accuracy"], "nll": m["nll"],
            "ece": m["ece"], "train_accuracy": trained["history"][-1]["train_accuracy"],
            "train_loss": trained["history"][-1]["loss"], "seconds": 0.0, "correct": m["correct"],
            "max_logit_change": float(np.abs(logits - clean_logits).max()),
            "prediction_changed": float(np.mean(logits.argmax(1) != clean_logits.argmax(1))),
            "batch_purity": batch_purity(data.y_test, order, cond.eval_batch_size),
            "delta_H_features": change["delta_S"], "H_clean": change["H_Y_given_Z_clean"],
            "H_noisy": change["H_Y_given_Z_noisy"], "delta_S_analytic": analytic, "k": k}


def _mixed_k(spec: NoiseSpec, canonical_shape, batch: int) -> int | None:
    """k, the number of rows a linear transform noise mixes: the batch, the site's tokens or its features."""
    if spec.kind not in ("linear", "optimal"):
        return None
    return {"batch": batch, "token": canonical_shape[1], "channel": canonical_shape[2]}[spec.axis]


def entropy_change_or_none(spec: NoiseSpec, k: int | None) -> float | None:
    """The paper's analytic dS for a linear transform noise over k samples (None for other noises)."""
    import warnings

    from toolbox.noisynn.entropy import entropy_change

    if k is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return entropy_change(spec.kind, k, spec.strength)


def _save(task: Task, name: str, trained: dict, data, cfg: StudyConfig) -> None:
    if task.checkpoint_dir is None:
        return
    from toolbox.noisynn.checkpoint import save_checkpoint

    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
    save_checkpoint(Path(task.checkpoint_dir) / f"{safe}-seed{task.seed}.pt", trained["noisy"].model, cfg.model,
                    cfg.dataset, task.seed, data.input_shape, data.classes, cfg.depth)


# ---- the study ---------------------------------------------------------------------------------------------------

def run_entropy(cfg: StudyConfig, out: Path) -> dict:
    """The `entropy` plan: closed forms and the scalar Gaussian experiment, written to entropy.csv and
    summary.json."""
    from toolbox.core.io import write_csv, write_json
    from toolbox.noisynn.entropy import entropy_table

    table = entropy_table(cfg.ks, cfg.strengths, seed=cfg.first_seed)
    write_csv(out / "entropy.csv", table["linear_transform"])
    write_csv(out / "scalar_gaussian.csv", table["scalar_gaussian"])
    write_json(out / "summary.json", table)
    return table


def run_study(cfg: StudyConfig, out: Path, log: Callable[[str], None] = print,
              progress: Callable[..., None] | None = None) -> dict:
    """Run every (condition, seed), write runs.csv, conditions.csv, history.jsonl, plots and summary.json."""
    from toolbox.core.executor import map_tasks
    from toolbox.core.io import write_csv, write_json, write_jsonl
    from toolbox.noisynn.noise import cross_sample_warning

    if cfg.seeds < 1:
        raise UserInputError(f"seeds must be >= 1, got {cfg.seeds}")
    conditions = validate(cfg)
    warnings_shown = sorted({w for c in conditions if c.leak_protocol
                             for w in [cross_sample_warning(c.spec, c.eval_order)] if w})
    for w in warnings_shown:
        log(f"warning: {w}")
    ckpt_dir = out / "checkpoints"
    eval_conditions = tuple(c for c in conditions if c.stage == "eval")
    tasks = []
    for seed in range(cfg.first_seed, cfg.first_seed + cfg.seeds):
        keep = cfg.checkpoints == "all" or (cfg.checkpoints == "first-seed" and seed == cfg.first_seed)
        tasks.append(Task(cfg, seed, eval_conditions, True, str(ckpt_dir) if keep else None))
        tasks += [Task(cfg, seed, (c,), False, str(ckpt_dir) if keep else None)
                  for c in conditions if c.stage == "train"]
    log(f"{len(tasks)} training runs ({len(conditions)} conditions + baseline, {cfg.seeds} seeds) on "
        f"{cfg.backend} x {cfg.workers}")
    start = time.perf_counter()
    results = map_tasks(run_task, tasks, backend=cfg.backend, workers=cfg.workers, progress=progress)
    wall = time.perf_counter() - start
    records = [r for group in results for r in group]
    summary = summarise(records, conditions, cfg)
    summary.update({"wall_seconds": wall, "training_runs": len(tasks), "warnings": warnings_shown,
                    "config": dataclasses.asdict(cfg)})
    write_csv(out / "runs.csv", [{k: v for k, v in r.items() if k not in ("correct", "history")} for r in records])
    write_jsonl(out / "history.jsonl", [{"condition": r["condition"], "seed": r["seed"], **h}
                                        for r in records if r["stage"] != "eval" for h in r["history"]])
    write_csv(out / "conditions.csv", summary["conditions"])
    from toolbox.noisynn.report import write_plots, write_report

    summary["plots"] = write_plots(out, summary, cfg)
    write_report(out / "report.md", summary)
    write_json(out / "summary.json", summary)
    return summary


def validate(cfg: StudyConfig) -> list[Condition]:
    """The study's conditions; fails on a bad plan, noise, dataset, model, layer, order or batch size before any
    training starts."""
    from toolbox.noisynn.data import load_dataset
    from toolbox.noisynn.models import build_model
    from toolbox.noisynn.noise import noise_site
    from toolbox.noisynn.train import ORDERS

    if cfg.eval_order not in ORDERS:
        raise UserInputError(f"eval order must be one of {', '.join(ORDERS)}, got {cfg.eval_order!r}")
    if min(cfg.eval_batch_size, cfg.batch_size, cfg.epochs, cfg.threads) < 1:
        raise UserInputError("batch sizes, epochs and threads must be >= 1")
    if cfg.checkpoints not in ("none", "first-seed", "all"):
        raise UserInputError(f"checkpoints must be none, first-seed or all, got {cfg.checkpoints!r}")
    data = load_dataset(cfg.dataset, cfg.first_seed)
    model = build_model(cfg.model, data.input_shape, data.classes, cfg.depth or None)
    for layer in cfg.layers:
        if layer != HEAD and not isinstance(layer, int):
            raise UserInputError(f"layers are block indices or 'head', got {layer!r}")
        noise_site(model, block_index(cfg.model, cfg.depth, layer))
    return build_plan(cfg)


def summarise(records: list[dict], conditions: list[Condition], cfg: StudyConfig) -> dict:
    from toolbox.noisynn import stats

    base = {r["seed"]: r for r in records if r["condition"] == "baseline"}
    seeds = sorted(base)
    base_acc = np.array([base[s]["accuracy"] for s in seeds])
    rows = [{"condition": "baseline", "stage": "baseline", "kind": "none", "strength": 0.0, "layer": "",
             "mean_accuracy": float(base_acc.mean()), "sd_accuracy": float(base_acc.std(ddof=1)) if len(seeds) > 1
             else 0.0, "n": len(seeds)}]
    for cond in conditions:
        by_seed = {r["seed"]: r for r in records if r["condition"] == cond.name}
        acc = np.array([by_seed[s]["accuracy"] for s in seeds])
        diff = stats.paired_difference(acc, base_acc, seed=0)
        mc = [stats.mcnemar(base[s]["correct"], by_seed[s]["correct"])["p"] for s in seeds]
        row = {"condition": cond.name, "stage": cond.stage, "kind": cond.spec.kind, "strength": cond.spec.strength,
               "layer": cond.layer, "eval_order": cond.eval_order if cond.stage == "eval" else "",
               "eval_batch_size": cond.eval_batch_size, "mean_accuracy": float(acc.mean()),
               "sd_accuracy": float(acc.std(ddof=1)) if len(seeds) > 1 else 0.0, "n": len(seeds),
               "diff_mean": diff["mean"], "diff_t_low": diff["t_ci"][0], "diff_t_high": diff["t_ci"][1],
               "diff_boot_low": diff["bootstrap_ci"][0], "diff_boot_high": diff["bootstrap_ci"][1],
               "p_t": diff["p_t"], "mcnemar_significant_seeds": int(sum(p < 0.05 for p in mc)),
               "mcnemar_median_p": float(np.median(mc))}
        if cond.stage == "eval":
            for key in ("delta_H_features", "prediction_changed", "max_logit_change", "batch_purity"):
                row[key] = float(np.mean([by_seed[s][key] for s in seeds]))
            row["delta_S_analytic"] = by_seed[seeds[0]]["delta_S_analytic"]
        rows.append(row)
    holm = stats.holm([r["p_t"] for r in rows[1:]]) if len(rows) > 1 else []
    for r, p in zip(rows[1:], holm):
        r["p_holm"] = p
    return {"dataset": cfg.dataset, "model": cfg.model, "seeds": len(seeds),
            "baseline_accuracy": float(base_acc.mean()), "conditions": rows, "checks": checks(rows)}


def checks(rows: list[dict]) -> dict:
    """The acceptance questions answered from the summary rows (None where the plan lacks the conditions)."""
    by = {r["condition"]: r for r in rows}
    out: dict = {}
    for kind, levels in (("gaussian", (0.5, 1.0, 2.0)), ("impulse", (0.05, 0.2))):
        names = [f"eval:{kind} {s:g}@L{layer}" for s in levels for layer in _layers_in(rows)]
        found = [by[n] for n in names if n in by]
        if found:
            means = [by["baseline"]["mean_accuracy"]] + [r["mean_accuracy"] for r in found]
            out[f"eval_{kind}_monotone"] = bool(all(b <= a + 1e-12 for a, b in zip(means, means[1:])))
            out[f"eval_{kind}_strongest_ci_below_zero"] = bool(found[-1]["diff_t_high"] < 0)
    for kind in ("optimal", "linear 0.3"):
        sorted_, shuffled, single = (by.get(f"eval:{kind}@head {s}") for s in ("sorted/10", "shuffled/10", "B=1"))
        if sorted_ and shuffled and single:
            key = kind.split()[0]
            out[f"leak_{key}_sorted_gain"] = sorted_["diff_mean"]
            out[f"leak_{key}_sorted_ci_above_zero"] = bool(sorted_["diff_t_low"] > 0)
            out[f"leak_{key}_shuffled_gain"] = shuffled["diff_mean"]
            out[f"leak_{key}_b1_max_logit_change"] = single["max_logit_change"]
            out[f"leak_{key}_sorted_predictions_changed"] = sorted_["prediction_changed"]
    return out


def _layers_in(rows: list[dict]) -> list:
    return sorted({r["layer"] for r in rows if r.get("stage") == "eval" and r["layer"] != HEAD}, key=str)
