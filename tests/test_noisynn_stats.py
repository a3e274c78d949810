"""NoisyNN paired statistics: t CI by hand, bootstrap coverage of the truth, Holm's step-down, exact McNemar."""
import math

import numpy as np
import pytest
from scipy import stats as sps

from toolbox.noisynn import stats


def test_paired_t_ci_by_hand():
    base = np.array([0.90, 0.91, 0.92, 0.90, 0.93])
    treat = base + np.array([0.01, 0.02, 0.00, 0.03, 0.01])
    d = treat - base
    half = sps.t.ppf(0.975, 4) * d.std(ddof=1) / math.sqrt(5)
    out = stats.paired_difference(treat, base)
    assert out["mean"] == pytest.approx(d.mean())
    assert out["t_ci"] == pytest.approx([d.mean() - half, d.mean() + half])
    assert out["p_t"] == pytest.approx(sps.ttest_rel(treat, base).pvalue)
    low, high = out["bootstrap_ci"]
    assert low <= d.mean() <= high and high - low < 4 * half


def test_constant_differences_collapse_the_ci():
    out = stats.paired_difference(np.ones(10), np.zeros(10))
    assert out["t_ci"] == [1.0, 1.0] and out["p_t"] == 0.0
    out = stats.paired_difference(np.ones(10), np.ones(10))
    assert out["mean"] == 0.0 and out["p_t"] == 1.0


def test_bootstrap_ci_covers_the_true_mean_most_of_the_time():
    gen = np.random.default_rng(0)
    hits = 0
    for trial in range(60):
        d = gen.normal(0.5, 1.0, size=20)
        low, high = stats.paired_difference(d, np.zeros(20), seed=trial)["bootstrap_ci"]
        hits += low <= 0.5 <= high
    assert hits >= 50  # nominal 95 %: 57 of 60 expected


def test_holm_known_values():
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_mcnemar_exact():
    base = np.array([1] * 10 + [0] * 10, bool)
    treat = np.array([1] * 2 + [0] * 8 + [1] * 1 + [0] * 9, bool)  # b = 8 only-baseline, c = 1 only-treatment
    out = stats.mcnemar(base, treat)
    assert (out["only_baseline"], out["only_treatment"]) == (8, 1)
    assert out["p"] == pytest.approx(sps.binomtest(1, 9, 0.5).pvalue)
    assert stats.mcnemar(base, base)["p"] == 1.0
