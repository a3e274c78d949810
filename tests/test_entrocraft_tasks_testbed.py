"""The letterset testbed (issue #14): generator determinism, disjoint splits, the verifier on hand-computed answers,
the closed-form number of correct answers, the task's own warm-start wrong fraction, and GRPO raising the mean reward
on the testbed's settings."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from toolbox.core.rng import numpy_generator
from toolbox.entrocraft.tasks import (
    LETTERS,
    TESTBED_SETTINGS,
    Instance,
    letterset_instances,
    make_task,
    random_letterset,
    verify_letterset,
)
from toolbox.entrocraft.trainer import TrainConfig, Trainer


def _inst(allowed: str, length: int) -> Instance:
    return next(i for i in letterset_instances() if i.record == (allowed, length))


def test_generator_is_deterministic_and_complete():
    first = letterset_instances()
    letterset_instances.cache_clear()
    assert letterset_instances() == first
    # (C(10,3) + C(10,4) + C(10,5)) allowed sets x 3 lengths, every prompt once
    assert len(first) == (120 + 210 + 252) * 3 == 1746
    assert len({i.prompt for i in first}) == len(first)
    assert _inst("abd", 4).prompt == "abd/4:"


def test_split_is_disjoint_covering_and_seeded():
    a, b = make_task("letterset"), make_task("letterset")
    assert [i.prompt for i in a.train] == [i.prompt for i in b.train]
    train, test = {i.prompt for i in a.train}, {i.prompt for i in a.test}
    assert not train & test and len(train | test) == 1746 and len(test) == round(0.2 * 1746)
    other = make_task("letterset", split_seed=1)
    assert {i.prompt for i in other.test} != test


@pytest.mark.parametrize("answer, ok", [("aba", True), ("cab", True), ("bcb", True), ("abb", False),
                                        ("aab", False), ("abd", False), ("ab", False), ("abca", False), ("", False),
                                        ("ABC", False), ("a-b", False)])
def test_verifier_against_hand_computed_answers(answer, ok):
    assert verify_letterset(_inst("abc", 3), answer) is ok


@pytest.mark.parametrize("allowed, length", [("abc", 3), ("acfj", 4), ("bdegi", 5), ("hij", 5), ("abcde", 3)])
def test_number_of_correct_answers_is_k_times_k_minus_1_to_the_L_minus_1(allowed, length):
    inst = _inst(allowed, length)
    k = len(allowed)
    # brute force over every L-string of a..j: the generator's solutions are exactly the verifier's accepted set
    accepted = {"".join(w) for w in itertools.product(LETTERS, repeat=length) if verify_letterset(inst, "".join(w))}
    assert accepted == set(inst.solutions)
    assert len(inst.solutions) == k * (k - 1) ** (length - 1)


def test_answer_counts_range_and_random_answers_are_legal():
    counts = [len(i.solutions) for i in letterset_instances()]
    assert min(counts) == 3 * 2 ** 2 == 12 and max(counts) == 5 * 4 ** 4 == 1280
    task, rng = make_task("letterset"), np.random.default_rng(0)
    for inst in task.train[:50]:
        answer = random_letterset(inst, rng)
        assert len(answer) == inst.record[1] <= task.max_answer_len and set(answer) <= set(LETTERS)


def test_grpo_raises_mean_reward_on_the_testbed(tmp_path):
    """Ten GRPO steps from the testbed's warm start (16 prompts x G = 8 = 128 rollouts per step).

    Margin: a reward is +-1, so a window of n rollouts with accuracy a has a mean reward with binomial standard
    error 2 sqrt(a (1 - a) / n). The first and last three steps are two windows of n = 384 rollouts each; their
    difference has SE = sqrt(SE_first^2 + SE_last^2), and the test asks for a rise above 3 SE (at a = 0.5 this is
    3 * sqrt(2) / sqrt(384) = 0.22, i.e. 11 accuracy points). The 8 rollouts of a prompt are correlated, so this is
    the SE of one batch's sampling noise, not of the prompt draw; the run is seeded, so the test is deterministic.
    """
    cfg = TrainConfig(**{**TESTBED_SETTINGS, "prompts_per_step": 16, "steps": 10, "control": "none",
                         "eval_prompts": 4, "eval_n": 2, "eval_temperatures": [1.0], "eval_every": 100,
                         "ckpt_every": 100})
    trainer = Trainer(cfg, tmp_path / "run", log=lambda _: None, seed=0)
    trainer.run()
    acc = np.array([m["accuracy"] for m in trainer.metrics])
    n = 3 * cfg.prompts_per_step * cfg.group_size
    first, last = acc[:3].mean(), acc[-3:].mean()
    se = math.sqrt(sum(4 * a * (1 - a) / n for a in (first, last)))
    assert 0.15 <= first <= 0.6          # the warm start leaves room to learn
    assert (2 * last - 1) - (2 * first - 1) > 3 * se


@pytest.mark.parametrize("task, setting, share", [("letterset", None, 0.25), ("countdown", None, 0.5),
                                                  ("letterset", 0.5, 0.5), ("countdown", 0.0, 0.0)])
def test_warm_start_uses_the_tasks_own_wrong_fraction_unless_set(task, setting, share, tmp_path):
    """The number of random (wrong) warm-start targets is exactly the count of the seeded draw u_i < share."""
    trainer = Trainer(TrainConfig(task=task, sft_wrong_fraction=setting, sft_steps=0), tmp_path, log=lambda _: None)
    assert trainer.task.sft_wrong_fraction == {"letterset": 0.25, "countdown": 0.5}[task]
    calls = []
    randomiser = trainer.task.random_answer
    trainer.task.random_answer = lambda inst, rng: calls.append(inst) or randomiser(inst, rng)
    trainer.warm_start()
    n = len(trainer.task.train)
    assert len(calls) == int((numpy_generator(0, 13).random(n) < share).sum())
    assert (len(calls) > 0) == (share > 0) and abs(len(calls) / n - share) < 0.05


def test_wrong_fraction_setting_defaults_to_none_and_is_range_checked():
    from toolbox.core.config import resolve
    from toolbox.core.errors import UserInputError
    from toolbox.entrocraft.trainer import validate

    assert TrainConfig().sft_wrong_fraction is None
    assert resolve(TrainConfig(), sets=["sft_wrong_fraction=0.3"]).sft_wrong_fraction == 0.3
    with pytest.raises(UserInputError):
        validate(TrainConfig(sft_wrong_fraction=1.5))
