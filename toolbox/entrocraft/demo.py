"""`toolbox demo` entry: a short train-rl run on the letterset testbed (Entrocraft's graded rule, a band held with a
KL anchor; the reward rises) plus the theory check."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from toolbox.core.io import write_csv
from toolbox.demo import check
from toolbox.entrocraft.model import CharTokenizer
from toolbox.entrocraft.tasks import TESTBED_SETTINGS, make_task
from toolbox.entrocraft.theory import theory_table
from toolbox.entrocraft.trainer import TrainConfig, train

WINDOW = 5  # steps in each of the first and last reward windows


def reward_rise(rewards: list[float], rollouts_per_step: int, window: int = WINDOW) -> tuple[float, float, float]:
    """(first window's mean reward, last window's, binomial SE of their difference). A +-1 reward with accuracy a
    has mean 2a - 1 and, over n rollouts, SE 2 sqrt(a (1 - a) / n); the two windows' SEs add in quadrature."""
    first, last = np.mean(rewards[:window]), np.mean(rewards[-window:])
    n = window * rollouts_per_step
    se = math.sqrt(sum((1 - r * r) / n for r in (first, last)))   # 4 a (1 - a) = 1 - (2a - 1)^2
    return float(first), float(last), se


def run_demo(out: Path, seed: int = 0, device: str = "cpu", log=print) -> dict:
    # The testbed (docs/entrocraft.md, "Study"), 40 steps x 16 prompts. The band (x H0) comes down from (0.9, 1.0)
    # to (0.6, 0.7) in 20 steps and stays there, around the entropy of a policy uniform over the correct strings;
    # kl_coef 0.2 is the anchor that keeps the entropy from falling through it (on this task both of graded's
    # levers lower the entropy). GRPO at the same kl_coef holds this band nearly as well (5 seeds: 92% vs 97% of
    # the steps within 0.05 nats; docs/entrocraft.md, "Study").
    cfg = TrainConfig(**{**TESTBED_SETTINGS, "prompts_per_step": 16, "steps": 40, "kl_coef": 0.2,
                         "schedule": "piecewise", "band_relative": True,
                         "band_knots": "0:0.9:1.0,20:0.6:0.7,40:0.6:0.7", "eval_prompts": 64, "eval_n": 8,
                         "eval_temperatures": [1.0], "eval_every": 40, "ckpt_every": 40})
    rows: list[dict] = []
    summary = train(cfg, out, seed=seed, log=log, device=device, on_step=lambda _, row: rows.append(row))
    theory = theory_table()
    write_csv(out / "theory.csv", theory)
    tr, k0 = summary["tracking"], theory[0]
    first, last, se = reward_rise([r["reward"] for r in rows], cfg.prompts_per_step * cfg.group_size)
    entropy = [r["entropy"] for r in rows]
    log_v = math.log(CharTokenizer(make_task(cfg.task).alphabet).vocab_size)
    held0, held1 = summary["eval_initial"][1.0]["mean_at_n"], summary["eval_final"][1.0]["mean_at_n"]
    return {"headline": f"Entrocraft (graded, kl_coef {cfg.kl_coef:g}) on letterset, {summary['steps']} steps: "
                        f"entropy {summary['h0']:.2f} -> {summary['entropy_final']:.2f} nats, within 0.05 of the band "
                        f"((0.9, 1.0) -> (0.6, 0.7) x H0) {tr['near_band']:.0%} of steps after "
                        f"{summary['transient_steps']}; reward "
                        f"{first:+.2f} -> {last:+.2f} (first/last {WINDOW} steps, {(last - first) / se:.0f} SE), "
                        f"held-out mean@8 {held0:.2f} -> {held1:.2f}; theory dH(k=0) {k0['actual']:+.4e} "
                        f"(ref -1.5812e-03)",
            "entropy_final": summary["entropy_final"], "in_band": tr["in_band"], "near_band": tr["near_band"],
            "reward_first": first, "reward_last": last, "reward_rise_se": se, "mean_at_8": held1,
            "theory_sign_correct": all(r["sign_correct"] for r in theory),
            "checks": [
                # issue #14's tracking criterion: >= 90% of the post-transient steps within 0.05 nats of the band
                # (|0.9 - 1| <= 0.1 holds in floating point; 0.95 +- 0.05 would reject 1.0, by 4e-17)
                check("share of steps within 0.05 nats of the band", tr["near_band"], 1.0, 0.1),
                # the reward rises by more than 3 binomial standard errors of the two windows (reward_rise)
                check("reward rise above 3 SE (1 = yes)", float(last - first > 3 * se), 1.0, 0.0),
                # a token entropy lies in [0, log V]
                check("lowest step entropy in [0, log V]", min(entropy), log_v / 2, log_v / 2),
                check("highest step entropy in [0, log V]", max(entropy), log_v / 2, log_v / 2),
                # Theorem 1's one-step dH at k = 0 for logits [2, 1, 0, -1] (docs/entrocraft.md), to 4 printed digits
                check("theory dH(k=0)", k0["actual"], -1.5812e-03, 5e-8)]}
