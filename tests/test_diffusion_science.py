"""The paper's and the notes' reference numbers: speciation, entropy production, the fluctuation theorem, ensemble
rates, Biroli's cloning and collapse, and the Franz-Parisi potential (docs/diffusion.md)."""
import numpy as np
import pytest

from toolbox.diffusion import thermo
from toolbox.diffusion import transitions as tr
from toolbox.diffusion.densities import GaussianMixture
from toolbox.diffusion.sampler import simulate


@pytest.mark.parametrize("mu,sigma2,want", [(1.0, 1.0, 0.346574), (1.0, 0.1, 0.426220), (1.0, 0.4, 0.386485)])
def test_speciation_formula_and_root(mu, sigma2, want):
    formula = tr.speciation_formula(mu, sigma2)
    root = tr.speciation_root(GaussianMixture.symmetric(mu, sigma2))
    assert formula == pytest.approx(want, abs=5e-7)
    assert abs(formula - root) < 1e-6


def test_speciation_absent_and_covariance_criterion():
    assert np.isnan(tr.speciation_root(GaussianMixture.symmetric(0.3, 0.5)))
    assert tr.speciation_formula(0.3, 0.5) < 0
    lam, t_s = tr.speciation_covariance(GaussianMixture.symmetric(1.0, 1.0, dim=256))
    assert lam == pytest.approx(257.0) and t_s == pytest.approx(0.5 * np.log(257.0))


def test_phase_diagram_three_phases():
    assert tr.phase(0.1, 0.25) == 0 and tr.phase(1.0, 0.4) == 1 and tr.phase(0.1, 2.89) == 2
    codes = tr.phase_diagram(np.linspace(0, 1, 21), np.linspace(0.05, 2, 20))
    assert set(np.unique(codes)) == {0, 1, 2}


def test_gaussian_closed_forms():
    assert thermo.gaussian_mean_production(0.25, 1.0) == pytest.approx(0.315383, abs=1e-6)
    assert thermo.gaussian_mean_production(0.1, 10.0) == pytest.approx(0.701293, abs=1e-6)
    g = GaussianMixture.gaussian(1, 0.25)
    t = np.linspace(0, 1, 21)
    r = thermo.ensemble_rates(g, t)
    closed = thermo.gaussian_rates(0.25, t)
    for key in ("pi", "phi", "dS"):
        np.testing.assert_allclose(r[key], closed[key], rtol=1e-7, atol=1e-9)
    # d > 1 goes through Monte Carlo
    g3 = GaussianMixture.gaussian(3, 0.5)
    mc = thermo.ensemble_rates(g3, [0.3], samples=200_000)["pi"][0]
    assert mc == pytest.approx(thermo.gaussian_rates(0.5, 0.3, 3)["pi"], rel=0.02)


def test_gaussian_entropy_production_exact_ou():
    """Notes check 2: d = 1, sigma^2 = 0.25, T = 1, exact OU, N = 1e5: <S_tot> = 0.31538 and IFT within 3 SE."""
    run = simulate(GaussianMixture.gaussian(1, 0.25), 100_000, "forward", "exact", 0.0, 1.0, 10, seed=0)
    s = thermo.ift_stats(run.total)
    assert abs(s["mean_total"] - 0.315383) < 3 * s["se_total"]
    assert abs(s["z"]) < 3
    np.testing.assert_allclose(run.total_discrete, run.total)  # exact OU: the kernels' ratio is the heat


def _paper_ift(direction, n, seed=0):
    run = simulate(GaussianMixture.symmetric(1.0, 1.0), n, direction, "euler", 0.0, 10.0, 1000, seed=seed,
                   stream={"forward": 0, "reverse": 1}[direction])
    return thermo.ift_stats(run.total), thermo.ift_stats(run.total_discrete)


@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_paper_fluctuation_theorem(direction):
    """Notes check 3 at N = 3e4 (the full N = 2e5 run is the slow test below)."""
    cont, disc = _paper_ift(direction, 30_000)
    assert abs(cont["z"]) < 4 and abs(disc["z"]) < 4
    assert cont["mean_total"] == pytest.approx(0.16317, abs=0.006)


@pytest.mark.slow
@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_paper_fluctuation_theorem_full(direction):
    cont, disc = _paper_ift(direction, 200_000, seed=1)
    assert abs(cont["z"]) < 4 and abs(disc["z"]) < 4
    assert cont["mean_total"] == pytest.approx(0.16317, abs=0.005)


def test_production_integral_paper_mixture():
    t = np.linspace(0, 10, 1001)
    assert thermo.integrate(t, thermo.ensemble_rates(GaussianMixture.symmetric(1, 1), t)["pi"]) == \
        pytest.approx(0.16317, abs=1e-5)


def test_discrete_kernel_ift_holds_at_coarse_steps():
    """The kernel-ratio Delta S_tot satisfies the IFT at any step size; the continuum one does not (reverse)."""
    dens = GaussianMixture.symmetric(1.0, 0.5)
    run = simulate(dens, 40_000, "reverse", "euler", 0.0, 3.0, 15, seed=4)
    disc, cont = thermo.ift_stats(run.total_discrete), thermo.ift_stats(run.total)
    assert abs(disc["z"]) < 4
    assert abs(cont["z"]) > 4


def test_rates_figs_9_10():
    """Notes check 4: mu = 1, sigma^2 = 0.4."""
    dens = GaussianMixture.symmetric(1.0, 0.4)
    t = np.linspace(0, 3, 301)
    r = thermo.ensemble_rates(dens, t)
    assert r["pi"][0] == pytest.approx(0.84504, abs=1e-5)
    assert r["dS"][0] == pytest.approx(0.44504, abs=1e-5)
    assert r["phi"][0] == pytest.approx(0.4, abs=1e-9)
    assert thermo.integrate(t, r["pi"]) == pytest.approx(0.10854, abs=1e-5)
    fine = np.linspace(0.45, 0.55, 201)
    t_star = fine[np.argmin(thermo.ensemble_rates(dens, fine)["phi_rev"])]
    assert abs(t_star - 0.493) <= 0.005
    assert tr.zero_crossing(t, r["phi_rev"]) == pytest.approx(0.244, abs=0.002)
    np.testing.assert_allclose(r["pi_rev"], r["pi"])  # pi* = pi
    for s in (0.2, 1.0):  # dS/dt = I - 1 against the exact entropy's finite difference
        fd = (thermo.entropy(dens, s + 1e-4) - thermo.entropy(dens, s - 1e-4)) / 2e-4
        assert fd == pytest.approx(thermo.ensemble_rates(dens, [s])["dS"][0], abs=1e-6)


def test_cloning_at_half_log_d():
    """Notes check 5: d = 256, m = ones(256): phi(1/2 ln 256) = 0.775 +- 0.03 (theory 0.7752)."""
    dens = GaussianMixture.symmetric(1.0, 1.0, dim=256)
    t = 0.5 * np.log(256)
    assert tr.cloning_theory(dens, t) == pytest.approx(0.7752, abs=0.005)
    res = tr.cloning_probe(dens, t, 1000, h=0.02, seed=0)
    assert abs(res["phi"] - 0.775) < 0.03


def test_collapse_times():
    assert tr.collapse_time_gaussian(np.log(20000) / 256) == pytest.approx(1.2988, abs=1e-4)
    assert tr.collapse_time_gaussian(np.log(20000) / 4096) == pytest.approx(2.6671, abs=1e-4)
    points = tr.biroli_training_set(20000, 256, seed=0)
    probes = [tr.collapse_probe(points, t, 96, seed=0) for t in (1.1, 1.25, 1.4, 1.55)]
    t_c = tr.zero_crossing([p["t"] for p in probes], [p["w_self"] - 0.5 for p in probes])
    assert abs(t_c - 1.30) < 0.1
    assert probes[-1]["f"] == pytest.approx(np.log(20000) / 256 + 0.5 * np.log(1 - np.exp(-3.1)), abs=0.004)


def test_memorisation_under_empirical_score():
    """With few training points the exact empirical score reproduces them; with many it generalises more."""
    gen = np.random.default_rng(0)
    small = GaussianMixture.empirical(gen.normal(size=(5, 8)))
    run = simulate(small, 200, "reverse", "euler", 0.02, 4.0, 800, seed=0)
    assert tr.memorisation_fraction(tr.denoise(small, run.x_end, 0.02), small.means) > 0.95
    np.testing.assert_allclose(tr.denoise(small, run.x_end, 0.02)[:3], small.means[np.argmin(
        np.sum((run.x_end[:3, None] - np.exp(-0.02) * small.means[None]) ** 2, 2), 1)], atol=1e-3)


def test_franz_parisi():
    dens = GaussianMixture.symmetric(1.0, 0.1)
    q = np.linspace(0.1, 6.0, 60)
    v, dv, ddv = tr.franz_parisi_1d(dens, 0.42, q, samples=4000)
    assert np.all(np.isfinite(v)) and np.all(np.isfinite(ddv))
    np.testing.assert_allclose(np.gradient(v, q)[5:-5], dv[5:-5], rtol=0.05, atol=0.02)
    # empirical measure: the minimum of V sits at the self-overlap q = 0 after collapse, away from it before
    points = tr.biroli_training_set(400, 64, seed=0)
    t_c = tr.collapse_time_gaussian(np.log(400) / 64)
    qe = np.linspace(0.0, 6.0, 61)
    assert qe[np.argmin(tr.franz_parisi_empirical(points, 2 * t_c, qe, 512, bandwidth=0.1).v)] > 1.0
    assert qe[np.argmin(tr.franz_parisi_empirical(points, 0.5 * t_c, qe, 512, bandwidth=0.1).v)] == 0.0


def test_franz_parisi_mixture_is_the_1d_potential_in_d_1():
    """The exact-inner-integral estimator in d = 1 is the authors' V up to the q-independent
    E ln p_t(x_t) + 1/2 ln(2 pi Delta) (same samples), so V' and V'' agree."""
    dens = GaussianMixture.symmetric(1.0, 0.1)
    q, t = np.linspace(0.1, 6.0, 40), 0.42
    v, dv, ddv = tr.franz_parisi_1d(dens, t, q, samples=2000)
    est = tr.franz_parisi_mixture(dens, t, q, samples=2000)
    assert np.ptp(v - est.v) < 1e-9
    np.testing.assert_allclose(est.ddv, ddv, atol=1e-3 * np.ptp(ddv))
    np.testing.assert_allclose(est.dv, dv, atol=1e-4 * np.ptp(dv))


@pytest.mark.parametrize("dim,t", [(4, 0.1), (32, 0.5)])
def test_franz_parisi_d_gt_1_against_quadrature_reference(dim, t):
    """Gaussian data N(0, 0.5 I_d): V'' of the Monte Carlo estimator within its error bar of the 1-D quadrature
    reference (max |z| over 25 correlated q values < 4), and flagged reliable."""
    q = np.linspace(0.1, 2.5, 25)
    ref = tr.franz_parisi_gaussian(0.5, dim, t, q)
    est = tr.franz_parisi_mixture(GaussianMixture.gaussian(dim, 0.5), t, q, samples=1500, seed=1)
    assert np.max(np.abs(est.ddv - ref.ddv) / est.se_ddv) < 4
    assert np.max(np.abs(est.v - ref.v) / est.se_v) < 4
    assert tr.fp_reliability(est)[0]
    assert np.max(np.abs(ref.ddv - tr.franz_parisi_gaussian(0.5, dim, t, q, nodes=256).ddv)) < 1e-3 * np.ptp(ref.ddv)


def test_franz_parisi_error_bars_are_honest():
    """The spread of V'' over 6 independent seeds agrees with the reported SE within a factor 2 (median over q),
    for the d > 1 mixture and for the empirical measure."""
    q = np.linspace(0.1, 3.0, 12)
    dens = GaussianMixture.symmetric(1.0, 0.1, dim=8)
    ests = [tr.franz_parisi_mixture(dens, 0.42, q, samples=600, seed=s) for s in range(6)]
    ratio = np.median(np.std([e.ddv for e in ests], 0, ddof=1) / np.mean([e.se_ddv for e in ests], 0))
    assert 0.5 < ratio < 2
    points = tr.biroli_training_set(200, 32, seed=0)
    qe = np.linspace(0.0, 4.0, 12)
    ests = [tr.franz_parisi_empirical(points, 0.6, qe, 256, seed=s) for s in range(6)]
    ratio = np.median(np.std([e.ddv for e in ests], 0, ddof=1) / np.mean([e.se_ddv for e in ests], 0))
    assert 0.5 < ratio < 2


def test_franz_parisi_reliability_flag():
    """The old default (256 references) leaves the empirical V'' noise-dominated; 2048 resolve it."""
    points = tr.biroli_training_set(400, 64, seed=0)
    qe = np.linspace(0.0, 6.0, 41)
    t = tr.collapse_time_gaussian(np.log(400) / 64)
    ok, why = tr.fp_reliability(tr.franz_parisi_empirical(points, t, qe, 128))
    assert not ok and "noise-dominated" in why
    assert tr.fp_reliability(tr.franz_parisi_empirical(points, t, qe, 2048))[0]


def test_unstable_phase_still_samples():
    """The paper says sampling fails for sigma^2 > 2; the exact reverse SDE reproduces p_0 there (measured)."""
    dens = GaussianMixture.symmetric(1.0, 3.0)
    assert tr.phase(1.0, 3.0) == 2
    run = simulate(dens, 20_000, "reverse", "euler", 0.0, 5.0, 500, seed=0)
    assert np.all(np.isfinite(run.x_end))
    assert run.x_end.var() == pytest.approx(4.0, rel=0.05)


def test_learned_score_by_denoising_score_matching():
    import torch

    from toolbox.diffusion.score_net import score_error, train_score_mlp

    torch.set_num_threads(1)
    dens = GaussianMixture.symmetric(1.5, 0.3)
    learned, losses = train_score_mlp(dens, steps=300, batch=256, hidden=64, seed=0)
    assert np.mean(losses[-30:]) < np.mean(losses[:30])
    err = score_error(learned, dens, [0.5, 1.0, 2.0])
    assert np.all(err < 0.15 * np.array([thermo.fisher_information(dens, t) for t in (0.5, 1.0, 2.0)]))
    x0 = dens.sample(300, 3.0, 0)
    run = simulate(learned, 300, "reverse", "euler", 0.0, 3.0, 150, seed=0, x_start=x0, backend="reference")
    assert np.all(np.isfinite(run.heat)) and np.isnan(run.logp_end).all()
    from toolbox.core import native
    from toolbox.diffusion.sampler import simulate_external

    if native.available():  # the network in torch, the step / noise / heat epilogue fused: same trajectories
        fused = simulate_external(learned, x0, "reverse", 0.0, 3.0, 150, seed=0)
        np.testing.assert_allclose(fused.x_end, run.x_end, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(fused.heat, run.heat, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("mu, sigma2, expected", [(1.0, 0.4, 0.4931), (2.0, 0.4, 1.1458), (1.0, 0.1, 0.7091),
                                                  (2.0, 1.0, 1.1838), (0.2, 3.0, 0.7972)])
def test_optimal_time_is_searched_over_the_whole_time_range(mu, sigma2, expected):
    """t* = argmin phi*(t) was searched in a fixed window [0.4, 0.6] (0.6 for mu = 2 and sigma2 = 0.1); now over
    [0, t_max] with a bounded refinement. Reference: a dense scan of phi* (step 1e-4) near the optimum."""
    from toolbox.diffusion.pipeline import optimal_time

    dens = GaussianMixture.symmetric(mu, sigma2)
    times = np.linspace(0.0, 3.0, 301)
    t_star, _, edge = optimal_time(dens, times, thermo.ensemble_rates(dens, times)["phi_rev"])
    dense = np.arange(expected - 0.02, expected + 0.02, 1e-4)
    assert edge is None and t_star == pytest.approx(dense[np.argmin(thermo.ensemble_rates(dens, dense)["phi_rev"])],
                                                    abs=2e-4)


def test_optimal_time_on_the_edge_is_reported_not_returned():
    from toolbox.diffusion.pipeline import optimal_time

    dens = GaussianMixture.symmetric(0.7, 0.4)  # phi* decreases towards 0 beyond t = 3: no interior minimum
    times = np.linspace(0.0, 3.0, 301)
    t_star, _, edge = optimal_time(dens, times, thermo.ensemble_rates(dens, times)["phi_rev"])
    assert t_star is None and edge == "upper"
