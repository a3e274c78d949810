"""Exact values of the choice-set posterior (toolbox/choice/model.py) where mutation testing found them unchecked
(scripts/mutation.sh; docs/developing.md#mutation-testing): evidence, zero prior mass, the validation messages, the
robot's tie tolerance, batched beliefs and the direction grids."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from toolbox.choice.model import (ChoiceProblem, Observation, entropy, log_evidence, posterior, regret, robot_choice,
                                  unit_directions)
from toolbox.core.errors import UserInputError


def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


def _two_options(prior=(0.5, 0.5), beta=1.0):
    """Options phi = 1 and phi = 0, hypotheses theta = +1 and -1: P(pick option 0 | theta) = sigmoid(beta theta)."""
    return ChoiceProblem(np.array([[1.0], [0.0]]), np.array([[1.0], [-1.0]]), np.array(prior), beta)


def test_evidence_closed_form():
    p = _two_options(beta=2.0)
    full = np.ones(2, bool)
    # 0.5 sigmoid(2) + 0.5 sigmoid(-2) = 0.5 exactly
    assert log_evidence(p, [Observation(0, full)]) == pytest.approx(math.log(0.5), abs=1e-12)
    # two picks of option 0: 0.5 (sigmoid(2)^2 + sigmoid(-2)^2)
    want = math.log(0.5 * (_sigmoid(2) ** 2 + _sigmoid(-2) ** 2))
    assert log_evidence(p, [Observation(0, full)] * 2) == pytest.approx(want, abs=1e-12)
    assert posterior(p, [Observation(0, full)] * 2)[0] == pytest.approx(
        _sigmoid(2) ** 2 / (_sigmoid(2) ** 2 + _sigmoid(-2) ** 2), abs=1e-12)


def test_zero_prior_mass_stays_zero_and_prior_is_normalised():
    p = _two_options(prior=(3.0, 0.0))
    assert p.prior.tolist() == [1.0, 0.0]
    obs = [Observation(1, np.ones(2, bool))]
    assert posterior(p, obs).tolist() == [1.0, 0.0]
    assert log_evidence(p, obs) == pytest.approx(math.log(_sigmoid(-1.0)), abs=1e-12)
    assert _two_options(prior=(2.0, 6.0)).prior.tolist() == [0.25, 0.75]


def test_utilities_scale_with_beta_and_names_default():
    p = _two_options(beta=3.0)
    np.testing.assert_array_equal(p.utilities(), [[3.0, 0.0], [-3.0, 0.0]])
    assert p.n_options == 2 and p.names == ["option0", "option1"]
    named = ChoiceProblem(np.eye(2), np.eye(2), np.ones(2), 1.0, names=["tea", "coffee"])
    assert named.names == ["tea", "coffee"]
    assert named.mask([1]).tolist() == [False, True]


def test_observations_and_problems_are_immutable():
    p = _two_options()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.beta = 2.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        Observation(0, np.ones(2, bool)).choice = 1


def test_one_option_and_one_hypothesis_are_valid():
    one_option = ChoiceProblem(np.array([[1.0, 2.0]]), np.eye(2), np.ones(2), 1.0)
    assert posterior(one_option, [Observation(0, np.ones(1, bool))]) == pytest.approx([0.5, 0.5])
    one_theta = ChoiceProblem(np.eye(2), np.array([[1.0, 0.0]]), np.ones(1), 1.0)
    assert posterior(one_theta, [Observation(1, np.ones(2, bool))]).tolist() == [1.0]


@pytest.mark.parametrize("bad, message", [
    (dict(features=np.zeros(2)), "features must be"),
    (dict(features=np.zeros((2, 2, 1))), "features must be"),
    (dict(thetas=np.zeros((2, 2, 1))), "thetas must be"),
    (dict(features=np.zeros((2, 0))), "features must be"),
    (dict(thetas=np.zeros(2)), "thetas must be"),
    (dict(thetas=np.zeros((0, 2)), prior=np.zeros(0)), "thetas must be"),
    (dict(thetas=np.array([[np.inf, 0.0], [0.0, 1.0]])), "finite"),
    (dict(prior=np.array([np.nan, 1.0])), "prior weights"),
    (dict(prior=np.zeros(2)), "prior weights"),
    (dict(prior=np.array([-0.5, 1.0])), "prior weights"),
    (dict(beta=-1.0), "beta"),
    (dict(beta=math.inf), "beta"),
])
def test_validation_messages(bad, message):
    args = dict(features=np.eye(2), thetas=np.eye(2), prior=np.array([0.5, 0.5]), beta=1.0) | bad
    with pytest.raises(UserInputError, match=message):
        ChoiceProblem(**args)


def test_shape_mismatch_messages_name_the_sizes():
    with pytest.raises(UserInputError, match="have 2 entries but options have 3 features"):
        ChoiceProblem(np.zeros((4, 3)), np.ones((3, 2)), np.ones(3), 1.0)
    with pytest.raises(UserInputError, match="have 3 entries but options have 2 features"):
        ChoiceProblem(np.zeros((4, 2)), np.ones((2, 3)), np.ones(2), 1.0)
    with pytest.raises(UserInputError, match="prior has 2 entries for 3 reward hypotheses"):
        ChoiceProblem(np.eye(2), np.ones((3, 2)), np.ones(2), 1.0)
    with pytest.raises(UserInputError, match="prior has 3 entries for 2 reward hypotheses"):
        ChoiceProblem(np.eye(2), np.ones((2, 2)), np.ones(3), 1.0)


@pytest.mark.parametrize("choice", [-1, 3])
def test_choice_index_outside_the_universe_is_rejected(choice):
    p = _two_options()
    with pytest.raises(UserInputError, match="outside"):
        posterior(p, [Observation(choice, np.ones(2, bool))])


def test_short_choice_set_mask_is_rejected():
    p = ChoiceProblem(np.eye(3), np.eye(3), np.ones(3), 1.0)
    with pytest.raises(UserInputError, match="shape"):
        posterior(p, [Observation(0, np.ones(2, bool))])


def test_entropy_along_an_axis():
    p = np.array([[0.5, 0.5], [1.0, 0.0]])
    np.testing.assert_allclose(entropy(p), [math.log(2), 0.0])
    np.testing.assert_allclose(entropy(p.T, axis=0), [math.log(2), 0.0])


@pytest.mark.parametrize("gap, want", [(0.0, 0), (1.5e-9, 0), (2.5e-9, 1)])
def test_robot_choice_tie_tolerance(gap, want):
    """Scores within 1e-9 (1 + |top|) of the top (2e-9 here) count as a tie, which goes to the lowest index."""
    feats = np.array([[1.0], [1.0 + gap]])
    assert robot_choice(feats, np.array([[1.0]]), np.array([1.0])) == want


def test_robot_choice_tie_tolerance_is_inclusive():
    """A score exactly 1e-9 (1 + |top|) below the top (exact in floating point for top = 0) still ties."""
    feats = np.array([[-1e-9], [0.0]])
    assert robot_choice(feats, np.array([[1.0]]), np.array([1.0])) == 0


def test_robot_choice_per_belief_row_and_regret_per_choice():
    feats = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.6]])
    thetas = np.array([[1.0, 0.0], [0.0, 1.0]])
    beliefs = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [0.2, 0.8]])
    assert robot_choice(feats, thetas, beliefs).tolist() == [1, 0, 2, 1, 1]
    assert regret(feats, thetas[1], np.array([0, 1, 2])) == pytest.approx([1.0, 0.0, 0.4])


def test_directions_d1_d2_exact():
    assert unit_directions(1, 7).tolist() == [[-1.0], [1.0]]
    assert unit_directions(2, 1).tolist() == [[1.0, 0.0]]           # a single direction is a valid grid
    np.testing.assert_allclose(unit_directions(2, 4), [[1, 0], [0, 1], [-1, 0], [0, -1]], atol=1e-15)


def test_directions_d3_fibonacci_lattice():
    """Equal-area heights z_j = 1 - (2j + 1)/k and a constant azimuth step of pi (1 + sqrt 5) (the golden angle)."""
    k = 10
    dirs = unit_directions(3, k)
    np.testing.assert_allclose(dirs[:, 2], 1 - (2 * np.arange(k) + 1) / k, atol=1e-15)
    step = np.diff(np.arctan2(dirs[:, 1], dirs[:, 0]))
    np.testing.assert_allclose(np.mod(step - np.pi * (1 + math.sqrt(5)) + np.pi, 2 * np.pi) - np.pi, 0.0, atol=1e-12)


def test_directions_high_d_are_seeded_gaussians():
    a, b = unit_directions(4, 5, seed=3), unit_directions(4, 5, seed=4)
    g = np.random.default_rng(3).standard_normal((5, 4))
    np.testing.assert_allclose(a, g / np.linalg.norm(g, axis=1, keepdims=True))
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(unit_directions(4, 5), unit_directions(4, 5, seed=0))   # the default seed is 0


@pytest.mark.parametrize("d, k", [(0, 3), (2, 0)])
def test_directions_bad_sizes(d, k):
    with pytest.raises(UserInputError):
        unit_directions(d, k)
