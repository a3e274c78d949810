"""The default `train-rl` controller holds bands that the docs and the other tests do not use (issue #14): short
trainings against a cosine absolute band, a relative step band and a constant band, each >= 90% of the steps after
the transient within +-0.05 nats of the band; and a band far out of reach at a tiny learning rate is reported."""
from __future__ import annotations

import dataclasses
import re

import pytest

from toolbox.entrocraft.trainer import TrainConfig, Trainer

SHORT = dict(steps=40, prompts_per_step=24, eval_every=10 ** 6, eval_prompts=4, eval_n=2, eval_temperatures=[1.0],
             ckpt_every=10 ** 6, sft_steps=300)
BANDS = {
    "cosine-abs": dict(schedule="cosine", band_start=[0.62, 0.74], band_end=[0.42, 0.54]),
    "step-rel": dict(schedule="piecewise", band_knots="0:0.85:1.0,19:0.85:1.0,20:0.7:0.85", band_relative=True),
    "constant-abs": dict(schedule="constant", band_start=[0.5, 0.62]),
}


def _warm_state(seed: int) -> dict:
    """The warm-started policy of a seed, built once and shared by the band runs (the warm start depends on the
    seed only, so each run starts where it would with its own sft_steps)."""
    tr = Trainer(TrainConfig(**SHORT), "unused", lambda _: None, seed)
    tr.warm_start()
    return {k: v.clone() for k, v in tr.policy.state_dict().items()}


@pytest.fixture(scope="module")
def warm():
    return {}


def _tracking(tmp_path, warm, band: str, seed: int, size: dict | None = None) -> dict:
    if seed not in warm:
        warm[seed] = _warm_state(seed)
    cfg = TrainConfig(**{**SHORT, **(size or {}), **BANDS[band]})
    assert cfg.filter_mode == TrainConfig().filter_mode                    # the default rule
    tr = Trainer(dataclasses.replace(cfg, sft_steps=0), tmp_path / f"{band}_{seed}", lambda _: None, seed)
    tr.policy.load_state_dict(warm[seed])
    summary = tr.run()
    assert summary["warnings"] == []                                         # reachable: no warning
    return summary["tracking"]


@pytest.mark.parametrize("band", list(BANDS))
def test_default_controller_holds_unseen_bands(tmp_path, warm, band):
    tracking = _tracking(tmp_path, warm, band, 0)
    assert tracking["steps"] == 32 and tracking["near_band"] >= 0.9, tracking


# The bar, at the size of the measured table in docs/entrocraft.md (60 steps x 32 prompts): >= 90% of the
# post-transient steps of three seeds within +-0.05 of the band. Per seed at 24 prompts the batch entropy's noise
# (sd ~0.04) makes single runs right after a band jump miss by a few steps.
FULL = dict(steps=60, prompts_per_step=32)


@pytest.mark.slow
@pytest.mark.parametrize("band", list(BANDS))
def test_default_controller_holds_unseen_bands_over_three_seeds(tmp_path, band):
    near = [_tracking(tmp_path, {}, band, seed, FULL)["near_band"] for seed in (0, 1, 2)]
    assert sum(near) / 3 >= 0.9, near


def test_far_band_at_a_tiny_learning_rate_is_reported_as_unreachable(tmp_path):
    """A possible band (between 0 and log V) that the policy cannot reach at lr 1e-6: the controller sits at
    m = +1 for the whole run and the warning names the band, the steps and the remedy."""
    cfg = TrainConfig(**{**SHORT, "steps": 12, "prompts_per_step": 4, "group_size": 4, "sft_steps": 20,
                         "sft_batch": 32, "d_model": 16, "n_head": 2, "n_layer": 1, "lr": 1e-6,
                         "schedule": "constant", "band_start": [0.05, 0.1]})
    tr = Trainer(cfg, tmp_path / "far", lambda _: None, 0)
    summary = tr.run()
    assert tr.stall_window == 5                                            # max(0.25 * 12, stall_min_steps = 5)
    assert all(r["mode"] == 1 for r in tr.metrics)
    warnings = summary["warnings"]
    assert warnings
    for w in warnings:                  # the batch entropy is noisy, so the stalled range is not known exactly
        first, last = map(int, re.match(r"band not reachable at lr 1e-06: steps (\d+)-(\d+) the entropy stayed "
                                        r"above the band \(\[0\.05, 0\.1\] at step", w).groups())
        assert 0 <= first and last - first + 1 >= tr.stall_window and last <= 11
        assert "m = +1" in w and w.endswith("try a larger lr or a wider band")
