"""The generators honour every parameter they are given: GP-prior lengthscale, signal and noise variance and
dimension; the kin-like / sarcos-like noise fraction; friedman1's noise level."""
from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest
from typer.testing import CliRunner

from toolbox.cli.main import app
from toolbox.gpoe import data as gdata


@pytest.mark.parametrize("lengthscale, signal_var, noise_var, dims", [(0.5, 4.0, 0.01, 1), (2.0, 0.25, 0.1, 2)])
def test_gp_prior_samples_have_the_requested_covariance(lengthscale, signal_var, noise_var, dims):
    """Over 300 seeds, E[y_i^2] = s + s_n^2 and E[y_i y_j] = s exp(-d^2 / 2 l^2) (pairs with d in [0.8, 1.2]).
    Each average is over >= 3,000 products of variance <= 2 (s + s_n^2)^2 with correlated terms within a seed:
    a tolerance of 15% of s + s_n^2 is about 4 standard errors (measured spread of the estimator: 3-4%)."""
    sq, near, want_near = [], [], []
    for seed in range(300):
        d = gdata.gp_prior(20, 0, dims=dims, lengthscale=lengthscale, signal_var=signal_var, noise_var=noise_var,
                           seed=seed)
        x, y = d.x_train, d.y_train
        sq.append(y ** 2)
        dist = np.linalg.norm(x[:, None] - x[None], axis=-1)
        i, j = np.nonzero(np.triu((dist > 0.8) & (dist < 1.2), 1))
        near.append(y[i] * y[j])
        want_near.append(signal_var * np.exp(-dist[i, j] ** 2 / (2 * lengthscale ** 2)))
    scale = signal_var + noise_var
    assert np.mean(np.concatenate(sq)) == pytest.approx(scale, abs=0.15 * scale)
    assert np.mean(np.concatenate(near)) == pytest.approx(np.mean(np.concatenate(want_near)), abs=0.15 * scale)
    assert d.true_hyper == {"kernel": "rbf", "lengthscale": lengthscale, "outputscale": signal_var,
                            "noise": noise_var} and d.x_train.shape[1] == dims


def test_fuse_gp_takes_the_generator_settings(tmp_path):
    result = CliRunner().invoke(app, ["fuse-gp", "run", "--json", "--out", str(tmp_path / "run"), "--experts", "4",
                                      "--set", "n_train=200", "--set", "n_test=50", "--set", "lengthscale=0.7",
                                      "--set", "signal_var=2.5", "--set", "dims=2", "--set", "full_gp_max=0",
                                      "--set", "noise_var=0.04",
                                      "--set", "partitions=random", "--set", "rules=gpoe-normalized",
                                      "--set", "plots=false"])
    assert result.exit_code == 0, result.output
    settings = tomllib.loads((tmp_path / "run" / "config.toml").read_text())
    assert settings["lengthscale"] == 0.7 and settings["signal_var"] == 2.5 and settings["noise_var"] == 0.04
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["dims"] == 2 and summary["hyper"] == "fixed"  # the experts use the generator's true values
    assert summary["true_hyper"] == {"kernel": "rbf", "lengthscale": 0.7, "outputscale": 2.5, "noise": 0.04}
    assert summary["noise_var"] == 0.04


@pytest.mark.parametrize("name", ["kin-like", "sarcos-like"])
def test_noise_fraction_sets_the_arm_generators_noise(name):
    """Same seed, same f and the same standard normal draws: y(4a) - y(a) = (2 - 1) sqrt(a Var f) z, so its
    variance is the noise variance at fraction a (4,000 points: standard error 2.2%; tolerance 10%)."""
    low = gdata.load(name, 4000, 0, seed=2, noise_fraction=0.01)
    high = gdata.load(name, 4000, 0, seed=2, noise_fraction=0.04)
    assert high.noise_var == pytest.approx(4 * low.noise_var, rel=1e-12)
    assert np.var(high.y_train - low.y_train) == pytest.approx(low.noise_var, rel=0.1)


def test_friedman1_noise_sd_is_its_noise_level():
    low = gdata.load("friedman1", 4000, 0, seed=2, friedman1_noise_sd=1.0)
    high = gdata.load("friedman1", 4000, 0, seed=2, friedman1_noise_sd=3.0)
    assert (low.noise_var, high.noise_var) == (1.0, 9.0)
    assert np.var(high.y_train - low.y_train) == pytest.approx(4.0, rel=0.1)  # (3 - 1)^2 z^2


def test_generator_settings_are_typed(tmp_path):
    result = CliRunner().invoke(app, ["fuse-gp", "run", "--out", str(tmp_path / "r"), "--set", "noise_fraction=-1"])
    assert result.exit_code == 2 and "noise_fraction" in result.output
    assert not (tmp_path / "r").exists()
