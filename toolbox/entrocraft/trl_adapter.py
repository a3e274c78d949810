"""Entrocraft inside TRL's `GRPOTrainer` (tested with trl 1.16).

`EntrocraftGRPOTrainer` overrides one method, `_generate_and_score_completions`, which returns the rollout batch
(advantages, completion mask, ...) that TRL then splits into micro-batches. After TRL has computed the batch and
its advantages, the subclass

1. computes the per-token entropy of the rollouts with the current policy, through TRL's own
   `_get_per_token_logps_and_entropies` (one extra no-grad forward pass),
2. reduces it to one batch entropy over all processes (`control.batch_entropy`, token-mean or seq-mean),
3. reads the band from the schedule at `state.global_step` (`control.BandSchedule`),
4. applies the paper's filter (`control.entrocraft_filter`: m = +1 above the band, -1 below, 0 inside; keep a
   rollout iff m * A >= 0): rejected rollouts get A = 0 and a zero loss mask (through TRL's `tool_mask` key, which
   TRL multiplies into the loss mask only, not the attention mask), and `num_items_in_batch` becomes the number of
   kept tokens, so token-normalised losses (`dapo`, TRL's default, `bnpo`, `cispo`, `vespo`) are normalised over
   the kept set (Eq. 5),
5. logs `entrocraft/entropy`, `entrocraft/band_low`, `entrocraft/band_high`, `entrocraft/mode`,
   `entrocraft/accepted_fraction` through the trainer's metrics.

`apply_entrocraft(batch, token_entropy, band)` is the batch-level hook on its own; it needs torch but not trl.
trl is imported only when `EntrocraftGRPOTrainer` is first looked up.
"""
from __future__ import annotations

import functools
import warnings

from toolbox.core.errors import UserInputError
from toolbox.entrocraft.control import BandSchedule, FilterResult, batch_entropy, entrocraft_filter

# Loss types whose normaliser is the number of masked-in tokens: with the rejected rows masked out they are
# normalised over the kept set exactly. The others ('grpo', 'sapo', 'luspo', 'dr_grpo') still give rejected rows
# zero loss, but divide by the full row count (or a constant), i.e. the step shrinks by the accepted fraction.
KEPT_SET_LOSS_TYPES = ("dapo", "bnpo", "cispo", "vespo")
_FORWARD_KEYS = ("pixel_values", "image_grid_thw", "num_images", "pixel_attention_mask", "spatial_shapes",
                 "num_tiles", "image_sizes", "token_type_ids", "mm_token_type_ids", "image_position_ids")


def loss_mask(batch: dict):
    """TRL's loss mask: completion_mask, times tool_mask when present."""
    mask = batch["completion_mask"]
    return mask if batch.get("tool_mask") is None else mask * batch["tool_mask"]


def apply_entrocraft(batch: dict, token_entropy=None, band: tuple[float, float] = (0.0, 0.0),
                     aggregation: str = "token-mean", entropy: float | None = None) -> tuple[dict, float, FilterResult]:
    """The batch-level hook: filter a TRL rollout batch (dict with `advantages` [B], `completion_mask` [B, L],
    optionally `tool_mask` [B, L]) by the Entrocraft rule. Returns (new batch, batch entropy, FilterResult).

    The batch entropy is `entropy` when given (e.g. already reduced over processes), else `control.batch_entropy`
    of `token_entropy` [B, L] under the loss mask. Rejected rollouts get advantage 0 and an all-zero `tool_mask`
    row; `num_items_in_batch` becomes the local kept-token count (the trainer replaces it with the global one).
    """
    import torch

    adv = batch["advantages"]
    if adv.dim() != 1:
        raise UserInputError(f"Entrocraft needs one advantage per rollout (shape [B]), got shape {tuple(adv.shape)}")
    mask = loss_mask(batch)
    if entropy is None:
        if token_entropy is None:
            raise UserInputError("apply_entrocraft needs token_entropy or a precomputed entropy")
        entropy = batch_entropy(token_entropy.detach().float().cpu().numpy(), mask.float().cpu().numpy(),
                                aggregation=aggregation)
    res = entrocraft_filter(adv.detach().float().cpu().numpy(), float(entropy), band)
    keep = torch.as_tensor(res.accept, device=adv.device)
    out = dict(batch)
    out["advantages"] = torch.where(keep, adv, torch.zeros_like(adv))
    base = batch.get("tool_mask")
    base = torch.ones_like(batch["completion_mask"]) if base is None else base
    out["tool_mask"] = base * keep.unsqueeze(1).to(base.dtype)
    out["num_items_in_batch"] = loss_mask(out).sum()
    return out, float(entropy), res


@functools.cache
def _trainer_class():
    import torch
    from trl import GRPOTrainer

    class EntrocraftGRPOTrainer(GRPOTrainer):
        """`GRPOTrainer` with the Entrocraft rejection filter (Li et al., Alg. 1) on every training batch.

        Extra keyword arguments: `entrocraft_schedule` (a `control.BandSchedule`; default: the linear band
        (0.6, 0.7) -> (0.4, 0.5) over `max_steps`), `entropy_aggregation` ('token-mean' | 'seq-mean').
        `entrocraft_history` holds one dict per filtered batch (step, entropy, band, mode, kept, total);
        `entrocraft_last` the last batch's pre-filter advantages and accept mask (local process).
        """

        def __init__(self, *args, entrocraft_schedule: BandSchedule | None = None,
                     entropy_aggregation: str = "token-mean", **kwargs):
            if entropy_aggregation not in ("token-mean", "seq-mean"):
                raise UserInputError(f"entropy_aggregation must be token-mean or seq-mean, got {entropy_aggregation!r}")
            super().__init__(*args, **kwargs)
            self.entrocraft_schedule = entrocraft_schedule
            self.entropy_aggregation = entropy_aggregation
            self.entrocraft_history: list[dict] = []
            self.entrocraft_last: dict | None = None
            if self.loss_type not in KEPT_SET_LOSS_TYPES:
                warnings.warn(f"loss_type={self.loss_type!r} does not normalise by the kept token count: rejected "
                              "rollouts get no gradient, but the loss is divided by all rows, not the kept set "
                              f"(use one of {', '.join(KEPT_SET_LOSS_TYPES)} for Eq. 5)", stacklevel=2)

        def _entrocraft_band(self) -> tuple[float, float]:
            if self.entrocraft_schedule is None:
                self.entrocraft_schedule = BandSchedule(total_steps=max(int(self.state.max_steps or 0), 1))
            return self.entrocraft_schedule.band(self.state.global_step)

        def _entrocraft_token_entropy(self, batch: dict):
            prompt_ids, completion_ids = batch["prompt_ids"], batch["completion_ids"]
            input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
            attention_mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
            extra = {k: batch[k] for k in _FORWARD_KEYS if batch.get(k) is not None}
            with torch.no_grad():
                _, entropies, _ = self._get_per_token_logps_and_entropies(
                    self.model, input_ids, attention_mask, completion_ids.size(1),
                    batch_size=self.args.per_device_train_batch_size, compute_entropy=True, **extra)
            return entropies

        def _global_entropy(self, token_entropy, mask) -> float:
            acc = self.accelerator
            h = acc.gather(acc.pad_across_processes((token_entropy * mask).float(), dim=1))
            w = acc.gather(acc.pad_across_processes(mask.float(), dim=1))
            return batch_entropy(h.cpu().numpy(), w.cpu().numpy(), aggregation=self.entropy_aggregation)

        def _generate_and_score_completions(self, inputs):
            batch = super()._generate_and_score_completions(inputs)
            if not self.model.training:  # evaluation batches are not filtered
                return batch
            token_entropy = self._entrocraft_token_entropy(batch)
            entropy = self._global_entropy(token_entropy, loss_mask(batch))
            band = self._entrocraft_band()
            advantages = batch["advantages"].detach().float().cpu().numpy()
            out, entropy, res = apply_entrocraft(batch, band=band, entropy=entropy)
            acc = self.accelerator
            out["num_items_in_batch"] = acc.gather(out["num_items_in_batch"].reshape(1)).sum()
            counts = acc.gather(torch.tensor([[res.kept, res.accept.size]], device=acc.device)).sum(0)
            kept, total = int(counts[0]), int(counts[1])
            metrics = self._metrics["train"]
            metrics["entrocraft/entropy"].append(entropy)
            metrics["entrocraft/band_low"].append(band[0])
            metrics["entrocraft/band_high"].append(band[1])
            metrics["entrocraft/mode"].append(float(res.mode))
            metrics["entrocraft/accepted_fraction"].append(kept / max(total, 1))
            self.entrocraft_history.append({"step": int(self.state.global_step), "entropy": entropy,
                                            "band_low": band[0], "band_high": band[1], "mode": res.mode,
                                            "kept": kept, "total": total})
            self.entrocraft_last = {"advantages": advantages, "accept": res.accept, "mode": res.mode}
            return out

    return EntrocraftGRPOTrainer


def __getattr__(name):
    if name == "EntrocraftGRPOTrainer":
        return _trainer_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
