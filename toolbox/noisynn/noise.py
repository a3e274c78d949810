"""The four NoisyNN noises and the hook that injects one at a chosen site of any torch module.

Sites follow the official code: a ViT block's attention input (after norm1, patch tokens only, CLS untouched), the
input of a CNN residual block, or the penultimate features entering the head. The noise acts on a canonical view
[B, T, D] of the site's tensor (batch, tokens or spatial positions, features):
  gaussian  x + s * ref * N(mean, std)            (official: strength s, `--gau_var` used as the std)
  impulse   u < p/2 -> max, u > 1 - p/2 -> min    (extrema over the batch's tokens, as the official code)
  linear    (1 - alpha) x_i + alpha x_{i+1}       circulant Q = alpha (P - I), eq. 17, along `axis`
  optimal   (x_i + sum_j x_j) / (k + 1)           optimal Q*, eq. 19, along `axis` (k = the axis length)
`axis` is "batch" (the paper), "token" or "channel"; `apply` says when the noise fires: "train", "eval" or "both".
Gaussian and impulse draws are keyed by a per-sample key (see `NoiseInjector.keys`), so evaluation noise is the
same for a sample in any batch; without keys the batch position is used.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass

import torch

from toolbox.core.errors import UserInputError
from toolbox.noisynn import kernels

KINDS = ("none", "gaussian", "impulse", "linear", "optimal")
AXES = ("batch", "token", "channel")
APPLY = ("train", "eval", "both")
LAYOUTS = ("tokens", "conv", "flat")
MIXING = ("linear", "optimal")


@dataclass(frozen=True)
class NoiseSpec:
    kind: str = "none"
    strength: float = 0.0      # gaussian s (x ref std), impulse p, linear alpha; unused by optimal
    axis: str = "batch"
    apply: str = "train"
    gauss_mean: float = 0.0
    gauss_std: float = 1.0
    relative: bool = True      # gaussian scale in units of the site's clean feature std (False: absolute, as paper)
    detach_partner: bool | None = None  # None: as the official code (linear detached, optimal not)
    impulse_extrema: str = "batch"      # "batch" (official) or "sample"

    def __post_init__(self):
        checks = [(self.kind in KINDS, f"noise kind must be one of {', '.join(KINDS)}, got {self.kind!r}"),
                  (self.axis in AXES, f"axis must be one of {', '.join(AXES)}, got {self.axis!r}"),
                  (self.apply in APPLY, f"apply must be one of {', '.join(APPLY)}, got {self.apply!r}"),
                  (self.impulse_extrema in ("batch", "sample"), "impulse_extrema must be batch or sample"),
                  (math.isfinite(self.strength) and self.strength >= 0, "noise strength must be finite and >= 0"),
                  (self.kind != "impulse" or self.strength <= 1, "impulse strength is a probability in [0, 1]"),
                  (self.kind != "linear" or self.strength <= 1, "linear noise alpha must be in [0, 1]")]
        for ok, message in checks:
            if not ok:
                raise UserInputError(message)

    @property
    def cross_sample(self) -> bool:
        """True when a sample's output can depend on other samples of its batch."""
        return (self.kind in MIXING and self.axis == "batch") or (self.kind == "impulse"
                                                                  and self.impulse_extrema == "batch")

    @property
    def partner_detached(self) -> bool:
        return self.kind == "linear" if self.detach_partner is None else self.detach_partner

    def label(self) -> str:
        if self.kind == "none":
            return "none"
        value = "" if self.kind == "optimal" else f" {self.strength:g}"
        axis = "" if self.axis == "batch" else f" axis={self.axis}"
        return f"{self.kind}{value}{axis}"

    def with_(self, **changes) -> "NoiseSpec":
        return dataclasses.replace(self, **changes)


def to_canonical(x: torch.Tensor, layout: str, prefix_tokens: int = 0) -> torch.Tensor:
    """The [B, T, D] view the noise acts on: tokens minus prefix, conv maps as (positions, channels), flat as T=1."""
    if layout == "tokens":
        return x[:, prefix_tokens:, :]
    if layout == "conv":
        return x.flatten(2).transpose(1, 2)
    if layout == "flat":
        return x.reshape(x.shape[0], 1, -1)
    raise ValueError(f"unknown layout {layout!r}")


def from_canonical(body: torch.Tensor, like: torch.Tensor, layout: str, prefix_tokens: int = 0) -> torch.Tensor:
    if layout == "tokens":
        return torch.cat([like[:, :prefix_tokens, :], body], dim=1) if prefix_tokens else body
    if layout == "conv":
        return body.transpose(1, 2).reshape(like.shape)
    return body.reshape(like.shape)


def apply_noise(body: torch.Tensor, spec: NoiseSpec, keys: torch.Tensor, seed: int, stream: int,
                reference_std: float = 1.0) -> torch.Tensor:
    """The noise on a canonical [B, T, D] tensor."""
    if spec.kind == "none":
        return body
    b, t, d = body.shape
    if spec.kind == "gaussian":
        scale = spec.strength * (reference_std if spec.relative else 1.0)
        flat = kernels.gaussian(body.reshape(b, t * d), keys, seed, stream, scale * spec.gauss_mean,
                                scale * spec.gauss_std)
        return flat.reshape(b, t, d)
    if spec.kind == "impulse":
        flat, ref = body.reshape(b, t * d), body.detach()
        if spec.impulse_extrema == "batch":
            return kernels.impulse(flat, keys, seed, stream, spec.strength, float(ref.amax()),
                                   float(ref.amin())).reshape(b, t, d)
        rows = [kernels.impulse(flat[i:i + 1], keys[i:i + 1], seed, stream, spec.strength, float(ref[i].amax()),
                                float(ref[i].amin())) for i in range(b)]
        return torch.cat(rows).reshape(b, t, d)
    # linear transform noises: move the mixed axis first, mix the K rows, move it back
    axis = AXES.index(spec.axis)
    moved = body.movedim(axis, 0)
    rows = moved.reshape(moved.shape[0], -1)
    if spec.kind == "optimal":
        mixed = kernels.mix_optimal(rows, spec.partner_detached)
    else:
        mixed = kernels.mix_circulant(rows, spec.strength, spec.partner_detached)
    return mixed.reshape(moved.shape).movedim(0, axis)


class NoiseInjector:
    """One noise at one site. `attach(module)` registers it as a forward pre-hook on that module's first input.

    The noise fires when the hooked module is in training mode (apply train/both) or in eval mode (eval/both).
    Gaussian scale: `reference_std`, the std of the clean site features (`calibrate`), times the strength.
    """

    def __init__(self, spec: NoiseSpec, layout: str, prefix_tokens: int = 0, seed: int = 0, stream: int = 0):
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        self.spec, self.layout, self.prefix_tokens = spec, layout, prefix_tokens
        self.seed, self.stream = seed, stream
        self.reference_std: float | None = None
        self.enabled = True
        self._keys: torch.Tensor | None = None
        self._calls = 0
        self._observed: list[tuple[int, float, float]] = []
        self._observing = False
        self._handle = None

    def active(self, training: bool) -> bool:
        return self.enabled and self.spec.kind != "none" and (
            self.spec.apply == "both" or self.spec.apply == ("train" if training else "eval"))

    def __call__(self, x: torch.Tensor, training: bool) -> torch.Tensor:
        body = to_canonical(x, self.layout, self.prefix_tokens)
        if self._observing:
            clean = body.detach().double()
            self._observed.append((clean.numel(), float(clean.sum()), float(clean.pow(2).sum())))
        if not self.active(training):
            return x
        keys = self._keys
        if keys is None:  # no per-sample keys: the call counter and batch position
            keys = torch.arange(x.shape[0], dtype=torch.int64) + self._calls * (1 << 32)
            self._calls += 1
        if len(keys) != x.shape[0]:
            raise ValueError(f"noise keys: {len(keys)} keys for a batch of {x.shape[0]}")
        if self.spec.kind == "gaussian" and self.spec.relative and self.reference_std is None:
            raise RuntimeError("relative Gaussian noise needs a reference std: run clean data under observing()")
        noisy = apply_noise(body, self.spec, keys, self.seed, self.stream, self.reference_std or 1.0)
        return from_canonical(noisy, x, self.layout, self.prefix_tokens)

    @contextlib.contextmanager
    def keys(self, keys: torch.Tensor | None):
        """Per-sample keys for the Gaussian / impulse draws of the next forward passes (e.g. dataset indices)."""
        previous, self._keys = self._keys, None if keys is None else keys.to(torch.int64).cpu()
        try:
            yield self
        finally:
            self._keys = previous

    @contextlib.contextmanager
    def disabled(self):
        previous, self.enabled = self.enabled, False
        try:
            yield self
        finally:
            self.enabled = previous

    @contextlib.contextmanager
    def observing(self):
        """Record the clean features at the site (noise off); on exit set reference_std to their std."""
        self._observed, self._observing = [], True
        try:
            with self.disabled():
                yield self
        finally:
            self._observing = False
            if self._observed:
                n, total, squares = (sum(v) for v in zip(*self._observed))
                self.reference_std = math.sqrt(max(squares / n - (total / n) ** 2, 0.0))

    def attach(self, module: torch.nn.Module) -> "NoiseInjector":
        self.detach()

        def hook(mod, args):
            return (self(args[0], mod.training), *args[1:])

        self._handle = module.register_forward_pre_hook(hook)
        return self

    def detach(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


def attach_noise(module: torch.nn.Module, spec: NoiseSpec, layout: str, prefix_tokens: int = 0, seed: int = 0,
                 stream: int = 0) -> NoiseInjector:
    """Inject `spec` into the first input of any torch module (a forward pre-hook); returns the injector."""
    return NoiseInjector(spec, layout, prefix_tokens, seed, stream).attach(module)


def noise_site(model: torch.nn.Module, layer: int) -> tuple[torch.nn.Module, str, int]:
    """(module, layout, prefix tokens) of site `layer`: 0..depth-1 the blocks (negative counts from the end),
    depth the head's input (penultimate features). Works for the built-in models and for timm ViTs / ResNets."""
    if hasattr(model, "blocks") and all(hasattr(b, "attn") for b in model.blocks):
        # ViT (built-in or timm): the attention input (after norm1) of block `layer`
        sites, layout, prefix = [b.attn for b in model.blocks], "tokens", int(getattr(model, "num_prefix_tokens", 1))
    elif hasattr(model, "blocks"):  # built-in CNN: the residual block inputs
        sites, layout, prefix = list(model.blocks), "conv", 0
    elif hasattr(model, "layer4"):  # timm / torchvision ResNet: residual block inputs, in order
        sites = [blk for stage in (model.layer1, model.layer2, model.layer3, model.layer4) for blk in stage]
        layout, prefix = "conv", 0
    else:
        raise UserInputError(f"no known noise sites on a {type(model).__name__}; use attach_noise on a module")
    depth = len(sites)
    if not -depth <= layer <= depth:
        raise UserInputError(f"layer must be in [-{depth}, {depth}] (0..{depth - 1} blocks, {depth} = head), "
                             f"got {layer}")
    if layer == depth:
        head = model.get_classifier() if hasattr(model, "get_classifier") else model.head
        return head, "flat", 0
    return sites[layer], layout, prefix


def cross_sample_warning(spec: NoiseSpec, order: str) -> str | None:
    """The warning for the paper's protocol: a cross-sample noise at evaluation (label leakage with sorted batches)."""
    if spec.apply == "train" or not spec.cross_sample:
        return None
    return (f"{spec.label()} noise mixes samples of a test batch at evaluation; with {order} batches a prediction "
            f"depends on the other test images" + (" of the same class (label leakage)" if order == "sorted" else ""))
