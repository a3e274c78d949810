"""Exact values of the diffusion thermodynamics (toolbox/diffusion/thermo.py) where mutation testing found them
unchecked (scripts/mutation.sh; docs/developing.md#mutation-testing): the fluctuation-theorem statistics, their
running convergence, the Gaussian closed forms in d > 1, the quadrature / Monte Carlo expectations and the rates."""
from __future__ import annotations

import math

import numpy as np
import pytest

from toolbox.diffusion import thermo
from toolbox.diffusion.densities import GaussianMixture


def test_ift_stats_exact():
    total = np.array([0.0, math.log(2.0), -math.log(2.0), math.log(4.0)])
    w = np.array([1.0, 0.5, 2.0, 0.25])
    s = thermo.ift_stats(total)
    se = w.std(ddof=1) / 2.0
    assert s["n"] == 4
    assert s["mean_exp_neg"] == pytest.approx(3.75 / 4, abs=1e-15)
    assert s["se_exp_neg"] == pytest.approx(se, abs=1e-15)
    assert s["z"] == pytest.approx((3.75 / 4 - 1.0) / se, abs=1e-12)
    assert s["mean_total"] == pytest.approx(0.5 * math.log(2.0), abs=1e-15)
    assert s["se_total"] == pytest.approx(total.std(ddof=1) / 2.0, abs=1e-15)
    # no spread: z is 0, not a division by zero
    flat = thermo.ift_stats(np.zeros(3))
    assert flat["z"] == 0.0 and flat["se_exp_neg"] == 0.0 and flat["mean_exp_neg"] == 1.0


def test_ift_convergence_grid_and_running_moments():
    total = np.log(np.arange(1.0, 251.0))  # w = 1 / k
    w = 1.0 / np.arange(1.0, 251.0)
    ns, mean, se = thermo.ift_convergence(total, points=4)
    assert ns.tolist() == [100, 150, 200, 250]
    np.testing.assert_allclose(mean, [w[:n].mean() for n in ns], rtol=1e-13)
    np.testing.assert_allclose(se, [w[:n].std(ddof=1) / math.sqrt(n) for n in ns], rtol=1e-9)
    # fewer than 100 trajectories: one point at n; one trajectory: SE 0 (no 0/0)
    ns, mean, se = thermo.ift_convergence(total[:7])
    assert ns.tolist() == [7] and mean[0] == pytest.approx(w[:7].mean(), rel=1e-13)
    assert se[0] == pytest.approx(w[:7].std(ddof=1) / math.sqrt(7), rel=1e-9)
    ns, mean, se = thermo.ift_convergence(np.array([math.log(2.0)]))
    assert ns.tolist() == [1] and mean.tolist() == [0.5] and se.tolist() == [0.0]
    # default 50 points on [100, n]
    ns = thermo.ift_convergence(np.zeros(1000))[0]
    assert ns[0] == 100 and ns[-1] == 1000 and len(ns) == 50
    # two trajectories: the unbiased variance divides by n - 1 = 1, so SE = |w1 - w2| / 2
    ns, mean, se = thermo.ift_convergence(np.log(np.array([1.0, 4.0])))
    assert ns.tolist() == [2] and mean[0] == pytest.approx(0.625, rel=1e-15) and se[0] == pytest.approx(0.375,
                                                                                                         rel=1e-14)
    # equal trajectories: E[w^2] - E[w]^2 rounds to -2e-16 for w = 0.7 (n = 7); the variance is clamped at 0, so the
    # SE is 0, not the NaN of a square root of a negative number
    se = thermo.ift_convergence(np.full(7, math.log(1 / 0.7)))[2]
    assert se.tolist() == [0.0]


@pytest.mark.parametrize("dim", [1, 3])
def test_gaussian_closed_forms_in_d(dim):
    s2, t = 0.3, np.array([0.0, 0.4, 2.0])
    v = 1.0 + (s2 - 1.0) * np.exp(-2.0 * t)
    np.testing.assert_allclose(thermo.gaussian_variance(s2, t), v, rtol=1e-15)
    r = thermo.gaussian_rates(s2, t, dim)
    np.testing.assert_allclose(r["pi"], dim * (v - 1) ** 2 / v, rtol=1e-14)
    np.testing.assert_allclose(r["phi"], dim * (v - 1), rtol=1e-14)
    np.testing.assert_allclose(r["dS"], dim * (1 / v - 1), rtol=1e-14)
    T = 0.7
    vT = 1.0 + (s2 - 1.0) * math.exp(-2 * T)
    want = dim * 0.5 * ((s2 - 1) * (1 - math.exp(-2 * T)) + math.log(vT) - math.log(s2))
    assert thermo.gaussian_mean_production(s2, T, dim) == pytest.approx(want, rel=1e-13)
    # the production is the time integral of pi
    tt = np.linspace(0, T, 2001)
    assert thermo.integrate(tt, thermo.gaussian_rates(s2, tt, dim)["pi"]) == pytest.approx(want, rel=1e-8)


def test_quadrature_expectations_of_an_asymmetric_mixture():
    dens = GaussianMixture(np.array([[2.0], [-1.0]]), [0.2, 0.5], [0.3, 0.7])
    t = 0.25
    m = dens.marginal(t)[0]
    assert thermo.expectation(dens, t, lambda x, lp, s: np.ones(len(x))) == pytest.approx(1.0, abs=1e-12)
    assert thermo.expectation(dens, t, lambda x, lp, s: x[:, 0]) == pytest.approx(
        0.3 * m[0, 0] + 0.7 * m[1, 0], abs=1e-12)
    assert thermo.expectation(dens, t, lambda x, lp, s: x[:, 0] ** 2) == pytest.approx(dens.second_moment(t),
                                                                                      abs=1e-12)
    # Gaussian data: I = 1 / v and S = 1/2 log(2 pi e v) at every t
    g = GaussianMixture.gaussian(1, 0.25)
    for t in (0.1, 1.0):
        vt = 1.0 + (0.25 - 1.0) * math.exp(-2 * t)
        assert thermo.fisher_information(g, t) == pytest.approx(1 / vt, rel=1e-10)
        assert thermo.entropy(g, t) == pytest.approx(0.5 * math.log(2 * math.pi * math.e * vt), rel=1e-10)
    # a wide density (v = 16): the grid spans +-12 standard deviations, not more
    wide = GaussianMixture.gaussian(1, 16.0)
    assert thermo.fisher_information(wide, 0.0) == pytest.approx(1 / 16, rel=1e-10)
    assert thermo.entropy(wide, 0.0) == pytest.approx(0.5 * math.log(2 * math.pi * math.e * 16), rel=1e-10)


def test_monte_carlo_expectation_uses_the_given_samples_seed_and_stream():
    dens = GaussianMixture.symmetric(0.8, 0.5, dim=2)
    t = 0.3
    x = dens.sample(500, t, 4, stream=77)
    lp, s = dens.log_prob_score(x, t)
    assert thermo.fisher_information(dens, t, samples=500, seed=4) == pytest.approx(
        float(np.mean(np.sum(s**2, 1))), rel=1e-14)
    assert thermo.entropy(dens, t, samples=500, seed=4) == pytest.approx(float(np.mean(-lp)), rel=1e-14)
    lp0 = dens.log_prob_score(dens.sample(300, t, 0, stream=77), t)[0]   # the default seed is 0
    assert thermo.entropy(dens, t, samples=300) == pytest.approx(float(np.mean(-lp0)), rel=1e-14)
    # Gaussian data in d = 2 by Monte Carlo: I = d / v
    g = GaussianMixture.gaussian(2, 0.5)
    vt = 1.0 + (0.5 - 1.0) * math.exp(-2 * t)
    assert thermo.fisher_information(g, t, samples=100_000) == pytest.approx(2 / vt, rel=0.01)


@pytest.mark.parametrize("dim", [1, 2])
def test_ensemble_rates_relations(dim):
    dens = GaussianMixture.symmetric(1.0, 0.4, dim=dim)
    times = [0.2, 0.9]
    r = thermo.ensemble_rates(dens, times, samples=4000)
    assert r["t"].tolist() == times
    fisher = np.array([thermo.fisher_information(dens, t, samples=4000) for t in times])
    second = np.array([dens.second_moment(t) for t in times])
    np.testing.assert_allclose(r["fisher"], fisher, rtol=1e-14)
    np.testing.assert_allclose(r["pi"], second - 2 * dim + fisher, rtol=1e-13)
    np.testing.assert_allclose(r["pi_rev"], r["pi"], rtol=0)
    np.testing.assert_allclose(r["phi"], second - dim, rtol=1e-13)
    np.testing.assert_allclose(r["dS"], fisher - dim, rtol=1e-13)
    np.testing.assert_allclose(r["phi_rev"], second - 3 * dim + 2 * fisher, rtol=1e-13)
    np.testing.assert_allclose(r["dS_rev"], dim - fisher, rtol=1e-13)


def test_ensemble_rates_of_gaussian_data_in_closed_form():
    g = GaussianMixture.gaussian(1, 2.5)
    t = np.array([0.05, 0.5, 1.5])
    v = 1.0 + 1.5 * np.exp(-2 * t)
    r = thermo.ensemble_rates(g, t)
    np.testing.assert_allclose(r["pi"], (v - 1) ** 2 / v, rtol=1e-9)
    np.testing.assert_allclose(r["phi_rev"], v - 3 + 2 / v, rtol=1e-9)
    np.testing.assert_allclose(r["dS_rev"], 1 - 1 / v, rtol=1e-9)


def test_integrate_is_simpson():
    x = np.linspace(0.0, 2.0, 5)
    assert thermo.integrate(x, x**3) == pytest.approx(4.0, abs=1e-14)  # exact for cubics
    assert thermo.integrate(x, np.ones(5)) == pytest.approx(2.0, abs=1e-15)


def test_quadrature_grid_and_monte_carlo_size_are_the_documented_defaults():
    # d = 1: the trapezoid rule on 4001 points over max|m_t| +- 12 sd_max (docs/diffusion.md). A kinked integrand
    # (|x - 0.3|) makes the trapezoid error O(h^2) ~ 1e-6 here, so a grid with one point more or less, or a half
    # width of 11 or 13 sd, changes the value by far more than the 1e-14 asked below
    dens = GaussianMixture(np.array([[2.0], [-1.0]]), [0.2, 0.5], [0.3, 0.7])
    t = 0.25
    m, v = dens.marginal(t)
    half = float(np.max(np.abs(m)) + 12.0 * np.sqrt(np.max(v)))
    x = np.linspace(-half, half, 4001)[:, None]
    lp, _ = dens.log_prob_score(x, t)
    kink = np.abs(x[:, 0] - 0.3)
    want = float(np.trapezoid(np.exp(lp) * kink, x[:, 0]))
    assert thermo.expectation(dens, t, lambda x, lp, s: np.abs(x[:, 0] - 0.3)) == pytest.approx(want, rel=1e-14)
    coarser = np.linspace(-half, half, 4000)
    lp2, _ = dens.log_prob_score(coarser[:, None], t)
    assert abs(float(np.trapezoid(np.exp(lp2) * np.abs(coarser - 0.3), coarser)) - want) > 1e-10
    # d > 1: Monte Carlo over 200,000 Philox samples of stream 77, seed 0
    dens2 = GaussianMixture.symmetric(0.8, 0.5, dim=2)
    x2 = dens2.sample(200_000, t, 0, stream=77)
    lp2, s2 = dens2.log_prob_score(x2, t)
    assert thermo.fisher_information(dens2, t) == pytest.approx(float(np.mean(np.sum(s2**2, 1))), rel=1e-14)
