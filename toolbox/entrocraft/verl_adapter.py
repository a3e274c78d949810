"""Entrocraft inside upstream verl's PPO/GRPO trainers (tested with verl 0.9.1).

Set `algorithm.adv_estimator=entrocraft` and call `install()` in the process that runs the trainer (or set
`VERL_USE_EXTERNAL_MODULES=toolbox.entrocraft.verl_plugin`, which verl imports in every process it starts).

verl's estimator registry (`core_algos.register_adv_est`) passes an estimator the rewards, the response mask, the
algorithm config and the group ids, but not the batch entropy, and an estimator can only return advantages, not a
new loss mask. `install()` therefore registers the estimator and wraps four verl functions, each only for
`adv_estimator == "entrocraft"` (every other estimator passes through untouched):

1. `ray_trainer.RayPPOTrainer._compute_old_log_prob` (legacy trainer, `trainer.use_v1=false`): the per-token
   entropies it returns are popped by `fit` before the advantage step; the wrapper keeps a reference under
   `entrocraft_entropys` (not popped) and stamps `trainer.global_steps` into `meta_info`.
2. `ray_trainer.compute_advantage` (legacy; `fit` looks it up in the module at call time) and
3. `v1.utils.compute_advantage` (the v1 trainer's copy of the same name): for our estimator they call
   `entrocraft_step` (base advantages, batch entropy, band at the global step, mode, the rule) and write
   `advantages`, `returns` and a new `response_mask` tensor (never in place: verl's mask can be a view of the
   attention mask) in which the rejected rollouts' rows are zero, so they take no policy-gradient, KL-loss or
   entropy-loss term and leave the token-mean denominator (Eq. 5's 1/|S|).
4. `v1.trainer_base.PPOTrainer._compute_advantage` (v1 trainer, the default): it reads the `entropy` field that
   `_compute_old_log_prob` already wrote to the TransferQueue, hands it to (3), then writes the new
   `response_mask` back to the TransferQueue (as verl's own rollout-correction rejection does) and logs
   `entrocraft/*` metrics.

`install()` and `uninstall()` are idempotent; `uninstall()` restores the original objects and unregisters the
estimator. The band, rule and base estimator come from `algorithm.entrocraft` (see `settings_from_config`).
`entrocraft_step` is the whole algorithm on torch tensors and needs no verl.
"""
from __future__ import annotations

import contextvars
import functools
import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from toolbox.core.errors import UserInputError
from toolbox.entrocraft import advantages as adv_mod
from toolbox.entrocraft.control import (
    BandSchedule,
    batch_entropy,
    controller_mode,
    entrocraft_filter,
    load_knots_csv,
    parse_knots,
    release_advantages,
)

if TYPE_CHECKING:
    import torch

ESTIMATOR = "entrocraft"
ENTROPY_KEY = "entrocraft_entropys"      # legacy trainer: the token entropies, kept past fit's pop("entropys")
STEP_KEY = "entrocraft_global_step"      # legacy trainer: meta_info key with trainer.global_steps
_ORIGINAL = "__entrocraft_original__"
RULES = ("paper", "release")             # control.FILTER_MODES' deterministic rules (graded needs a seeded draw)

history: list[dict] = []   # one row per filtered batch in this process: step, entropy, band, mode, kept, total
_pending: contextvars.ContextVar = contextvars.ContextVar("entrocraft_pending", default=None)


@dataclass(frozen=True)
class VerlSettings:
    """`algorithm.entrocraft.*`: the base estimator (advantages.py), the rule (paper: Alg. 1's rejection; release:
    RAFT++/NSR out of band, nothing rejected), the band schedule and the entropy aggregation."""

    base: str = "grpo"
    filter_mode: str = "paper"
    aggregation: str = "token-mean"
    schedule: BandSchedule = field(default_factory=BandSchedule)

    def __post_init__(self):
        if self.base not in adv_mod.ESTIMATORS:
            raise UserInputError(f"entrocraft.base must be one of {', '.join(adv_mod.ESTIMATORS)}, got {self.base!r}")
        if self.filter_mode not in RULES:
            raise UserInputError(f"entrocraft.filter_mode must be one of {', '.join(RULES)} in the verl adapter, "
                                 f"got {self.filter_mode!r}")
        if self.aggregation not in ("token-mean", "seq-mean"):
            raise UserInputError(f"entrocraft.aggregation must be token-mean or seq-mean, got {self.aggregation!r}")


_KEYS = {"base", "filter_mode", "aggregation", "schedule", "start", "end", "total_steps", "knots", "csv"}


def settings_from_config(config) -> VerlSettings:
    """VerlSettings from verl's algorithm config (DictConfig, AlgoConfig or dict): the keys under `entrocraft`
    (base, filter_mode, aggregation, schedule, start, end, total_steps, knots 'step:low:high,...', csv FILE);
    anything missing takes the toolbox default. `norm_adv_by_std_in_grpo=False` (Dr. GRPO) is not supported."""
    if config is not None and not config.get("norm_adv_by_std_in_grpo", True):
        raise UserInputError("the entrocraft estimator needs norm_adv_by_std_in_grpo=True (Dr. GRPO is not supported)")
    raw = (config.get("entrocraft", None) if config is not None else None) or {}
    raw = {k: raw[k] for k in raw}
    unknown = set(raw) - _KEYS
    if unknown:
        raise UserInputError(f"unknown algorithm.entrocraft keys {sorted(unknown)}; known: {sorted(_KEYS)}")
    d = BandSchedule()
    kind = str(raw.get("schedule", "csv" if raw.get("csv") else d.kind))
    knots = (load_knots_csv(raw["csv"]) if kind == "csv" and raw.get("csv") else
             parse_knots(str(raw["knots"])) if raw.get("knots") else ())
    try:
        start, end = (tuple(float(v) for v in raw.get(k, getattr(d, k))) for k in ("start", "end"))
        total_steps = int(raw.get("total_steps", d.total_steps))
    except (TypeError, ValueError) as exc:
        raise UserInputError(f"algorithm.entrocraft band settings: {exc}") from None
    if len(start) != 2 or len(end) != 2:
        raise UserInputError("algorithm.entrocraft.start and .end must be [low, high] pairs")
    sched = BandSchedule(kind, start, end, total_steps, knots)
    return VerlSettings(str(raw.get("base", "grpo")), str(raw.get("filter_mode", "paper")),
                        str(raw.get("aggregation", "token-mean")), sched)


@dataclass(frozen=True)
class StepResult:
    advantages: torch.Tensor        # [B, L] float32, zero outside the new response mask
    response_mask: torch.Tensor     # [B, L], rejected rows zeroed
    entropy: float
    band: tuple[float, float]
    mode: int
    accept: np.ndarray              # bool [B]


def group_ids(index) -> np.ndarray:
    """verl's per-row prompt uids -> dense group ids 0..n-1."""
    return np.unique(np.asarray(index, dtype=object).astype(str), return_inverse=True)[1].reshape(-1)


def base_advantages(rewards, gid, lengths, estimator: str = "grpo") -> np.ndarray:
    """advantages.py's estimator over verl's groups, which need not be contiguous (verl's balance_batch reorders
    rows): sort by group, compute on [n_groups, G], scatter back. All groups must have the same size G >= 2."""
    gid = np.asarray(gid)
    sizes = np.bincount(gid)
    if sizes.min() != sizes.max():
        raise UserInputError(f"the entrocraft estimator needs equal group sizes (rollout.n), got sizes "
                             f"{sorted(set(sizes.tolist()))}")
    order = np.argsort(gid, kind="stable")
    out = np.empty(len(gid), dtype=np.float64)
    out[order] = adv_mod.compute(estimator, np.asarray(rewards, dtype=np.float64)[order], int(sizes[0]),
                                 np.asarray(lengths, dtype=np.float64)[order])
    return out


def entrocraft_step(token_level_rewards, response_mask, index, token_entropy, band: tuple[float, float],
                    settings: VerlSettings = VerlSettings()) -> StepResult:
    """One batch: outcome reward r = sum_t token_level_rewards (as verl's GRPO), the base estimator's A per
    rollout, the batch entropy H of `token_entropy` under `response_mask`, m = 1[H > h_high] - 1[H < h_low]
    (Alg. 1 step 2). paper: keep iff m*A >= 0 (step 3), rejected rows get A = 0 and a zero mask row. release:
    RAFT++ (m = +1) / NSR (m = -1) raw-reward advantages, every row kept [R core_algos L342-379]."""
    import torch

    mask = response_mask
    rewards = token_level_rewards.detach().sum(-1).double().cpu().numpy()
    gid = group_ids(index)
    base = base_advantages(rewards, gid, mask.detach().sum(-1).cpu().numpy(), settings.base)
    entropy = batch_entropy(token_entropy.detach().double().cpu().numpy(), mask.detach().double().cpu().numpy(),
                            aggregation=settings.aggregation)
    if settings.filter_mode == "paper":
        res = entrocraft_filter(base, entropy, band, gid)
        mode, accept, row_adv = res.mode, res.accept, np.where(res.accept, base, 0.0)
    else:
        mode = controller_mode(entropy, *band)
        accept, row_adv = np.ones(len(base), dtype=bool), release_advantages(rewards, base, mode)
    keep = torch.as_tensor(accept, device=mask.device)
    new_mask = mask * keep[:, None].to(mask.dtype)
    adv = torch.as_tensor(row_adv, dtype=torch.float32, device=mask.device)[:, None] * new_mask
    return StepResult(adv, new_mask, float(entropy), band, int(mode), accept)


def band_at(settings: VerlSettings, global_steps) -> tuple[float, float]:
    """The band at verl's `global_steps`, which counts from 1 at the first update: t = global_steps - 1."""
    if global_steps is None:
        raise UserInputError("the entrocraft estimator got no global step: call verl_adapter.install() before the "
                             "trainer runs")
    return settings.schedule.band(max(int(global_steps) - 1, 0))


def compute_entrocraft_advantage(token_level_rewards, response_mask, index=None, config=None, token_entropy=None,
                                 global_steps=None, **kwargs):
    """verl's estimator interface ((advantages, returns), both [B, L]), registered as 'entrocraft'. verl does not
    pass the entropy (`token_entropy`) or the step; the hooks that `install()` puts in do, and also apply the new
    response mask, which this interface cannot return."""
    if token_entropy is None:
        raise UserInputError("verl called the entrocraft estimator without the token entropies: call "
                             "toolbox.entrocraft.verl_adapter.install() in the trainer's process "
                             "(or set VERL_USE_EXTERNAL_MODULES=toolbox.entrocraft.verl_plugin)")
    if index is None:
        raise UserInputError("the entrocraft estimator needs the group ids (verl's 'uid' non-tensor field)")
    settings = settings_from_config(config)
    res = entrocraft_step(token_level_rewards, response_mask, index, token_entropy,
                          band_at(settings, global_steps), settings)
    return res.advantages, res.advantages


def _is_ours(adv_estimator) -> bool:
    return getattr(adv_estimator, "value", adv_estimator) == ESTIMATOR


def _apply(data, config, token_entropy, global_steps) -> StepResult:
    """Filter one verl DataProto in place of verl's estimator call; returns the step's result."""
    if "response_mask" not in data.batch.keys():  # noqa: SIM118 (verl's style; older tensordicts have no `in`)
        from verl.trainer.ppo.ray_trainer import compute_response_mask
        data.batch["response_mask"] = compute_response_mask(data)
    if token_entropy is None:
        raise UserInputError("Entrocraft found no token entropies in the batch: verl computes them with the old "
                             "log-probs, which rollout_correction.bypass_mode skips (not supported)")
    if "uid" not in data.non_tensor_batch:
        raise UserInputError("the entrocraft estimator needs the group ids (verl's 'uid' non-tensor field)")
    settings = settings_from_config(config)
    band = band_at(settings, global_steps)
    res = entrocraft_step(data.batch["token_level_rewards"], data.batch["response_mask"],
                          data.non_tensor_batch["uid"], token_entropy, band, settings)
    data.batch["advantages"] = res.advantages
    data.batch["returns"] = res.advantages
    data.batch["response_mask"] = res.response_mask
    history.append({"step": int(global_steps), "entropy": res.entropy, "band_low": band[0], "band_high": band[1],
                    "mode": res.mode, "kept": int(res.accept.sum()), "total": int(res.accept.size)})
    return res


def step_metrics(res: StepResult) -> dict:
    return {"entrocraft/entropy": res.entropy, "entrocraft/band_low": res.band[0],
            "entrocraft/band_high": res.band[1], "entrocraft/mode": float(res.mode),
            "entrocraft/accepted_fraction": float(res.accept.mean())}


def _wrap_compute_advantage(orig):
    sig = inspect.signature(orig)

    @functools.wraps(orig)
    def compute_advantage(data, adv_estimator, *args, **kwargs):
        if not _is_ours(adv_estimator):
            return orig(data, adv_estimator, *args, **kwargs)
        config = sig.bind(data, adv_estimator, *args, **kwargs).arguments.get("config")
        pending = _pending.get()
        if ENTROPY_KEY in data.batch.keys():  # noqa: SIM118 (verl's style)  legacy trainer: kept by the hook
            token_entropy, step = data.batch.pop(ENTROPY_KEY), data.meta_info.pop(STEP_KEY, None)
        elif pending is not None:              # v1 trainer: fetched by the _compute_advantage hook
            token_entropy, step = pending["token_entropy"], pending["global_steps"]
        else:
            token_entropy, step = None, None
        res = _apply(data, config, token_entropy, step)
        if pending is not None:
            pending["result"] = res
        return data

    return compute_advantage


def _wrap_legacy_old_log_prob(orig):
    @functools.wraps(orig)
    def _compute_old_log_prob(self, batch):
        old_log_prob, mfu = orig(self, batch)
        if _is_ours(self.config.algorithm.adv_estimator):
            old_log_prob.batch[ENTROPY_KEY] = old_log_prob.batch["entropys"]
            old_log_prob.meta_info[STEP_KEY] = int(self.global_steps)
        return old_log_prob, mfu

    return _compute_old_log_prob


def _wrap_v1_compute_advantage(orig):
    @functools.wraps(orig)
    def _compute_advantage(self, batch, metrics):
        if not _is_ours(self.config.algorithm.adv_estimator):
            return orig(self, batch, metrics=metrics)
        import transfer_queue as tq
        from tensordict import TensorDict
        from verl.workers.utils.padding import response_to_nested

        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id,
                               select_fields=["entropy", "response_mask"])
        nested_mask = data["response_mask"]
        pending = {"token_entropy": data.to_padded_tensor()["entropy"], "global_steps": self.global_steps}
        token = _pending.set(pending)
        try:
            batch = orig(self, batch, metrics=metrics)
        finally:
            _pending.reset(token)
        res = pending.get("result")
        if res is None:
            raise UserInputError("the entrocraft hook did not run: verl's v1 compute_advantage was not patched")
        fields = TensorDict({"response_mask": response_to_nested(res.response_mask, nested_mask)},
                            batch_size=len(batch))
        batch = tq.kv_batch_put(keys=batch.keys, partition_id=batch.partition_id, fields=fields)
        metrics.update(step_metrics(res))
        return batch

    return _compute_advantage


def _targets() -> list[tuple[object, str, object]]:
    """(owner, attribute, wrapper factory) for every verl object the hook replaces; the v1 ones only when the v1
    trainer imports (it needs the TransferQueue package)."""
    from verl.trainer.ppo import ray_trainer

    targets = [(ray_trainer, "compute_advantage", _wrap_compute_advantage),
               (ray_trainer.RayPPOTrainer, "_compute_old_log_prob", _wrap_legacy_old_log_prob)]
    try:
        from verl.trainer.ppo.v1 import trainer_base
        from verl.trainer.ppo.v1 import utils as v1_utils
    except ImportError:
        return targets
    return targets + [(v1_utils, "compute_advantage", _wrap_compute_advantage),
                      (trainer_base.PPOTrainer, "_compute_advantage", _wrap_v1_compute_advantage)]


def install() -> None:
    """Register the 'entrocraft' estimator and put the hooks in (idempotent)."""
    from verl.trainer.ppo import core_algos

    core_algos.register_adv_est(ESTIMATOR)(compute_entrocraft_advantage)
    for owner, name, wrap in _targets():
        current = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        if getattr(current, _ORIGINAL, None) is None:
            patched = wrap(current)
            setattr(patched, _ORIGINAL, current)
            setattr(owner, name, patched)


def uninstall() -> None:
    """Restore verl's original functions and unregister the estimator (idempotent)."""
    from verl.trainer.ppo import core_algos

    if core_algos.ADV_ESTIMATOR_REGISTRY.get(ESTIMATOR) is compute_entrocraft_advantage:
        del core_algos.ADV_ESTIMATOR_REGISTRY[ESTIMATOR]
    for owner, name, _ in _targets():
        current = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        original = getattr(current, _ORIGINAL, None)
        if original is not None:
            setattr(owner, name, original)


def installed() -> bool:
    from verl.trainer.ppo import core_algos

    return (core_algos.ADV_ESTIMATOR_REGISTRY.get(ESTIMATOR) is compute_entrocraft_advantage
            and all(getattr(getattr(o, n), _ORIGINAL, None) is not None for o, n, _ in _targets()))
