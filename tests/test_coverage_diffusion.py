"""Coverage (#19): the diffusion demo at a reduced size, the speciation / collapse / learned sections end to end
(through the CLI's human output), and the sampler's input checks, each checked against closed forms."""
from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest
from toolbox.cli.main import app
from typer.testing import CliRunner

from toolbox.core import native
from toolbox.core.errors import UserInputError
from toolbox.diffusion import demo as diffusion_demo
from toolbox.diffusion import pipeline, sampler
from toolbox.diffusion import transitions as tr
from toolbox.diffusion.densities import GaussianMixture

runner = CliRunner()
WIDE = {"COLUMNS": "400"}  # rich tables on one line per row, so the cells can be read back


def _t_s(mu: float, s2: float) -> float:
    """Curvature speciation time of 1/2 N(mu, s2) + 1/2 N(-mu, s2) (docs/diffusion.md)."""
    return 0.5 * np.log(mu**2 + np.sqrt(mu**4 + (s2 - 1.0) ** 2))


def _t_c(n: int, d: int) -> float:
    """Collapse time of unit-variance Gaussian clusters: alpha + 1/2 ln(Delta_t / (Delta_t + e^-2t)) = 0 with
    alpha = ln n / d, i.e. e^-2t = 1 - n^(-2/d)."""
    return -0.5 * np.log1p(-float(n) ** (-2.0 / d))


def _cheap_cloning_theory(monkeypatch):
    """E sum r_k^2 from 4000 samples instead of 100000 (the tests bound it, they do not compare it)."""
    real = tr.cloning_theory
    monkeypatch.setattr(pipeline.tr, "cloning_theory",
                        lambda density, t, samples=100_000, seed=0: real(density, t, min(samples, 4000), seed))


def _small_run(monkeypatch):
    _cheap_cloning_theory(monkeypatch)
    saved = []

    def record(fig, path):  # the figures are built, not rendered (PNG encoding is most of a small run's time)
        import matplotlib.pyplot as plt

        saved.append(path.relative_to(path.parents[1]))
        plt.close(fig)

    monkeypatch.setattr(pipeline, "save_figure", record)
    real = diffusion_demo.run

    def small(cfg, out, sections, **kw):
        cfg = dataclasses.replace(cfg, particles=1500, steps=200, clone_pairs=100, collapse_n=500,
                                  collapse_samples=64, memo_n=40, memo_samples=40)
        return real(cfg, out, sections, **kw)

    monkeypatch.setattr(diffusion_demo, "run", small)
    return saved


def test_demo_entry_matches_closed_forms(tmp_path, monkeypatch):
    figures = _small_run(monkeypatch)
    res = diffusion_demo.run_demo(tmp_path, seed=1, device="cpu", log=lambda *a, **k: None)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary) >= {"entropy", "rates", "speciation", "collapse"}
    assert sorted(map(str, figures)) == ["collapse/collapse.png", "entropy/entropy_histograms_forward.png",
                                         "entropy/entropy_histograms_reverse.png", "entropy/ift_convergence.png",
                                         "rates/rates.png", "speciation/speciation.png"]
    # the demo's numbers are the run's
    fwd, rev = summary["entropy"]["ift"]
    assert res["ift_forward"] == fwd["mean_exp"] and res["ift_reverse"] == rev["mean_exp"]
    assert res["pi_0"] == summary["rates"]["pi_0"] == pytest.approx(0.84504, abs=1e-5)  # mu = 1, sigma^2 = 0.4
    assert res["t_star"] == summary["rates"]["t_star"]
    # IFT <e^-dS_tot> = 1 within 4 standard errors, both directions
    for row in (fwd, rev):
        assert abs(row["mean_exp"] - 1.0) < 4 * row["se_exp"], row
    # speciation: the closed form, the bisection root and the covariance criterion Lambda = mu^2 + sigma^2
    table = summary["speciation"]["table"]
    assert [(r["mu"], r["sigma2"]) for r in table] == [(1.0, 1.0), (1.0, 0.1), (1.0, 0.4), (1.0, 1.0)]
    for r in table:
        assert r["t_S_curvature_formula"] == pytest.approx(_t_s(r["mu"], r["sigma2"]), rel=1e-12)
        assert r["t_S_curvature_root"] == pytest.approx(_t_s(r["mu"], r["sigma2"]), abs=1e-6)
        assert r["Lambda"] == pytest.approx(r["mu"] ** 2 + r["sigma2"], rel=1e-12)
        assert r["t_S_covariance"] == pytest.approx(0.5 * np.log(r["mu"] ** 2 + r["sigma2"]), rel=1e-12)
        assert r["phase"] == "symmetry breaking"  # t_S > 0 and sigma^2 <= 2
    spec = summary["speciation"]
    assert spec["clone_Lambda"] == pytest.approx(65.0)  # d = 64: |m|^2 + sigma^2 with m = ones(d)
    assert spec["clone_t_S_covariance"] == pytest.approx(0.5 * np.log(65))
    clones = list(csv.DictReader((tmp_path / "speciation" / "cloning.csv").open()))
    assert [float(c["t"]) for c in clones] == [1.5, 2.0794, 3.0]
    for c in clones:  # a binomial proportion of 100 pairs and its standard error
        phi = float(c["phi"])
        assert 0 <= phi <= 1 and round(phi * 100) == pytest.approx(phi * 100, abs=1e-9)
        assert float(c["se"]) == pytest.approx(np.sqrt(phi * (1 - phi) / 100), rel=1e-9)
        assert 0.5 <= float(c["phi_theory"]) <= 1.0  # sum_k r_k^2 of two classes
    at = spec["clone_phi_at_half_ln_d"]
    assert at["t"] == 2.0794  # the clone time nearest 1/2 ln 64 = 2.0794
    # collapse: alpha = ln n / d, t_C in closed form, and the theory column f = max(0, alpha + 1/2 ln(D/(D+e^-2t)))
    col = summary["collapse"]
    assert col["alpha"] == pytest.approx(np.log(500) / 64, rel=1e-12)
    assert res["t_C_formula"] == col["t_C_formula"] == pytest.approx(_t_c(500, 64), rel=1e-10)
    for p in col["probes"]:
        delta = 1 - np.exp(-2 * p["t"])
        want = max(0.0, col["alpha"] + 0.5 * np.log(delta / (delta + np.exp(-2 * p["t"]))))
        assert p["f_theory"] == pytest.approx(want, rel=1e-12, abs=1e-15)
        assert 0 <= p["w_self"] <= 1 and p["f"] >= 0
    assert [p["t"] for p in col["probes"]] == [0.8, 1.2, 1.6, 2.0, 2.4]
    assert all(0 <= m["memorised_fraction"] <= 1 for m in col["memorisation"])
    assert col["digits_alpha"] == pytest.approx(np.log(40) / 64, rel=1e-12)  # 8x8 digits: d = 64
    assert f"t_S(1,0.4) = {spec['table'][2]['t_S_curvature_formula']:.6f}" in res["headline"]
    assert f"(formula {col['t_C_formula']:.2f})" in res["headline"]


@pytest.fixture
def one_thread():
    """The learned score's 500 sampling steps are tiny MLP calls: intra-op threads only spin on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_cli_learned_speciation_collapse_human_output(tmp_path, monkeypatch, one_thread):
    _cheap_cloning_theory(monkeypatch)
    out = tmp_path / "run"
    args = ["sample-diffusion", "learned", "speciation", "collapse", "--out", str(out), "--device", "cpu",
            "--seed", "2", "--set", "learned_train_steps=40", "--set", "learned_particles=400",
            "--set", "clone_dim=16", "--set", "clone_pairs=60", "--set", "clone_times=[1.0, 1.3863]",
            "--set", "collapse_dim=32", "--set", "collapse_n=300", "--set", "collapse_samples=32",
            "--set", "collapse_times=[0.5, 1.0, 2.0]", "--set", "memo_n=30", "--set", "memo_samples=30"]
    res = runner.invoke(app, args, env=WIDE)
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    # learned score: the exact-score row obeys the IFT against the exact marginals, the data row's mean log-density
    # is -H(p0) of four well-separated N(., 0.3 I_2): ln 4 + ln(2 pi e 0.3)
    learned = json.loads((out / "learned" / "learned.json").read_text())
    exact, net, data = learned["table"]
    assert (exact["score"], net["score"], data["score"]) == ("exact score", "learned score", "data (reference)")
    assert abs(exact["mean_exp_neg_dS_tot"] - 1.0) < 4 * exact["se_exp_neg_dS_tot"], exact
    assert data["mean_log_p0_of_samples"] == pytest.approx(-(np.log(4) + np.log(2 * np.pi * np.e * 0.3)), abs=0.03)
    assert net["mean_log_p0_of_samples"] < data["mean_log_p0_of_samples"] + 0.5  # 40 steps do not beat the data
    losses = [float(r["loss"]) for r in csv.DictReader((out / "learned" / "score_training.csv").open())]
    assert len(losses) == 40 and learned["final_loss"] == pytest.approx(np.mean(losses[-50:]), rel=1e-9)
    errors = [float(r["mse"]) for r in csv.DictReader((out / "learned" / "score_error.csv").open())]
    assert len(errors) == 8 and all(e > 0 and np.isfinite(e) for e in errors)
    for name in ("learned/learned.png", "speciation/speciation.png", "collapse/collapse.png", "config.toml"):
        assert (out / name).is_file(), name
    # speciation / collapse at the CLI's settings
    spec, col = summary["speciation"], summary["collapse"]
    assert spec["clone_Lambda"] == pytest.approx(17.0)
    assert spec["clone_phi_at_half_ln_d"]["t"] == 1.3863  # nearest 1/2 ln 16
    assert col["t_C_formula"] == pytest.approx(_t_c(300, 32), rel=1e-10)
    # the human table (stderr) carries each section's headline, built from the same numbers
    text = res.output
    assert "sample-diffusion" in text
    assert f"log p0 of samples: exact {exact['mean_log_p0_of_samples']:.3f}" in text
    assert f"learned {net['mean_log_p0_of_samples']:.3f}" in text
    assert f"t_S(1,1) = {_t_s(1, 1):.6f}" in text and f"t_S(1,0.1) = {_t_s(1, 0.1):.6f}" in text
    assert f"phi(1/2 ln d) = {spec['clone_phi_at_half_ln_d']['phi']:.3f}" in text
    assert f"t_C formula {col['t_C_formula']:.4f}" in text
    assert f"Gaussian-cluster {col['digits_t_C_gaussian_formula']:.3f}" in text


def test_cli_simulate_phase_fp_human_headlines(tmp_path):
    out = tmp_path / "run"
    args = ["sample-diffusion", "simulate", "phase-diagram", "fp-potential", "--out", str(out), "--device", "cpu",
            "--particles", "300", "--steps", "50", "--set", "fp_samples=200", "--set", "fp_points=20",
            "--set", "fp_times=[0.42]", "--set", "fp_references=64",
            "--set", "fp_dim_samples=200"]
    res = runner.invoke(app, args, env=WIDE)
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    sim = summary["simulate"]
    assert f"forward euler: {sim['particle_steps_per_s']:.3g} particle-steps/s ({sim['backend']})" in res.output
    tests = summary["phase-diagram"]["unstable_test"]
    assert [t["sigma2"] for t in tests] == [3.0, 1.0]
    assert [t["phase"] for t in tests] == ["unstable symmetry breaking", "symmetry breaking"]
    for t in tests:
        assert f"sigma2={t['sigma2']:g} ({t['phase']}): KS {t['ks_statistic']:.4f}" in res.output
        assert t["target_var"] == pytest.approx(1.0 + t["sigma2"])
    assert f"inflection points: {summary['fp-potential']['inflection_points']}" in res.output


def test_sampler_rejects_bad_inputs(monkeypatch):
    dens = GaussianMixture.symmetric(1.0, 0.5)
    with pytest.raises(UserInputError, match="scheme must be one of"):
        sampler.simulate(dens, 10, "forward", "rk4")
    with pytest.raises(UserInputError, match="at least one particle"):
        sampler.simulate(dens, 0)
    with pytest.raises(UserInputError, match=r"x_start must be \[4, 1\]"):
        sampler.simulate(dens, 4, x_start=np.zeros((3, 1)))
    with pytest.raises(UserInputError, match="backend must be auto, native or reference"):
        sampler.simulate(dens, 4, backend="fortran")
    import torch

    if not (native.available() and native.cuda_kernels_usable() and torch.cuda.is_available()):
        with pytest.raises(UserInputError, match="device cuda needs the CUDA build"):
            sampler.simulate(dens, 4, device="cuda")
    # without the extension: native is refused, and the fused epilogue for a learned score too
    monkeypatch.setattr(native, "available", lambda: False)
    with pytest.raises(UserInputError, match="native extension is not built"):
        sampler.simulate(dens, 4, backend="native")
    with pytest.raises(UserInputError, match="fused epilogue needs the native extension"):
        sampler.simulate_external(dens, np.zeros((4, 1)), "reverse", 0.0, 1.0, 10)


def test_reference_snapshots_are_the_trajectory(tmp_path):
    """backend=reference with snapshots: snapshot k is the state after k * stride steps, the last one x_end, and
    the run equals the native one (same Philox noise)."""
    dens = GaussianMixture.symmetric(1.0, 0.5)
    ref = sampler.simulate(dens, 64, "reverse", "euler", 0.0, 1.0, 20, seed=4, snapshot_stride=5, chunk=16,
                           backend="reference")
    assert ref.backend == "reference" and ref.snapshots.shape == (5, 64, 1)
    np.testing.assert_array_equal(ref.snapshots[0], ref.x_start)
    np.testing.assert_array_equal(ref.snapshots[-1], ref.x_end)
    np.testing.assert_allclose(ref.snapshot_times(5), [1.0, 0.75, 0.5, 0.25, 0.0])
    if native.available():
        nat = sampler.simulate(dens, 64, "reverse", "euler", 0.0, 1.0, 20, seed=4, snapshot_stride=5)
        np.testing.assert_allclose(nat.x_end, ref.x_end, rtol=0, atol=1e-9)
        np.testing.assert_allclose(nat.snapshots, ref.snapshots, rtol=0, atol=1e-9)
