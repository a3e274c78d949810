"""`train-rl`: RL fine-tuning of a causal LM on verifiable rewards with Entrocraft's entropy-band control.

One step (Alg. 1 of Li et al. around a PPO/GRPO learner, as in verl):
  1. draw prompts (a pure function of seed and step) and G rollouts each with temperature / top-p;
  2. reward +1 / -1 from the verifier; recompute old log-probs and per-token entropies with the learner (fused kernel);
  3. batch entropy H (token-mean, or seq-mean) and the band [h_low(t), h_high(t)] -> mode m;
  4. advantages (GRPO / RLOO / REINFORCE++ / GSPO) and the control: Entrocraft keeps rollouts with m*A >= 0 and
     trains on them only, normalised by their token count (Eq. 5; `filter_mode = paper`), switches to RAFT++ / NSR
     out of band (`release`), or, by default, switches toward the band's centre with probability |e| (`graded`,
     beyond the paper); the baselines change the loss or the advantages;
  5. PPO-clip epochs over minibatches with a low-variance KL (k3) to the frozen reference.
At the end, a band the controller could not reach at this lr is a warning (control.stall_warnings).
Every `eval_every` updates: mean@n, pass@k and distinct-correct@n on held-out prompts at two temperatures.
Every `ckpt_every` updates a checkpoint; `resume=True` continues from the last one with identical results.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Callable, Literal

import numpy as np
import torch
from pydantic import Field

from toolbox.core import config as settings
from toolbox.core.config import Backend, Count, Fraction, NonNegFloat, PosFloat, PosInt, Real, Seed
from toolbox.core.errors import UserInputError
from toolbox.core.executor import map_tasks
from toolbox.core.io import atomic_write_bytes, write_csv, write_json
from toolbox.core.rng import numpy_generator
from toolbox.entrocraft import advantages as adv_mod
from toolbox.entrocraft.control import (FILTER_MODES, SCHEDULE_KINDS, BandSchedule, band_reach_warnings, band_warning,
                                        batch_entropy, graded_mode, load_knots_csv, parse_knots, release_advantages,
                                        signal_scale, stall_warnings, theorem_condition, tracking_error)
from toolbox.entrocraft.epilogue import rejection_epilogue
from toolbox.entrocraft.fused_entropy import row_entropy
from toolbox.entrocraft.model import CharTokenizer, GPTConfig, TinyGPT, load_hf, pad_prompts, sample
from toolbox.entrocraft.passk import evaluate_samples
from toolbox.entrocraft.tasks import TASKS, Task, make_task, sample_indices

CONTROLS = ("none", "entrocraft", "entropy-loss", "clip-higher", "clip-cov", "kl-cov", "w-reinforce", "entropic")


@dataclass
class TrainConfig:
    task: Literal[TASKS] = "countdown"
    prompts: str = ""  # JSONL for task = jsonl
    verifier: str = "exact"  # exact | module:function
    test_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.2
    split_seed: Seed = 0
    model: str = ""  # a local Hugging Face folder; empty = the built-in GPT
    d_model: PosInt = 64
    n_layer: PosInt = 2
    n_head: PosInt = 4
    sft_steps: Count = 300  # supervised warm start on one solution per train instance
    sft_batch: PosInt = 128
    sft_lr: PosFloat = 3e-3
    # share of warm-start targets replaced by a random legal (mostly wrong) answer; None: the task's own
    # (Task.sft_wrong_fraction: 0.5, letterset 0.25)
    sft_wrong_fraction: Fraction | None = None
    steps: PosInt = 200
    prompts_per_step: PosInt = 64
    group_size: Annotated[int, Field(ge=2)] = 8
    temperature: PosFloat = 1.0
    top_p: Annotated[float, Field(gt=0, le=1)] = 1.0
    lr: PosFloat = 1e-3
    ppo_epochs: PosInt = 2
    minibatches: PosInt = 2
    clip_low: NonNegFloat = 0.2
    clip_high: NonNegFloat = 0.2
    kl_coef: NonNegFloat = 1e-3  # low-variance KL loss [P Table 4]
    reward_correct: Real = 1.0
    reward_wrong: Real = -1.0
    estimator: Literal[adv_mod.ESTIMATORS] = "grpo"
    control: Literal[CONTROLS] = "entrocraft"
    # graded (beyond the paper: release's estimators, switched in band with probability |e|, see control.graded_mode)
    # | paper (Alg. 1 on the estimator's advantages) | release (the authors' code: RAFT++ / NSR out of band)
    filter_mode: Literal[FILTER_MODES] = "graded"
    entropy_aggregation: Literal["token-mean", "seq-mean"] = "token-mean"
    schedule: Literal[SCHEDULE_KINDS] = "linear"
    band_start: Annotated[list[Real], Field(min_length=2, max_length=2)] = field(default_factory=lambda: [0.6, 0.7])
    band_end: Annotated[list[Real], Field(min_length=2, max_length=2)] = field(default_factory=lambda: [0.4, 0.5])
    band_knots: str = ""  # piecewise: "step:low:high,..."
    band_csv: str = ""  # csv: columns step,h_low,h_high
    band_relative: bool = False  # band edges are multiples of the post-warm-start entropy H0
    entropy_coef: NonNegFloat = 0.003  # entropy-loss baseline
    clip_higher: NonNegFloat = 0.28  # Clip-Higher's eps_high (DAPO)
    clip_cov_ratio: Fraction = 2e-4
    clip_cov_lb: float = 1.0
    clip_cov_ub: float = 5.0
    clip_cov_ppo_clip: NonNegFloat = 1.0  # Clip-Cov / KL-Cov runs set the PPO clip to 1.0
    kl_cov_ratio: Fraction = 2e-4
    kl_cov_coef: NonNegFloat = 1.0
    w_reinforce_weight: NonNegFloat = 0.1
    entropic_target: NonNegFloat = 0.5
    entropic_kp: NonNegFloat = 1.0
    entropic_ki: NonNegFloat = 0.01
    gspo_clip_low: NonNegFloat = 3e-4
    gspo_clip_high: NonNegFloat = 4e-4
    eval_every: PosInt = 25
    eval_prompts: PosInt = 256
    eval_n: PosInt = 16
    eval_temperatures: list[PosFloat] = field(default_factory=lambda: [1.0, 0.6])
    eval_top_p: Annotated[float, Field(gt=0, le=1)] = 1.0
    ckpt_every: PosInt = 25
    keep_checkpoints: PosInt = 3
    # the transient left out of the band-tracking figures: min(transient_fraction * steps, transient_max) steps
    transient_fraction: Fraction = 0.2
    transient_max: Count = 20
    tracking_tolerance: NonNegFloat = 0.05  # summary's near_band: share of post-transient steps within this of the band
    # an unreachable band is reported when the controller stays saturated for max(stall_fraction * steps,
    # stall_min_steps) steps while the distance to the band does not shrink (control.stall_warnings)
    stall_fraction: Fraction = 0.25
    stall_min_steps: PosInt = 5
    rollout_backend: Backend = "serial"  # serial | process | ray (through toolbox.core.executor.map_tasks)
    rollout_shards: PosInt = 1
    threads: Count = 1  # torch CPU threads (tiny models run best on one; 0 = torch's default)


def validate(cfg: TrainConfig) -> None:
    """Every setting against its schema (type, range, choices), then the checks across settings."""
    settings.validate(cfg)
    for name in ("band_start", "band_end"):
        low, high = getattr(cfg, name)
        if low > high:
            raise UserInputError(f"{name} is a [low, high] pair with low <= high, got [{low:g}, {high:g}]")
    if cfg.control == "entrocraft" and not cfg.band_relative and min(cfg.band_start[0], cfg.band_end[0]) < 0:
        raise UserInputError("an absolute entropy band cannot go below 0 nats")


def make_schedule(cfg: TrainConfig) -> BandSchedule:
    knots = ()
    if cfg.schedule == "piecewise":
        knots = parse_knots(cfg.band_knots)
    elif cfg.schedule == "csv":
        if not cfg.band_csv:
            raise UserInputError("schedule csv needs band_csv=FILE (columns step,h_low,h_high)")
        knots = load_knots_csv(cfg.band_csv)
    return BandSchedule(cfg.schedule, tuple(cfg.band_start), tuple(cfg.band_end), cfg.steps, knots)


# ----------------------------------------------------------------------------------------------------------- rollouts
@dataclass
class RolloutRequest:
    """One shard of rollout generation, self-contained so an executor worker (process / Ray) can run it."""

    model_config: GPTConfig | None
    model_path: str
    state: dict
    prompt_ids: torch.Tensor
    max_new: int
    eos_id: int
    pad_id: int
    temperature: float
    top_p: float
    seed: int


def _shard_seed(seed: int, *stream: int) -> int:
    return int(numpy_generator(seed, *stream).integers(0, 2**62))


def generate_rollouts(req: RolloutRequest) -> tuple[torch.Tensor, torch.Tensor]:
    """Rebuild the policy from its weights and sample the shard (the executor-side entry point)."""
    policy = TinyGPT(req.model_config) if req.model_config is not None else load_hf(req.model_path)[0]
    policy.load_state_dict(req.state)
    return _sample_shard(policy.eval(), req)


def _sample_shard(policy, req: RolloutRequest):
    gen = torch.Generator().manual_seed(req.seed)
    return sample(policy, req.prompt_ids, req.max_new, req.eos_id, req.pad_id, req.temperature, req.top_p, gen)


def _share(flags: np.ndarray, where: np.ndarray) -> float:
    """Share of rollouts selected by `where` whose flag is set (nan when none is selected)."""
    return float(flags[where].mean()) if where.any() else float("nan")


def _pad_right(t: torch.Tensor, width: int, value) -> torch.Tensor:
    return torch.nn.functional.pad(t, (0, width - t.shape[1]), value=value)


# ------------------------------------------------------------------------------------------------------- the trainer
class Trainer:
    def __init__(self, cfg: TrainConfig, out: Path, log: Callable[[str], None] = print, seed: int = 0,
                 device: str = "cpu"):
        validate(cfg)
        self.cfg, self.out, self.log, self.seed, self.device = cfg, Path(out), log, seed, torch.device(device)
        self.task: Task = make_task(cfg.task, cfg.test_fraction, cfg.split_seed, cfg.prompts or None, cfg.verifier)
        self.schedule = make_schedule(cfg)
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(seed)
        if cfg.model:
            self.policy, self.tok = load_hf(cfg.model)
            self.model_config = None
        else:
            self.tok = CharTokenizer(self.task.alphabet)
            self.model_config = GPTConfig(self.tok.vocab_size, self.prompt_len + self.task.max_answer_len + 1,
                                          cfg.d_model, cfg.n_layer, cfg.n_head)
            self.policy = TinyGPT(self.model_config)
        self.policy.to(self.device)
        self.reference = None
        self.optimizer = None
        self.alpha_state = 0.0
        self.h0 = float("nan")
        self.metrics: list[dict] = []
        self.evals: list[dict] = []
        self.warnings: list[str] = []
        self.eval_set = self.task.test[: cfg.eval_prompts]

    @functools.cached_property
    def prompt_len(self) -> int:
        return max(len(self.tok.encode_prompt(i.prompt)) for i in self.task.train + self.task.test)

    @property
    def max_new(self) -> int:
        return self.task.max_answer_len + 1

    def band_warnings(self) -> list[str]:
        """The schedule's impossible bands (control.band_reach_warnings), the release config's crossed default
        included; they go to the log and summary.json."""
        crossed = band_warning(*self.band(0))
        bands = [self.band(t) for t in range(self.cfg.steps + 1)]
        return ([crossed] if crossed else []) + [w for w in band_reach_warnings(bands, math.log(self.tok.vocab_size))
                                                  if not (crossed and "lower edge above the upper" in w)]

    def band(self, step: int) -> tuple[float, float]:
        low, high = self.schedule.band(step)
        return (low * self.h0, high * self.h0) if self.cfg.band_relative else (low, high)

    # ----------------------------------------------------------------------------------------------- sequences
    def _prompt_tensor(self, instances) -> torch.Tensor:
        return pad_prompts([self.tok.encode_prompt(i.prompt) for i in instances], self.prompt_len,
                           self.tok.pad_id).to(self.device)

    def rollouts(self, prompt_ids: torch.Tensor, temperature: float, top_p: float, seed: int, stream: int):
        """Sample every row of prompt_ids once, in `rollout_shards` shards seeded by (seed, stream, shard)."""
        shards = torch.tensor_split(prompt_ids, min(self.cfg.rollout_shards, prompt_ids.shape[0]))
        state = {k: v.detach().cpu().clone() for k, v in self.policy.state_dict().items()} \
            if self.cfg.rollout_backend != "serial" else {}
        reqs = [RolloutRequest(self.model_config, self.cfg.model, state, s.cpu() if state else s, self.max_new, self.tok.eos_id,
                               self.tok.pad_id, temperature, top_p, _shard_seed(seed, stream, i))
                for i, s in enumerate(shards)]
        self.policy.eval()
        if self.cfg.rollout_backend == "serial":
            parts = [_sample_shard(self.policy, r) for r in reqs]
        else:
            parts = [(q.to(self.device), m.to(self.device))
                     for q, m in map_tasks(generate_rollouts, reqs, backend=self.cfg.rollout_backend)]
        width = max(p[0].shape[1] for p in parts)
        seq = torch.cat([_pad_right(p[0], width, self.tok.pad_id) for p in parts])
        mask = torch.cat([_pad_right(p[1], width - self.prompt_len, False) for p in parts])
        return seq, mask

    def answers(self, seq: torch.Tensor, mask: torch.Tensor) -> list[str]:
        resp = seq[:, self.prompt_len:]
        return [self.tok.decode([t for t, m in zip(row.tolist(), mrow.tolist()) if m and t != self.tok.eos_id])
                for row, mrow in zip(resp, mask)]

    def token_stats(self, policy, seq: torch.Tensor, mask: torch.Tensor, temperature: float):
        """Per response token (flattened over the mask): entropy, log-prob of the sampled token (fused kernel)."""
        logits = policy(seq)[:, self.prompt_len - 1:-1].float() / temperature
        labels = seq[:, self.prompt_len:]
        entropy, logp, _ = row_entropy(logits[mask].contiguous(), labels[mask].contiguous())
        return entropy, logp

    # ----------------------------------------------------------------------------------------------- warm start
    def warm_start(self) -> dict:
        """Supervised warm start: cross-entropy on one random solution per train instance, a `sft_wrong_fraction`
        of them (the task's own share unless set) replaced by a random legal answer, so the policy starts confident on
        some wrong outputs [notes §6.3]."""
        cfg = self.cfg
        rng = numpy_generator(self.seed, 13)
        fraction = self.task.sft_wrong_fraction if cfg.sft_wrong_fraction is None else cfg.sft_wrong_fraction
        wrong = rng.random(len(self.task.train)) < (fraction if self.task.random_answer else 0.0)
        answers = [self.task.random_answer(i, rng) if w else
                   i.solutions[rng.integers(len(i.solutions))] if i.solutions else ""
                   for i, w in zip(self.task.train, wrong)]
        data = [(i, a) for i, a in zip(self.task.train, answers) if a]
        if not data:
            raise UserInputError("no reference answers for the warm start; set sft_steps=0")
        opt = torch.optim.Adam(self.policy.parameters(), lr=cfg.sft_lr)
        self.policy.train()
        loss = torch.tensor(float("nan"))
        for step in range(cfg.sft_steps):
            idx = sample_indices(len(data), cfg.sft_batch, self.seed, 10_000_000 + step)
            prompts = self._prompt_tensor([data[j][0] for j in idx])
            targets = [self.tok.encode(data[j][1]) + [self.tok.eos_id] for j in idx]
            width = max(map(len, targets))
            resp = torch.tensor([t + [self.tok.pad_id] * (width - len(t)) for t in targets], device=self.device)
            mask = torch.tensor([[k < len(t) for k in range(width)] for t in targets], device=self.device)
            seq = torch.cat([prompts, resp], 1)
            logits = self.policy(seq)[:, self.prompt_len - 1:-1]
            loss = torch.nn.functional.cross_entropy(logits[mask], resp[mask])
            opt.zero_grad()
            loss.backward()
            opt.step()
        return {"sft_steps": cfg.sft_steps, "sft_loss": float(loss.detach())}

    # ----------------------------------------------------------------------------------------------- evaluation
    @torch.no_grad()
    def evaluate(self, updates: int) -> list[dict]:
        cfg = self.cfg
        prompts = self._prompt_tensor(self.eval_set).repeat_interleave(cfg.eval_n, 0)
        rows = []
        for ti, temp in enumerate(cfg.eval_temperatures):
            seq, mask = self.rollouts(prompts, temp, cfg.eval_top_p, self.seed, 1_000_000 + 1000 * updates + ti)
            answers = self.answers(seq, mask)
            correct = np.array([self.task.verify(inst, a) for inst, a in
                                zip([i for i in self.eval_set for _ in range(cfg.eval_n)], answers)])
            res = evaluate_samples(correct.reshape(-1, cfg.eval_n),
                                   [answers[i:i + cfg.eval_n] for i in range(0, len(answers), cfg.eval_n)])
            h, _ = self.token_stats(self.policy, seq, mask, 1.0)
            row = {"updates": updates, "temperature": temp, "mean_at_n": res["mean_at_n"],
                   "distinct_correct": res["distinct_correct"], "token_entropy": float(h.mean())}
            row.update({f"pass@{k}": v for k, v in enumerate(res["pass_at_k"], 1)})
            rows.append(row)
        return rows

    # ----------------------------------------------------------------------------------------------- one RL step
    def step(self, t: int) -> dict:
        cfg, G = self.cfg, self.cfg.group_size
        start = time.perf_counter()
        idx = sample_indices(len(self.task.train), cfg.prompts_per_step, self.seed, t)
        insts = [self.task.train[j] for j in idx]
        prompts = self._prompt_tensor(insts).repeat_interleave(G, 0)
        seq, mask = self.rollouts(prompts, cfg.temperature, cfg.top_p, self.seed, t)
        answers = self.answers(seq, mask)
        ok = np.array([self.task.verify(insts[i // G], a) for i, a in enumerate(answers)])
        rewards = np.where(ok, cfg.reward_correct, cfg.reward_wrong)
        lengths = mask.sum(1).cpu().numpy()

        with torch.no_grad():
            self.policy.eval()
            token_h, old_logp = self.token_stats(self.policy, seq, mask, cfg.temperature)
            _, ref_logp = self.token_stats(self.reference, seq, mask, cfg.temperature)
        seq_of_tok = torch.arange(seq.shape[0], device=mask.device)[:, None].expand_as(mask)[mask]
        h_np, logp_np, seq_np = token_h.cpu().numpy(), old_logp.cpu().numpy(), seq_of_tok.cpu().numpy()
        h_seq = batch_entropy(h_np, np.ones(h_np.shape[0]), seq_np, "seq-mean")
        low, high = self.band(t)

        # advantages and the control (Alg. 1 for Entrocraft; the published rule for each baseline)
        alpha = float("nan")
        if cfg.control in ("w-reinforce", "entropic"):
            advantage = np.asarray(rewards, dtype=np.float64)   # raw rewards; reweighted below once H is known
        else:
            advantage = adv_mod.compute(cfg.estimator, rewards, G, lengths)
        # the fused kernel's epilogue: batch entropy, mode m, keep iff m * A >= 0, kept counts per prompt group
        adv_dev = torch.as_tensor(advantage, dtype=torch.float32, device=self.device)
        groups = torch.arange(len(rewards), device=self.device) // G
        epi = rejection_epilogue(token_h, seq_of_tok, adv_dev, (low, high), groups, cfg.prompts_per_step,
                                 cfg.entropy_aggregation)
        h_batch, mode = float(epi.entropy), int(epi.mode)
        keep = np.ones(len(rewards), dtype=bool)
        applied = mode if cfg.control == "entrocraft" else 0   # the mode the control acted on this step
        step_scale = 1.0
        if cfg.control == "w-reinforce":
            advantage = adv_mod.w_reinforce(rewards, cfg.w_reinforce_weight)
        elif cfg.control == "entropic":
            alpha, self.alpha_state = adv_mod.entropic_update(self.alpha_state, h_batch, cfg.entropic_target,
                                                              cfg.entropic_kp, cfg.entropic_ki)
            advantage = adv_mod.entropic(rewards, alpha)
        elif cfg.control == "entrocraft" and cfg.filter_mode == "paper":
            keep = epi.accept.cpu().numpy()
        elif cfg.control == "entrocraft" and cfg.filter_mode == "release":
            advantage = release_advantages(rewards, advantage, mode)
        elif cfg.control == "entrocraft":    # graded: the release estimators, switched with probability |e| in band
            applied = graded_mode(h_batch, low, high, numpy_generator(self.seed, 3_000_000 + t).random())
            advantage = release_advantages(rewards, advantage, applied)
            if applied:     # Eq. 5's 1/|S| over the rollouts the switched estimator trains on, the step damped
                keep = advantage != 0       # when fewer than one per prompt carry it (control.signal_scale)
                step_scale = signal_scale(int(keep.sum()), cfg.prompts_per_step)
                advantage = advantage * step_scale

        confident = theorem_condition(h_np, logp_np, seq_np, len(rewards))
        losses = self.update(t, seq, mask, seq_of_tok, old_logp, ref_logp, advantage, keep)
        return {"step": t, "h_low": low, "h_high": high, "entropy": h_batch, "entropy_seq_mean": h_seq,
                "mode": mode, "control_mode": applied, "step_scale": step_scale,
                "accepted_fraction": float(keep.mean()),
                "kept": int(keep.sum()), "groups_emptied": int((keep.reshape(-1, G).sum(1) == 0).sum()),
                "reward": float(rewards.mean()), "accuracy": float(ok.mean()),
                "response_length": float(lengths.mean()), "entropic_alpha": alpha,
                "confident_pos": _share(confident, advantage > 0), "confident_neg": _share(confident, advantage < 0),
                **losses,
                "seconds": time.perf_counter() - start}

    def _clip_range(self):
        cfg = self.cfg
        if cfg.estimator == "gspo":
            return cfg.gspo_clip_low, cfg.gspo_clip_high
        if cfg.control in ("clip-cov", "kl-cov"):
            return cfg.clip_cov_ppo_clip, cfg.clip_cov_ppo_clip
        if cfg.control == "clip-higher":
            return cfg.clip_low, cfg.clip_higher
        return cfg.clip_low, cfg.clip_high

    def update(self, t, seq, mask, seq_of_tok, old_logp, ref_logp, advantage, keep) -> dict:
        """PPO-clip epochs over minibatches of the kept rollouts; token-mean over kept tokens (Eq. 5's 1/|S|)."""
        cfg = self.cfg
        kept = np.flatnonzero(keep)
        stats = {"pg_loss": [], "kl": [], "clip_fraction": [], "policy_entropy": []}
        if kept.size == 0:
            return {k: float("nan") for k in stats}
        tok_start = np.concatenate([[0], np.cumsum(mask.sum(1).cpu().numpy())])
        adv_t = torch.as_tensor(advantage, dtype=torch.float32, device=self.device)
        gen = torch.Generator().manual_seed(_shard_seed(self.seed, 2_000_000 + t))
        low, high = self._clip_range()
        self.policy.train()
        for _ in range(cfg.ppo_epochs):
            order = kept[torch.randperm(kept.size, generator=gen).numpy()]
            for rows in np.array_split(order, min(cfg.minibatches, kept.size)):
                rows = np.sort(rows)
                tok = torch.from_numpy(np.concatenate([np.arange(tok_start[r], tok_start[r + 1]) for r in rows]))
                tok, rows_t = tok.to(self.device), torch.from_numpy(rows).to(self.device)
                h, logp = self.token_stats(self.policy, seq[rows_t], mask[rows_t], cfg.temperature)
                a = adv_t[seq_of_tok[tok]]
                log_ratio = logp - old_logp[tok]
                local_seq = torch.searchsorted(rows_t, seq_of_tok[tok])
                pg, clipped = self._policy_loss(log_ratio, logp, a, local_seq, len(rows), low, high, gen)
                kl_log = ref_logp[tok] - logp                      # low-variance KL (k3), clamped as verl
                kl = torch.clamp(kl_log.exp() - kl_log - 1, -10, 10).mean()
                loss = pg + cfg.kl_coef * kl
                if cfg.control == "entropy-loss":
                    loss = loss - cfg.entropy_coef * h.mean()
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                for k, v in (("pg_loss", pg), ("kl", kl), ("clip_fraction", clipped),
                             ("policy_entropy", h.detach().mean())):
                    stats[k].append(float(v.detach()))
        return {k: float(np.mean(v)) for k, v in stats.items()}

    def _policy_loss(self, log_ratio, logp, a, local_seq, n_seq, low, high, gen):
        cfg = self.cfg
        if cfg.estimator == "gspo":
            # GSPO: s_i = exp(mean_t log ratio), per token sg[s_i] * pi / sg[pi]; seq-mean-token-mean aggregation
            counts = torch.bincount(local_seq, minlength=n_seq).clamp_min(1).float()
            seq_lr = torch.zeros(n_seq, device=logp.device).index_add(0, local_seq, log_ratio.detach()) / counts
            ratio = torch.exp(seq_lr[local_seq] + logp - logp.detach())
            pg1, pg2 = -a * ratio, -a * torch.clamp(ratio, 1 - low, 1 + high)
            per_tok = torch.maximum(pg1, pg2)
            per_seq = torch.zeros(n_seq, device=logp.device).index_add(0, local_seq, per_tok) / counts
            return per_seq.mean(), (pg2 > pg1).float().mean()
        ratio = log_ratio.exp()
        pg1, pg2 = -a * ratio, -a * torch.clamp(ratio, 1 - low, 1 + high)
        clipped = pg2 > pg1
        if cfg.control == "clip-cov":       # verl compute_policy_loss_clip_cov
            cov = (a - a.mean()) * (logp - logp.detach().mean())
            cand = torch.nonzero((cov > cfg.clip_cov_lb) & (cov < cfg.clip_cov_ub) & ~clipped).flatten()
            n_clip = max(int(cfg.clip_cov_ratio * logp.numel()), 1)
            chosen = cand[torch.randperm(cand.numel(), generator=gen)[:n_clip].to(cand.device)]
            corr = torch.ones_like(logp)
            corr[chosen] = 0.0
            return (torch.maximum(pg1, pg2) * corr).mean(), (corr == 0).float().mean()
        if cfg.control == "kl-cov":         # verl compute_policy_loss_kl_cov: no clip, |log ratio| on top-k cov tokens
            cov = (a - a.mean()) * (logp.detach() - logp.detach().mean())
            top = torch.topk(cov, max(1, int(logp.numel() * cfg.kl_cov_ratio))).indices
            pg = pg1.clone()
            pg[top] = pg1[top] + cfg.kl_cov_coef * log_ratio[top].abs()
            return pg.mean(), torch.zeros((), device=logp.device)
        return torch.maximum(pg1, pg2).mean(), clipped.float().mean()

    # ----------------------------------------------------------------------------------------------- checkpoints
    @property
    def ckpt_dir(self) -> Path:
        return self.out / "checkpoints"

    def save_checkpoint(self, updates: int) -> None:
        state = {"updates": updates, "policy": self.policy.state_dict(), "reference": self.reference.state_dict(),
                 "optimizer": self.optimizer.state_dict(), "alpha_state": self.alpha_state, "h0": self.h0,
                 "metrics": self.metrics, "evals": self.evals, "config": dataclasses.asdict(self.cfg),
                 "seed": self.seed}
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(self.ckpt_dir / f"step_{updates:06d}.pt", buf.getvalue())
        atomic_write_bytes(self.ckpt_dir / "latest.pt", buf.getvalue())
        for old in sorted(self.ckpt_dir.glob("step_*.pt"))[:-self.cfg.keep_checkpoints]:
            old.unlink()

    def load_checkpoint(self) -> int:
        path = self.ckpt_dir / "latest.pt"
        if not path.is_file():
            raise UserInputError(f"--resume: no checkpoint in {self.ckpt_dir}")
        state = torch.load(path, weights_only=False, map_location=self.device)
        if state["config"] != dataclasses.asdict(self.cfg) or state["seed"] != self.seed:
            diff = sorted(k for k in state["config"] if state["config"][k] != dataclasses.asdict(self.cfg).get(k))
            raise UserInputError(f"--resume: settings differ from the checkpoint ({', '.join(diff) or 'seed'})")
        self.policy.load_state_dict(state["policy"])
        self.reference = copy.deepcopy(self.policy)
        self.reference.load_state_dict(state["reference"])
        self._make_optimizer()
        self.optimizer.load_state_dict(state["optimizer"])
        self.alpha_state, self.h0 = state["alpha_state"], state["h0"]
        self.metrics, self.evals = state["metrics"], state["evals"]
        return state["updates"]

    def _make_optimizer(self):
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.cfg.lr)

    # ----------------------------------------------------------------------------------------------- the run
    def write_outputs(self) -> None:
        write_csv(self.out / "metrics.csv", self.metrics)
        write_csv(self.out / "eval.csv", self.evals)

    def run(self, resume: bool = False, on_step: Callable[[int, dict], None] | None = None) -> dict:
        cfg = self.cfg
        start = time.perf_counter()
        warm = {}
        if resume:
            done = self.load_checkpoint()
            self.log(f"resumed from update {done}")
        else:
            warm = self.warm_start() if cfg.sft_steps > 0 else {}
            self.reference = copy.deepcopy(self.policy).eval()
            for p in self.reference.parameters():
                p.requires_grad_(False)
            self._make_optimizer()
            self.evals = self.evaluate(0)
            self.h0 = self._initial_entropy()
            done = 0
            self.save_checkpoint(0)
        self.warnings = self.band_warnings() if cfg.control == "entrocraft" else []
        for warning in self.warnings:
            self.log(f"warning: {warning}")
        for t in range(done, cfg.steps):
            row = self.step(t)
            self.metrics.append(row)
            updates = t + 1
            if updates % cfg.eval_every == 0 or updates == cfg.steps:
                self.evals.extend(self.evaluate(updates))
            if updates % cfg.ckpt_every == 0 or updates == cfg.steps:
                self.save_checkpoint(updates)
            self.write_outputs()
            if on_step:
                on_step(t, row)
        self.write_outputs()
        if cfg.control == "entrocraft":
            stalls = stall_warnings(*([r[k] for r in self.metrics] for k in ("entropy", "h_low", "h_high", "mode")),
                                    self.stall_window, cfg.lr)
            for warning in stalls:
                self.log(f"warning: {warning}")
            self.warnings += stalls
        return self.summary(warm, time.perf_counter() - start)

    @property
    def stall_window(self) -> int:
        """Steps of saturated control without progress that make a band 'not reachable' (stall_warnings)."""
        return max(math.ceil(self.cfg.stall_fraction * self.cfg.steps), self.cfg.stall_min_steps)

    def _initial_entropy(self) -> float:
        """H0: the batch entropy of the warm-started policy on the first step's rollouts."""
        cfg = self.cfg
        idx = sample_indices(len(self.task.train), cfg.prompts_per_step, self.seed, 0)
        prompts = self._prompt_tensor([self.task.train[j] for j in idx]).repeat_interleave(cfg.group_size, 0)
        seq, mask = self.rollouts(prompts, cfg.temperature, cfg.top_p, self.seed, 0)
        with torch.no_grad():
            h, _ = self.token_stats(self.policy, seq, mask, cfg.temperature)
        return float(h.mean())

    def summary(self, warm: dict, seconds: float) -> dict:
        m = self.metrics
        h = [r["entropy"] for r in m]
        skip = min(int(self.cfg.transient_fraction * len(m)), self.cfg.transient_max)
        final = {r["temperature"]: r for r in self.evals if r["updates"] == self.evals[-1]["updates"]}
        first = {r["temperature"]: r for r in self.evals if r["updates"] == 0}
        return {"task": self.cfg.task, "control": self.cfg.control, "estimator": self.cfg.estimator,
                "filter_mode": self.cfg.filter_mode, "seed": self.seed, "steps": len(m), "h0": self.h0,
                "entropy_first": h[0] if h else None, "entropy_final": h[-1] if h else None,
                "entropy_min": min(h) if h else None,
                "tracking": tracking_error(h, [r["h_low"] for r in m], [r["h_high"] for r in m], skip,
                                           self.cfg.tracking_tolerance),
                "transient_steps": skip,
                "accepted_fraction_mean": float(np.mean([r["accepted_fraction"] for r in m])) if m else None,
                "reward_final": float(np.mean([r["reward"] for r in m[-10:]])) if m else None,
                "eval_initial": first, "eval_final": final, "seconds": seconds,
                "warnings": self.warnings, **warm}


def train(cfg: TrainConfig, out: Path, seed: int = 0, log: Callable[[str], None] = print, resume: bool = False,
          on_step: Callable[[int, dict], None] | None = None, device: str = "cpu") -> dict:
    """Run (or resume) one training run into `out`; writes metrics.csv, eval.csv, checkpoints, plots, summary.json."""
    from toolbox.entrocraft.plots import plot_run

    trainer = Trainer(cfg, out, log, seed, device)
    summary = trainer.run(resume=resume, on_step=on_step)
    plot_run(out, trainer.metrics, trainer.evals, title=f"{cfg.control} / {cfg.estimator} (seed {seed})")
    write_json(out / "summary.json", summary)
    return summary


def _seed_run(task: tuple) -> dict:
    cfg, folder, seed, device = task
    return train(cfg, Path(folder), seed=seed, log=lambda _: None, device=device)


def run_seeds(cfg: TrainConfig, out: Path, seeds: list[int], backend: str = "serial", device: str = "cpu") -> list[dict]:
    """One run per seed in out/seed_<s>, through the executor (serial / process / ray give identical results)."""
    if not seeds:
        raise UserInputError("--seeds needs at least one seed")
    return map_tasks(_seed_run, [(cfg, str(out / f"seed_{s}"), s, device) for s in seeds], backend=backend)
