"""`toolbox audit-noisy`: is a test-time noise gain a property of the model or of the test batches?

For a trained model and a noise attached at evaluation, the audit evaluates the test set
  - without noise (the reference), with batch size 1, in class-sorted batches (the official protocol) and in
    `permutations` random shufflings of the batches;
  - tests batch-composition dependence by permutation: the sorted accuracy against the accuracies of random batch
    compositions, p = (1 + #{shuffled >= sorted}) / (1 + permutations);
  - counts the test samples whose prediction changes with the batch (across all those evaluations);
and returns a verdict. Noise draws are keyed by sample, so only the batch composition can move a prediction.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from toolbox.core.config import Count, PosInt, Real
from toolbox.core.errors import UserInputError
from toolbox.core.rng import numpy_generator
from toolbox.noisynn.models import MODELS, block_index
from toolbox.noisynn.noise import AXES, KINDS, NoiseSpec, attach_noise, noise_site
from toolbox.noisynn.train import NoisyModel, batch_order, batch_purity, calibrate, predict


@dataclass(frozen=True)
class AuditSettings:
    batch_size: int = 10
    permutations: int = 100
    alpha: float = 0.05  # significance level of the permutation test
    tolerance: float = 1e-5  # logits closer than this (relative to the largest logit) count as unchanged


def audit(model, spec: NoiseSpec, layer: int, x_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
          settings: AuditSettings = AuditSettings(), seed: int = 0) -> dict:
    import torch

    if spec.kind == "none":
        raise UserInputError("the audit needs a noise (kind gaussian, impulse, linear or optimal)")
    if settings.batch_size < 2 or settings.permutations < 1:
        raise UserInputError("the audit needs a batch size >= 2 and at least one permutation")
    spec = spec.with_(apply="eval")
    module, layout, prefix = noise_site(model, layer)
    injector = attach_noise(module, spec, layout, prefix, seed=seed)
    noisy = NoisyModel(model, injector, layer)
    try:
        if spec.kind == "gaussian":
            calibrate(noisy, torch.from_numpy(x_train))
        n, b = len(y_test), settings.batch_size
        identity = np.arange(n)
        clean, _ = predict(noisy, x_test, 1, identity, noise=False)
        single, _ = predict(noisy, x_test, 1, identity)
        sorted_order = batch_order(y_test, "sorted", seed)
        sorted_logits, _ = predict(noisy, x_test, b, sorted_order)
        gen = numpy_generator(seed, 99)
        shuffled_acc, shuffled_purity, predictions = [], [], [single.argmax(1), sorted_logits.argmax(1)]
        max_change = float(np.abs(sorted_logits - single).max())
        for _ in range(settings.permutations):
            order = gen.permutation(n)
            logits, _ = predict(noisy, x_test, b, order)
            shuffled_acc.append(float(np.mean(logits.argmax(1) == y_test)))
            shuffled_purity.append(batch_purity(y_test, order, b))
            predictions.append(logits.argmax(1))
            max_change = max(max_change, float(np.abs(logits - single).max()))
    finally:
        injector.detach()
    acc = lambda logits: float(np.mean(logits.argmax(1) == y_test))  # noqa: E731
    stacked = np.stack(predictions)
    changed = np.any(stacked != stacked[0], axis=0)
    shuffled_acc = np.array(shuffled_acc)
    result = {
        "noise": spec.label(), "layer": layer, "batch_size": b, "permutations": settings.permutations,
        "accuracy_clean": acc(clean), "accuracy_batch1": acc(single), "accuracy_sorted": acc(sorted_logits),
        "accuracy_shuffled_mean": float(shuffled_acc.mean()),
        "accuracy_shuffled_range": [float(shuffled_acc.min()), float(shuffled_acc.max())],
        "p_sorted_vs_shuffled": float((1 + np.sum(shuffled_acc >= acc(sorted_logits))) / (1 + len(shuffled_acc))),
        "fraction_predictions_batch_dependent": float(changed.mean()),
        "max_logit_change_vs_batch1": max_change,
        "logit_scale": float(np.abs(single).max()),
        "batch1_max_logit_change_vs_clean": float(np.abs(single - clean).max()),
        "purity_sorted": batch_purity(y_test, sorted_order, b),
        "purity_shuffled_mean": float(np.mean(shuffled_purity)),
        "shuffled_accuracies": shuffled_acc.tolist(),
    }
    result.update(verdict(result, settings))
    return result


def verdict(r: dict, settings: AuditSettings) -> dict:
    invariant = r["fraction_predictions_batch_dependent"] == 0 and \
        r["max_logit_change_vs_batch1"] < settings.tolerance * max(1.0, r["logit_scale"])
    gain_sorted = r["accuracy_sorted"] - r["accuracy_batch1"]
    leak = not invariant and gain_sorted > 0 and r["p_sorted_vs_shuffled"] < settings.alpha
    if invariant:
        label = "batch-invariant"
        text = ("predictions do not depend on the batch: any accuracy change is a property of the model and the "
                "noise")
    elif leak:
        label = "leak"
        text = (f"LEAK: class-sorted batches give {100 * r['accuracy_sorted']:.2f}% against "
                f"{100 * r['accuracy_batch1']:.2f}% with batch size 1 and {100 * r['accuracy_shuffled_mean']:.2f}% "
                f"with shuffled batches (permutation p = {r['p_sorted_vs_shuffled']:.3g}); "
                f"{100 * r['fraction_predictions_batch_dependent']:.1f}% of predictions change with the batch. The "
                "gain is a property of the batch composition (same-class test partners), not of the model.")
    else:
        label = "batch-dependent"
        text = (f"{100 * r['fraction_predictions_batch_dependent']:.1f}% of predictions change with the batch, but "
                "class-sorted batches show no significant gain; accuracy still depends on which test images share "
                "a batch")
        if 1 / (1 + r["permutations"]) >= settings.alpha:
            text += f" (with {r['permutations']} permutations p cannot fall below {settings.alpha}: use more)"
    return {"verdict": label, "flagged": not invariant, "verdict_text": text}


def write_audit(out, result: dict) -> list[str]:
    """audit.json, protocols.csv and permutation_test.png in `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from toolbox.core.io import save_figure, write_csv, write_json

    write_json(out / "audit.json", result)
    write_csv(out / "protocols.csv", [
        {"protocol": "no noise", "accuracy": result["accuracy_clean"]},
        {"protocol": "batch size 1", "accuracy": result["accuracy_batch1"]},
        {"protocol": f"class-sorted batches of {result['batch_size']}", "accuracy": result["accuracy_sorted"],
         "batch_purity": result["purity_sorted"]},
        {"protocol": f"shuffled batches of {result['batch_size']} (mean)", "accuracy":
         result["accuracy_shuffled_mean"], "batch_purity": result["purity_shuffled_mean"]}])
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    ax.hist(100 * np.array(result["shuffled_accuracies"]), bins=20, color="tab:gray", label="shuffled batches")
    for key, color, style, name in (("accuracy_sorted", "tab:red", "--", "class-sorted"),
                                    ("accuracy_batch1", "tab:blue", "-", "B = 1"),
                                    ("accuracy_clean", "black", ":", "no noise")):
        ax.axvline(100 * result[key], color=color, ls=style, lw=2, label=f"{name} {100 * result[key]:.2f}%")
    ax.set_xlabel("test accuracy (%)")
    ax.set_ylabel("batch compositions")
    ax.set_title(f"{result['noise']}: verdict {result['verdict']} (p = {result['p_sorted_vs_shuffled']:.3g})",
                 fontsize=9)
    ax.legend(fontsize=7)
    save_figure(fig, out / "permutation_test.png")
    return ["audit.json", "protocols.csv", "permutation_test.png"]


@dataclass
class AuditConfig:
    checkpoint: str = ""  # a train-noisy checkpoint; empty: train a baseline first
    dataset: str = "digits"
    model: Literal[MODELS] = "cnn"
    epochs: PosInt = 30
    noise: Literal[KINDS] = "optimal"
    strength: Real = 0.0
    layer: int | Literal["head"] = "head"  # block index or "head"
    axis: Literal[AXES] = "batch"
    batch_size: Annotated[int, Field(ge=2)] = 10
    permutations: PosInt = 100
    threads: Count = 1


def run_audit(cfg: AuditConfig, out, seed: int = 0, log=print) -> dict:
    """Load (or train) the model, rebuild its test split, audit the noise and write the audit files."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, cfg.threads))
    try:
        return _run_audit(cfg, out, seed, log)
    finally:
        torch.set_num_threads(threads)


def _run_audit(cfg: AuditConfig, out, seed: int, log) -> dict:
    from toolbox.noisynn.checkpoint import load_checkpoint
    from toolbox.noisynn.data import load_dataset
    from toolbox.noisynn.train import TrainSettings, build_noisy_model, train

    spec = NoiseSpec(cfg.noise, cfg.strength, cfg.axis, "eval")
    if spec.kind == "none":
        raise UserInputError("the audit needs a noise (kind gaussian, impulse, linear or optimal)")
    if cfg.checkpoint:
        model, meta = load_checkpoint(cfg.checkpoint)
        data = load_dataset(meta["dataset"], meta["seed"])
        model_name, depth, data_seed = meta["model"], meta["depth"], meta["seed"]
        log(f"audit of {cfg.checkpoint} ({model_name} on {meta['dataset']}, seed {data_seed})")
    else:
        data = load_dataset(cfg.dataset, seed)
        model_name, depth, data_seed = cfg.model, 0, seed
        log(f"training a noise-free {cfg.model} on {cfg.dataset} ({cfg.epochs} epochs, seed {seed}) to audit")
        noisy = build_noisy_model(cfg.model, data.input_shape, data.classes, NoiseSpec(), -1, seed)
        train(noisy, data.x_train, data.y_train, TrainSettings(epochs=cfg.epochs), seed)
        noisy.injector.detach()
        model = noisy.model
    layer = block_index(model_name, depth, cfg.layer)
    result = audit(model, spec, layer, data.x_train, data.x_test, data.y_test,
                   AuditSettings(cfg.batch_size, cfg.permutations), seed=data_seed)
    result["files"] = write_audit(out, result)
    return result
