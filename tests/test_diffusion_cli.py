"""End-to-end `toolbox sample-diffusion` through typer's CliRunner, and the demo entry."""
import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from toolbox.cli.main import app

runner = CliRunner()


def test_cli_entropy_and_rates_json(tmp_path):
    out = tmp_path / "run"
    res = runner.invoke(app, ["sample-diffusion", "entropy", "rates", "simulate", "--json", "--out", str(out),
                              "--particles", "3000", "--steps", "200", "--set", "t_hi=2.0",
                              "--set", "rates_points=101", "--set", "direction=reverse", "--seed", "3"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["schema_version"] == 1
    fwd, rev = doc["entropy"]["ift"]
    assert abs(fwd["z"]) < 4 and abs(rev["z"]) < 4 and abs(rev["z_discrete"]) < 4
    assert abs(doc["rates"]["pi_0"] - 0.84504) < 1e-5
    for name in ("config.toml", "summary.json", "entropy/ift.csv", "entropy/ift_convergence.png",
                 "entropy/entropy_histograms_reverse.png", "rates/rates.png", "rates/rates.csv",
                 "simulate/samples.npz", "simulate/trajectories.png"):
        assert (out / name).is_file(), name
    assert "rates_points = 101" in (out / "config.toml").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["entropy"]["ift"] == doc["entropy"]["ift"] and summary["rates"] == doc["rates"]
    written = {r["process"]: r for r in csv.DictReader((out / "entropy/ift.csv").open())}

    # -- entropy: the fluctuation theorem on a non-degenerate ensemble (a constant dS_tot has z = 0 and passes |z| < 4)
    for row in (fwd, rev):
        name, n = row["process"], row["n"]
        assert n == 3000 and float(written[name]["mean_exp"]) == row["mean_exp"]
        traj = list(csv.DictReader((out / f"entropy/trajectory_entropies_{name}.csv").open()))
        assert len(traj) == n  # the file keeps the first 5000 trajectories: here all of them
        s_sys, s_med, s_tot = (np.array([float(t[k]) for t in traj]) for k in ("dS_sys", "dS_medium", "dS_tot"))
        # dS_tot = dS_sys + dS_medium per trajectory (float64 sum of O(1) numbers: 1e-12)
        np.testing.assert_allclose(s_tot, s_sys + s_med, rtol=0, atol=1e-12)
        # the spread is real: std(dS_tot) is O(0.5) on this run; and the SEs are computed from it (ddof = 1)
        assert s_tot.std(ddof=1) > 0.1 and row["se_dS_tot"] == pytest.approx(s_tot.std(ddof=1) / np.sqrt(n), rel=1e-12)
        w = np.exp(-s_tot)
        assert w.std(ddof=1) > 0.1 and row["se_exp"] == pytest.approx(w.std(ddof=1) / np.sqrt(n), rel=1e-12)
        # integral fluctuation theorem <e^-dS_tot> = 1: within 4 of its own standard errors (sigma^2 = 1: finite
        # variance, diffusion.md), for the continuum and the discrete-kernel estimator
        assert row["mean_exp"] == pytest.approx(w.mean(), rel=1e-12)
        assert abs(row["mean_exp"] - 1) < 4 * row["se_exp"], row
        assert abs(row["mean_exp_discrete"] - 1) < 4 * row["se_exp_discrete"], row
        # entropy balance: <dS_tot> = int pi dt, within 4 SE (SE ~ 0.01 here; the Euler bias at h = 0.01 is
        # <= 0.003 in diffusion.md's N = 2e5 table)
        assert abs(row["mean_dS_tot"] - doc["entropy"]["integral_pi"]) < 4 * row["se_dS_tot"], row
        assert row["mean_dS_tot"] == pytest.approx(row["mean_dS_sys"] + row["mean_dS_medium"], abs=1e-12)

    # -- rates, mu = 1, sigma^2 = 0.4: diffusion.md's closed forms (rounded to the printed digits)
    rates = doc["rates"]
    assert rates["phi_0"] == pytest.approx(1.0 + 0.4 - 1.0, abs=1e-12)  # phi(0) = E x^2 - d = mu^2 + sigma^2 - 1
    assert rates["dS_0"] == pytest.approx(rates["pi_0"] - rates["phi_0"], abs=1e-12)
    # t_S = 1/2 ln(mu^2 + sqrt(mu^4 + (sigma^2 - 1)^2)): the root search's tolerance, 1e-6
    assert rates["t_S_curvature"] == pytest.approx(0.5 * np.log(1 + np.sqrt(1 + 0.6**2)), abs=1e-6)
    # int_0^3 pi dt = 0.108541 (601-point Simpson); 101 points: Simpson error ~ h^4, 6^4 times larger, ~5e-6
    assert rates["integral_pi"] == pytest.approx(0.108541, abs=2e-5)
    # t* = 0.4931, phi*_min = -0.09115: printed rounding (5e-5, 5e-6) plus the scalar search's xatol (1e-5)
    assert rates["t_star"] == pytest.approx(0.4931, abs=1e-4) and rates["t_star_at_edge"] is None
    assert rates["phi_rev_min"] == pytest.approx(-0.09115, abs=1e-5)
    assert 0 < rates["dS_vs_entropy_fd_max_err"] <= 1.4e-7  # the documented bound
    table = list(csv.DictReader((out / "rates/rates.csv").open()))
    assert len(table) == 101 and float(table[0]["pi"]) == rates["pi_0"]
    for r in table:  # pi = phi + dS, phi* = pi + dS, dS* = -dS (exact identities of the rates, 1e-12)
        pi, phi, ds, phi_rev, ds_rev = (float(r[k]) for k in ("pi", "phi", "dS", "phi_rev", "dS_rev"))
        assert pi == pytest.approx(phi + ds, abs=1e-12) and phi_rev == pytest.approx(pi + ds, abs=1e-12)
        assert ds_rev == -ds

    # -- simulate: reverse Euler from t = 2 to 0 on 1/2 N(+-1, 1) (the paper's data)
    sim, samples = doc["simulate"], np.load(out / "simulate/samples.npz")
    x_end, x_start = samples["x_end"][:, 0], samples["x_start"][:, 0]
    assert sim["end_mean"][0] == pytest.approx(x_end.mean(), abs=1e-12)
    assert sim["end_var"][0] == pytest.approx(x_end.var(), rel=1e-12)
    # E x = 0, Var x = mu^2 + sigma^2 = 2, Var(x^2) = E x^4 - 4 = (1 + 6 + 3) - 4 = 6: 4 SE each (n = 3000)
    assert abs(x_end.mean()) < 4 * np.sqrt(2 / 3000)
    assert abs(x_end.var() - 2) < 4 * np.sqrt(6 / 3000)
    # log p_t at both ends in closed form: t = 2, means +-e^-2, variance 1 - e^-4 + e^-4 = 1; t = 0, the data
    logp = lambda x, m, v: np.logaddexp(*(-(x - s * m) ** 2 / (2 * v) for s in (1, -1))) - np.log(2) \
        - 0.5 * np.log(2 * np.pi * v)  # noqa: E731
    np.testing.assert_allclose(samples["logp_start"], logp(x_start, np.exp(-2.0), 1.0), rtol=0, atol=1e-10)
    np.testing.assert_allclose(samples["logp_end"], logp(x_end, 1.0, 1.0), rtol=0, atol=1e-10)
    snaps = samples["snapshots"]  # every 10th step of the first particles: first and last are x_start and x_end
    assert snaps.shape[0] == 200 // 10 + 1
    np.testing.assert_array_equal(snaps[0, :, 0], x_start[:snaps.shape[1]])
    np.testing.assert_array_equal(snaps[-1, :, 0], x_end[:snaps.shape[1]])
    ift = sim["ift"]
    assert ift["se_exp_neg"] > 0 and ift["se_total"] * np.sqrt(ift["n"]) > 0.1
    assert abs(ift["mean_exp_neg"] - 1) < 4 * ift["se_exp_neg"]


def test_cli_phase_diagram_and_fp(tmp_path):
    out = tmp_path / "pd"
    res = runner.invoke(app, ["sample-diffusion", "phase-diagram", "fp-potential", "--json", "--out", str(out),
                              "--particles", "2000", "--set", "fp_samples=1000", "--set", "fp_points=40",
                              "--set", "fp_times=[0.42]"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    tests = {t["phase"]: t for t in doc["phase-diagram"]["unstable_test"]}
    assert tests["unstable symmetry breaking"]["diverged"] == 0
    assert (out / "phase-diagram/phase_diagram.png").is_file() and (out / "fp-potential/franz_parisi.png").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["phase-diagram"] == doc["phase-diagram"] and summary["fp-potential"] == doc["fp-potential"]
    # phase fractions on the (mu, sigma) grid from the closed forms: speciation iff
    # mu^2 + sqrt(mu^4 + (sigma^2 - 1)^2) > 1 (t_S > 0), unstable iff also sigma^2 > 2; counts, so exact
    mu, sigma = np.meshgrid(np.linspace(0, 1, 201), np.linspace(0.01, 2, 200))
    s2 = sigma**2
    speciates = mu**2 + np.sqrt(mu**4 + (s2 - 1) ** 2) > 1
    expected = {"no symmetry breaking": np.mean(~speciates), "symmetry breaking": np.mean(speciates & (s2 <= 2)),
                "unstable symmetry breaking": np.mean(speciates & (s2 > 2))}
    assert doc["phase-diagram"]["fractions"] == pytest.approx(expected, abs=1e-12)
    # reverse sampling of 1/2 N(+-1, s2) for s2 = 3 (unstable) and 1: Var x = 1 + s2; Var(x^2) = E x^4 - (1 + s2)^2
    # with E x^4 = 1 + 6 s2 + 3 s2^2: sample variance within 4 SE; KS statistic below its 0.1% critical value
    for t in tests.values():
        s2 = t["sigma2"]
        assert t["n"] == 2000 and t["diverged"] == 0 and t["target_var"] == 1 + s2
        se = np.sqrt((1 + 6 * s2 + 3 * s2**2 - (1 + s2) ** 2) / t["n"])
        assert abs(t["sample_var"] - t["target_var"]) < 4 * se, t
        assert t["ks_statistic"] < 1.95 / np.sqrt(t["n"]), t
    assert tests["unstable symmetry breaking"]["sigma2"] == 3.0 and tests["symmetry breaking"]["sigma2"] == 1.0
    # Franz-Parisi, t = 0.42: one inflection at q = 2.03 (diffusion.md, 400 q points); within one step of this
    # run's 40-point q grid ((8.065 - 0.075) / 39 = 0.205)
    (q,) = doc["fp-potential"]["inflection_points"]["0.42"]
    assert abs(q - 2.03) < (8.065 - 0.075) / 39


def test_cli_bad_input_is_one_line_exit_2(tmp_path):
    for args in (["sample-diffusion", "nonsense"], ["sample-diffusion", "simulate", "--data", "nope"],
                 ["sample-diffusion", "simulate", "--set", "scheme=exact", "--set", "direction=reverse"],
                 ["sample-diffusion", "simulate", "--set", "particles=abc"],
                 ["sample-diffusion", "simulate", "--data", "empirical"]):
        res = runner.invoke(app, [*args, "--out", str(tmp_path / "bad")])
        assert res.exit_code == 2, (args, res.output)
        assert "Traceback" not in res.output


def test_cli_empirical_file(tmp_path):
    pts = tmp_path / "train.npy"
    np.save(pts, np.random.default_rng(0).normal(size=(30, 2)))
    res = runner.invoke(app, ["sample-diffusion", "simulate", "--json", "--data", "empirical", "--out",
                              str(tmp_path / "emp"), "--particles", "200", "--steps", "100",
                              "--set", f"points={pts}", "--set", "t_lo=0.01", "--set", "t_hi=2.0",
                              "--set", "direction=reverse"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["simulate"]["backend"] in ("cpu", "reference")
    # the run ends at t_lo = 0.01 on the empirical measure's diffusion: log p_end is its closed-form log density
    from toolbox.diffusion.densities import GaussianMixture

    samples = np.load(tmp_path / "emp" / "simulate" / "samples.npz")
    assert samples["x_end"].shape == (200, 2) and np.isfinite(samples["x_end"]).all()
    dens = GaussianMixture.empirical(np.load(pts))
    np.testing.assert_allclose(samples["logp_end"], dens.log_prob(samples["x_end"], 0.01), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(samples["logp_start"], dens.log_prob(samples["x_start"], 2.0), rtol=1e-10, atol=1e-10)
