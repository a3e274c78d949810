"""Exact values of the Entrocraft controller and the advantage estimators at the edges that mutation testing showed
unchecked (scripts/mutation.sh; docs/developing.md#mutation-testing): band edges, clamps, guards, defaults."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from toolbox.core.errors import UserInputError
from toolbox.entrocraft import advantages as adv
from toolbox.entrocraft.control import (BandSchedule, band_warning, batch_entropy, controller_mode, entrocraft_filter,
                                        load_knots_csv, parse_knots, release_advantages, theorem_condition,
                                        tracking_error)


# ---- the controller (Alg. 1 step 2): both band edges count as inside
def test_lower_band_edge_is_inside():
    assert controller_mode(0.5, 0.5, 0.7) == 0
    assert controller_mode(0.5 - 1e-12, 0.5, 0.7) == -1


def test_schedule_and_filter_result_are_immutable():
    """Frozen dataclasses: a schedule shared by a trainer and its logger cannot be changed under either."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        BandSchedule().kind = "cosine"
    with pytest.raises(dataclasses.FrozenInstanceError):
        entrocraft_filter([1.0], 0.5, (0.4, 0.6)).mode = 1


def test_a_one_point_band_does_not_warn():
    assert band_warning(0.5, 0.5) is None
    assert band_warning(0.5 + 1e-12, 0.5) is not None


# ---- schedules: the clamp to [0, T], the smallest horizon, the table
def test_linear_schedule_is_held_outside_the_horizon():
    s = BandSchedule("linear", (0.6, 0.7), (0.4, 0.5), 10)
    assert s.band(-5) == pytest.approx((0.6, 0.7))
    assert s.band(25) == pytest.approx((0.4, 0.5))
    assert s.progress(-1) == 0.0 and s.progress(11) == 1.0


def test_default_schedule_is_the_documented_band():
    """docs/entrocraft.md: the default schedule is the linear (0.6, 0.7) -> (0.4, 0.5) band over 100 steps."""
    s = BandSchedule()
    assert (s.kind, s.total_steps) == ("linear", 100)
    assert s.band(0) == pytest.approx((0.6, 0.7)) and s.band(100) == pytest.approx((0.4, 0.5))


@pytest.mark.parametrize("steps", [0, -5])
def test_horizon_must_be_positive(steps):
    with pytest.raises(UserInputError, match="total_steps"):
        BandSchedule("linear", total_steps=steps)


def test_one_step_horizon_is_valid():
    s = BandSchedule("cosine", (0.0, 1.0), (1.0, 2.0), total_steps=1)
    assert s.band(0) == pytest.approx((0.0, 1.0)) and s.band(1) == pytest.approx((1.0, 2.0))


def test_table_rows_are_the_band_at_every_step():
    s = BandSchedule("linear", (0.6, 0.7), (0.4, 0.5), 4)
    rows = s.table()
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4]
    assert [r["h_low"] for r in rows] == pytest.approx([0.6, 0.55, 0.5, 0.45, 0.4])
    assert [r["h_high"] for r in rows] == pytest.approx([0.7, 0.65, 0.6, 0.55, 0.5])
    assert [r["step"] for r in s.table(2)] == [0, 1, 2]


@pytest.mark.parametrize("start, end", [((math.nan, 0.7), (0.4, 0.5)), ((0.6, math.inf), (0.4, 0.5)),
                                        ((0.6, 0.7), (-math.inf, 0.5)), ((0.6, 0.7), (0.4, math.nan))])
def test_non_finite_band_edges_are_rejected(start, end):
    with pytest.raises(UserInputError, match="finite"):
        BandSchedule("linear", start, end, 10)


def test_csv_schedule_needs_knots():
    with pytest.raises(UserInputError, match="knot"):
        BandSchedule("csv", total_steps=10)


# ---- knots: text and CSV parsing, sorting, distinct steps
def test_parse_knots_sorts_and_skips_blank_items():
    assert parse_knots("100:0.4:0.5, ,0:0.6:0.7,") == ((0.0, 0.6, 0.7), (100.0, 0.4, 0.5))


@pytest.mark.parametrize("text", ["", " , ", "0:1:2:3", "0:0.6:0.7,0:0.5:0.6"])
def test_parse_knots_rejects(text):
    with pytest.raises(UserInputError):
        parse_knots(text)


def test_csv_knots_errors(tmp_path):
    bad_number = tmp_path / "n.csv"
    bad_number.write_text("step,h_low,h_high\n0,x,0.7\n")
    with pytest.raises(UserInputError, match="not a number"):
        load_knots_csv(bad_number)
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"step,h_low,h_high\n\xff\xfe\x00\n")
    with pytest.raises(UserInputError, match="UTF-8"):
        load_knots_csv(binary)
    empty = tmp_path / "e.csv"
    empty.write_text("")
    with pytest.raises(UserInputError, match="columns"):
        load_knots_csv(empty)


# ---- release estimator switch: a zero reward stays zero in every mode
def test_release_advantages_keep_only_one_sign():
    r = np.array([0.0, 2.0, -3.0, -0.5, 0.5])
    g = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    assert release_advantages(r, g, 1).tolist() == [0.0, 2.0, 0.0, 0.0, 0.5]       # RAFT++: negatives -> 0
    assert release_advantages(r, g, -1).tolist() == [0.0, 0.0, -3.0, -0.5, 0.0]    # NSR: positives -> 0
    assert release_advantages(r, g, 0).tolist() == [0.1, 0.2, 0.3, 0.4, 0.5]


# ---- batch entropy: masks with fewer than two tokens, empty sequences, the [N, L] layout
def test_token_mean_with_one_or_no_token():
    h = np.array([0.3, 0.9, 0.5])
    assert batch_entropy(h, np.array([0.0, 1.0, 0.0])) == pytest.approx(0.9)
    assert batch_entropy(h, np.zeros(3)) == 0.0


def test_seq_mean_rows_layout_skips_empty_rows():
    h = np.array([[1.0, 2.0, 5.0, 0.0], [4.5, 4.0, 4.0, 4.0], [7.0, 7.0, 7.0, 7.0]])
    w = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=float)
    with np.errstate(all="raise"):      # the empty row is never divided by its zero token count
        assert batch_entropy(h, w, aggregation="seq-mean") == pytest.approx((1.5 + 4.5) / 2)
    one_each = np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=float)
    assert batch_entropy(h, one_each, aggregation="seq-mean") == pytest.approx((2.0 + 4.5) / 2)
    assert batch_entropy(h, np.zeros_like(w), aggregation="seq-mean") == 0.0


def test_seq_mean_ids_layout_skips_empty_sequences():
    h = np.array([1.0, 2.0, 4.5, 9.0])
    seq = np.array([0, 0, 2, 2])        # sequence 1 has no token; sequence 2's second token is masked
    w = np.array([1.0, 1.0, 1.0, 0.0])
    assert batch_entropy(h, w, seq, "seq-mean") == pytest.approx((1.5 + 4.5) / 2)
    assert batch_entropy(h, np.zeros(4), seq, "seq-mean") == 0.0
    assert batch_entropy(h, np.ones(4), [0, 1, 2, 3], "seq-mean") == pytest.approx(16.5 / 4)   # one token each


@pytest.mark.parametrize("aggregation", ["median", "weighted"])     # sorting before and after the known ones
def test_unknown_entropy_aggregation_is_rejected(aggregation):
    with pytest.raises(UserInputError, match="aggregation"):
        batch_entropy(np.ones(3), np.ones(3), aggregation=aggregation)


# ---- tracking error: the transient skip and an empty remainder
def test_tracking_error_skip():
    res = tracking_error([5.0, 0.5, 0.7], [0.4] * 3, [0.6] * 3, skip=1)
    assert res["steps"] == 2 and res["in_band"] == pytest.approx(0.5)
    assert res["max_above"] == pytest.approx(0.1) and res["max_below"] == 0.0
    assert res["rmse_to_band"] == pytest.approx(math.sqrt(0.01 / 2))
    # an inverted band (low > high, the release default [1, 1] / [0, 0]) is never 'inside': above and below add up
    inverted = tracking_error([0.5, 1.2], [1.0, 1.0], [0.0, 0.0])
    assert inverted["in_band"] == 0.0 and inverted["rmse_to_band"] == pytest.approx(math.sqrt((1.0 + 1.44) / 2))
    empty = tracking_error([0.5], [0.4], [0.6], skip=1)
    assert empty["steps"] == 0 and all(math.isnan(empty[k]) for k in ("in_band", "rmse_to_band", "max_above"))


# ---- Theorem 2's monitor: log b_t = (-H_t - p_y log p_y) / (1 - p_y), one sequence where it holds, one where not
def test_theorem_condition_both_sides():
    # token 0: p = (0.9, 0.1), y = 0 -> log pi = log 0.9 > log b = log 0.1: holds.
    # token 1: p = (0.1, 0.9), y = 0 -> log pi = log 0.1 < log b = log 0.9: fails.
    p = np.array([[0.9, 0.1], [0.1, 0.9]])
    h = -(p * np.log(p)).sum(1)
    lp = np.log(p[:, 0])
    assert theorem_condition(h, lp, [0, 1], 3).tolist() == [True, False, False]


def test_theorem_condition_certain_token():
    """p_y = 1 (H = 0, a greedy fp32 distribution): log b_t = 0 / max(0, 1e-6) = 0, no 0/0; 0 > 0 does not hold."""
    with np.errstate(all="raise"):
        assert theorem_condition([0.0], [0.0], [0], 1).tolist() == [False]


def test_theorem_condition_two_classes_is_p_above_one_half():
    """With two classes b_t = 1 - p_y, so a one-token rollout satisfies the condition iff p_y > 1/2."""
    p_y = np.array([0.3, 0.45, 0.49, 0.51, 0.55, 0.6, 0.9])
    h = -(p_y * np.log(p_y) + (1 - p_y) * np.log(1 - p_y))
    got = theorem_condition(h, np.log(p_y), np.arange(p_y.size), p_y.size)
    assert got.tolist() == (p_y > 0.5).tolist()


def test_theorem_condition_many_rollouts_against_explicit_weights():
    rng = np.random.default_rng(7)
    n_tok, vocab, n_seq = 300, 6, 100
    z = rng.normal(size=(n_tok, vocab)) * rng.uniform(0.2, 3.0, size=(n_tok, 1))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = np.where(rng.random(n_tok) < 0.7, p.argmax(1), rng.integers(0, vocab, size=n_tok))   # mostly the mode
    seq = np.sort(rng.integers(0, n_seq, size=n_tok))
    py = p[np.arange(n_tok), y]
    others = np.where(np.arange(vocab) == y[:, None], 0.0, p * np.log(p)).sum(1)
    want = np.bincount(seq, np.log(py), n_seq) > np.bincount(seq, others / (1 - py), n_seq)
    got = theorem_condition(-(p * np.log(p)).sum(1), np.log(py), seq, n_seq)
    assert 20 < want.sum() < 80          # both outcomes are well represented
    assert got.tolist() == want.tolist()


# ---- estimators: the smallest group, the guards, every dispatch
def test_groups_of_two_and_too_small_groups():
    assert adv.grpo([1.0, 0.0], 2) == pytest.approx([1 / math.sqrt(2), -1 / math.sqrt(2)], rel=1e-5)
    assert adv.rloo([1.0, 0.0], 2).tolist() == [1.0, -1.0]            # 2/(2-1) (r - 1/2)
    with pytest.raises(UserInputError):
        adv.grpo([1.0, 0.0], 1)


def test_grpo_eps_keeps_constant_groups_at_zero():
    assert adv.grpo([3.0, 3.0, 3.0], 3).tolist() == [0.0, 0.0, 0.0]
    assert adv.grpo([2.0, 0.0], 2, eps=1.0) == pytest.approx([1 / (math.sqrt(2) + 1), -1 / (math.sqrt(2) + 1)])


def test_reinforce_pp_weights_by_length_with_torch_unbiased_variance():
    # a = r - group mean = (+0.5, -0.5, +0.5, -0.5); lengths (3, 1, 1, 1): token mean (1.5 - 0.5)/6 = 1/6,
    # unbiased token variance (3 (1/3)^2 + 2 (2/3)^2 + (1/3)^2) / (6 - 1) = 4/15.
    got = adv.reinforce_pp([1.0, 0.0, 1.0, 0.0], 2, [3, 1, 1, 1], eps=0.0)
    assert got == pytest.approx((np.array([0.5, -0.5, 0.5, -0.5]) - 1 / 6) / math.sqrt(4 / 15))


def test_reinforce_pp_baseline_is_each_groups_own_mean():
    # groups (1, 0) and (1, 1): a = (0.5, -0.5, 0, 0), token mean 0, unbiased variance 0.5 / 3
    got = adv.reinforce_pp([1.0, 0.0, 1.0, 1.0], 2, np.ones(4), eps=0.0)
    assert got == pytest.approx(np.array([0.5, -0.5, 0.0, 0.0]) / math.sqrt(0.5 / 3))


def test_reinforce_pp_unbiased_denominator_below_two_tokens():
    # two tokens: a = (0.5, -0.5), variance (0.25 + 0.25) / (2 - 1) = 0.5
    want = np.array([0.5, -0.5]) / math.sqrt(0.5)
    assert adv.reinforce_pp([1.0, 0.0], 2, [1, 1], eps=0.0) == pytest.approx(want)
    # one token in all (lengths 1 and 0): w.sum() - 1 = 0 is floored at 1, so the variance is 0, not 0/0
    got = adv.reinforce_pp([1.0, 0.0], 2, [1, 0], eps=1e-8)
    assert got == pytest.approx([0.0, -1.0 / math.sqrt(1e-8)])


@pytest.mark.parametrize("name", ["grpo", "gspo", "rloo", "reinforce++"])
def test_compute_dispatches_to_the_named_estimator(name):
    r, lengths = np.array([1.0, 0.0, 0.0, 1.0]), np.array([2, 1, 3, 1])
    want = {"grpo": adv.grpo(r, 2), "gspo": adv.grpo(r, 2), "rloo": adv.rloo(r, 2),
            "reinforce++": adv.reinforce_pp(r, 2, lengths)}[name]
    np.testing.assert_array_equal(adv.compute(name, r, 2, lengths), want)


@pytest.mark.parametrize("name", ["ppo", "remax", "vtrace"])   # sorting before, between and after the known ones
def test_compute_rejects_other_estimators(name):
    with pytest.raises(UserInputError, match="estimator must be one of"):
        adv.compute(name, np.array([1.0, 0.0]), 2, np.ones(2))


def test_reward_shaping_estimators_leave_zero_rewards_at_zero():
    r = np.array([2.0, 0.0, -2.0, -0.5, 0.5])
    assert adv.w_reinforce(r).tolist() == pytest.approx([0.2, 0.0, -2.0, -0.5, 0.05])
    assert adv.w_reinforce(r, positive_weight=0.5).tolist() == [1.0, 0.0, -2.0, -0.5, 0.25]
    assert adv.entropic(r, 0.5).tolist() == [3.0, 0.0, -1.0, -0.25, 0.75]


def test_entropic_update_pi_controller():
    # e = 0.3: alpha = 0.1 + 2 * 0.3 = 0.7; next state = 0.1 + ki * e = 0.1 + 0.5 * 0.3 = 0.25
    alpha, state = adv.entropic_update(0.1, 0.8, 0.5, kp=2.0, ki=0.5)
    assert alpha == pytest.approx(0.7) and state == pytest.approx(0.25)
    # below the target (e = -0.3) the controller lowers alpha: 0.1 - 0.6 and 0.1 - 0.15
    alpha, state = adv.entropic_update(0.1, 0.2, 0.5, kp=2.0, ki=0.5)
    assert alpha == pytest.approx(-0.5) and state == pytest.approx(-0.05)
