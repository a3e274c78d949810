"""Training and evaluation of one model with one noise, paired by seed.

Pairing: for a seed, every condition starts from the same initial weights (torch seeded before the model is built;
the noise has no parameters) and sees the same mini-batch order (its own generator), so condition differences are
paired. Noise draws use their own keyed Philox stream: key = epoch * N + sample index in training, the test index at
evaluation, so evaluation noise does not depend on batch composition or order.
Evaluation orders: "shuffled" (leak-free default), "as-is", or "sorted" by label (the official protocol's
class-sorted ImageFolder + SequentialSampler).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from toolbox.core.errors import UserInputError
from toolbox.core.rng import numpy_generator
from toolbox.noisynn.models import build_model
from toolbox.noisynn.noise import NoiseInjector, NoiseSpec, noise_site

ORDERS = ("shuffled", "sorted", "as-is")
TRAIN_STREAM, EVAL_STREAM = 1, 2


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    depth: int = 0            # 0: the model's default


@dataclass
class NoisyModel:
    model: torch.nn.Module
    injector: NoiseInjector
    layer: int

    def site_module(self) -> torch.nn.Module:
        return noise_site(self.model, self.layer)[0]


def build_noisy_model(model_name: str, input_shape, classes: int, spec: NoiseSpec, layer: int, seed: int,
                      depth: int = 0) -> NoisyModel:
    torch.manual_seed(seed)
    model = build_model(model_name, tuple(input_shape), classes, depth or None)
    module, layout, prefix = noise_site(model, layer)
    injector = NoiseInjector(spec, layout, prefix, seed=seed).attach(module)
    return NoisyModel(model, injector, layer)


def train(noisy: NoisyModel, x: np.ndarray, y: np.ndarray, settings: TrainSettings, seed: int) -> list[dict]:
    """AdamW on cross-entropy; returns per-epoch mean loss and training accuracy (with the noise as applied)."""
    model, injector = noisy.model, noisy.injector
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    n = len(xt)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    order_gen = torch.Generator().manual_seed(seed * 7919 + 17)
    gaussian = injector.spec.kind == "gaussian"
    if gaussian:
        calibrate(noisy, xt)
    history = []
    injector.stream = TRAIN_STREAM
    for epoch in range(settings.epochs):
        model.train()
        perm = torch.randperm(n, generator=order_gen)
        loss_sum, correct = 0.0, 0
        for start in range(0, n, settings.batch_size):
            idx = perm[start:start + settings.batch_size]
            with injector.keys(epoch * n + idx):
                logits = model(xt[idx])
            loss = torch.nn.functional.cross_entropy(logits, yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yt[idx]).sum())
        history.append({"epoch": epoch + 1, "loss": loss_sum / n, "train_accuracy": correct / n})
        if gaussian:
            calibrate(noisy, xt)  # the scale follows the features as they train
    return history


def calibrate(noisy: NoisyModel, xt: torch.Tensor, batch_size: int = 512) -> None:
    """reference_std := std of the clean features at the site over the training inputs (eval mode, noise off);
    the scale of relative Gaussian noise."""
    model = noisy.model
    was_training = model.training
    model.eval()
    with torch.no_grad(), noisy.injector.observing():
        for start in range(0, len(xt), batch_size):
            model(xt[start:start + batch_size])
    model.train(was_training)


def batch_purity(labels: np.ndarray, order: np.ndarray, batch: int) -> float:
    """Fraction of a sample's batch partners with its own label (1.0 for single-class batches; nan for B = 1)."""
    same, total = 0, 0
    for start in range(0, len(order), batch):
        counts = np.bincount(labels[order[start:start + batch]])
        same += int(np.sum(counts * (counts - 1)))
        total += int(counts.sum() * (counts.sum() - 1))
    return same / total if total else float("nan")


def batch_order(labels: np.ndarray, order: str, seed: int) -> np.ndarray:
    if order == "shuffled":
        return numpy_generator(seed, 77).permutation(len(labels))
    if order == "sorted":
        return np.argsort(labels, kind="stable")
    if order == "as-is":
        return np.arange(len(labels))
    raise UserInputError(f"eval order must be one of {', '.join(ORDERS)}, got {order!r}")


def predict(noisy: NoisyModel, x: np.ndarray, batch_size: int, order: np.ndarray, noise: bool = True,
            capture: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits [N, C] in the original order for batches cut from `order`; with capture, the site features as the
    next layer sees them (after the noise) [N, ...]."""
    if batch_size < 1:
        raise UserInputError(f"eval batch size must be >= 1, got {batch_size}")
    model, injector = noisy.model, noisy.injector
    model.eval()
    xt = torch.from_numpy(x)
    captured: list[torch.Tensor] = []
    handle = noisy.site_module().register_forward_pre_hook(lambda m, a: captured.append(a[0].detach())) \
        if capture else None
    injector.stream = EVAL_STREAM
    parts = []
    try:
        with torch.no_grad(), (contextlib.nullcontext() if noise else injector.disabled()):
            for start in range(0, len(order), batch_size):
                idx = torch.from_numpy(order[start:start + batch_size])
                with injector.keys(idx):
                    parts.append(model(xt[idx]))
    finally:
        if handle is not None:
            handle.remove()
    inverse = np.argsort(order)
    logits = torch.cat(parts).numpy()[inverse]
    features = torch.cat(captured).numpy()[inverse] if capture else None
    return logits, features


def metrics(logits: np.ndarray, labels: np.ndarray, bins: int = 15) -> dict:
    """Accuracy, NLL and expected calibration error (equal-width confidence bins), and the per-sample correctness."""
    z = logits - logits.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    pred = logits.argmax(1)
    correct = pred == labels
    confidence = np.exp(logp.max(1))
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    ece = sum(abs(correct[which == b].mean() - confidence[which == b].mean()) * np.mean(which == b)
              for b in range(bins) if np.any(which == b))
    return {"accuracy": float(correct.mean()), "nll": float(-logp[np.arange(len(labels)), labels].mean()),
            "ece": float(ece), "correct": correct, "pred": pred}


def evaluate(noisy: NoisyModel, x: np.ndarray, y: np.ndarray, batch_size: int, order: str, seed: int,
             noise: bool = True) -> dict:
    logits, _ = predict(noisy, x, batch_size, batch_order(y, order, seed), noise)
    return {**metrics(logits, y), "logits": logits}
