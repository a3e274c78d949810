"""Landscape metrics against closed forms (topics.md §4, §7.1) and invariants."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from toolbox.landscape import metrics as mt
from toolbox.landscape.synthetic import SyntheticConfig, planted_mix

LN2 = math.log(2)


def test_uniform_mix_over_39_topics():
    assert mt.entropy(np.full(39, 1 / 39)) == pytest.approx(3.663562, abs=1e-6)


def test_jsd_identical_and_disjoint():
    p = np.array([0.2, 0.3, 0.5, 0.0])
    assert mt.jsd(p, p) == pytest.approx(0.0, abs=1e-12)
    assert mt.jsd(np.array([1.0, 0, 0]), np.array([0, 0, 1.0])) == pytest.approx(0.693147, abs=1e-6)
    assert mt.similarity_matrix(np.eye(3), np.eye(3)) == pytest.approx(np.eye(3))


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, (3, 6), elements=st.floats(0, 1)))
def test_jsd_bounds_symmetry_and_metric(raw):
    P = raw + 1e-9
    D = mt.jsd_matrix(P, P)
    assert np.all(D >= 0) and np.all(D <= LN2 + 1e-12)
    assert D == pytest.approx(D.T, abs=1e-10)
    assert np.diag(D) == pytest.approx(0.0, abs=1e-9)
    r = np.sqrt(D)  # sqrt(JSD) is a metric: triangle inequality
    assert r[0, 2] <= r[0, 1] + r[1, 2] + 1e-9


def test_kl_against_closed_form():
    p, q = np.array([0.5, 0.5]), np.array([0.9, 0.1])
    assert mt.kl(p, q) == pytest.approx(0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1))


def test_model_change_of_a_permuted_copy_is_zero():
    rng = np.random.default_rng(0)
    phi = rng.dirichlet(np.full(200, 0.1), size=12)
    mix = rng.dirichlet(np.ones(12))
    perm = rng.permutation(12)
    change = mt.model_change(phi, phi[perm], mix, mix[perm])
    assert change["model_change_jsd"] == pytest.approx(0.0, abs=1e-9)
    assert change["matched_similarity"] == pytest.approx(1.0, abs=1e-9)
    assert change["mix_shift_kl"] == pytest.approx(0.0, abs=1e-9)
    assert np.array_equal(perm[change["matching"]], np.arange(12))


def test_model_change_grows_with_perturbation():
    rng = np.random.default_rng(1)
    phi = rng.dirichlet(np.full(100, 0.2), size=5)
    small = mt.model_change(0.9 * phi + 0.1 / 100, phi)["model_change_jsd"]
    large = mt.model_change(0.5 * phi + 0.5 / 100, phi)["model_change_jsd"]
    assert 0 < small < large < LN2


def test_planted_trend_entropies():
    mix = planted_mix(SyntheticConfig())
    h = mt.entropy(mix)
    assert h[0] == pytest.approx(1.57275, abs=1e-5)
    assert h[-1] == pytest.approx(1.386294, abs=1e-6)
    assert h[-1] - h[0] == pytest.approx(-0.18645, abs=1e-5)


def test_magnitude_is_the_token_share():
    theta = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert mt.magnitude(theta, np.array([10, 30])) == pytest.approx([(10 + 15) / 40, 15 / 40])
    by_slice = mt.magnitude_by_slice(theta, np.array([10, 30]), np.array([0, 2]), 3)
    assert by_slice[0] == pytest.approx([1, 0]) and np.isnan(by_slice[1]).all()


def test_trend_labels_and_slope():
    rising = mt.trend(0.1 + 0.04 * np.arange(10))
    assert rising["slope"] == pytest.approx(0.04) and rising["label"] == "emerging"
    assert rising["relative_change"] == pytest.approx(0.04 * 9 / np.mean(0.1 + 0.04 * np.arange(10)))
    assert mt.trend(0.5 - 0.01 * np.arange(10))["label"] == "fading"
    noise = np.random.default_rng(0).normal(0.2, 0.01, 10)
    flat = mt.trend(noise)
    assert flat["label"] == "stable" and flat["ci_low"] < 0 < flat["ci_high"]


def test_entropy_shift_bootstrap_flags_a_real_shift_only():
    rng = np.random.default_rng(0)
    n = 200
    theta = np.vstack([rng.dirichlet([1, 1, 1, 1], n), rng.dirichlet([1, 1, 1, 1], n),
                       rng.dirichlet([8, 0.5, 0.5, 0.5], n)])
    slices = np.repeat([0, 1, 2], n)
    shifts = mt.entropy_shift_ci(theta, np.full(3 * n, 50.0), slices, 3, np.random.default_rng(1))
    assert not shifts[0]["significant"] and shifts[1]["significant"] and shifts[1]["shift"] < 0
    assert shifts[1]["ci_low"] <= shifts[1]["shift"] <= shifts[1]["ci_high"]


def test_split_and_merge_detection():
    old = np.array([[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])
    new = np.array([[0.5, 0.45, 0.05, 0], [0.45, 0.5, 0, 0.05], [0.25, 0.25, 0.25, 0.25]])
    lineage = mt.split_merge(mt.jsd_matrix(new, old), 0.35)
    assert lineage["splits"] == {0: [0, 1, 2]}  # old 0 went into new 0, 1 and the merged 2
    assert lineage["merges"] == {2: [0, 1]}


def test_mismatched_supports_are_rejected():
    with pytest.raises(ValueError, match="one support"):
        mt.jsd_matrix(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="one support"):
        mt.cosine_matrix(np.ones((2, 3)), np.ones((1, 2, 3)))
    assert mt.entropy(np.zeros(4)) == 0.0  # an empty distribution has no entropy, not NaN


def test_slice_phi_falls_back_to_the_global_topic():
    prior = np.array([[0.5, 0.5, 0.0], [0.1, 0.1, 0.8]])
    counts = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 999.0]])
    phi = mt.slice_phi(counts, prior)
    assert phi[0] == pytest.approx(prior[0])  # no tokens: the global topic, not a uniform one
    assert phi[1] == pytest.approx([0.0001, 0.0001, 0.9998])
