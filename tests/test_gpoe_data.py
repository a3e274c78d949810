"""The GP-prior generator honours every parameter it is given (lengthscale, signal and noise variance, dimension)."""
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
                                      "--set", "partitions=random", "--set", "rules=gpoe-normalized",
                                      "--set", "plots=false"])
    assert result.exit_code == 0, result.output
    settings = tomllib.loads((tmp_path / "run" / "config.toml").read_text())
    assert settings["lengthscale"] == 0.7 and settings["signal_var"] == 2.5
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["dims"] == 2 and summary["hyper"] == "fixed"  # the experts use the generator's true values
    assert summary["true_hyper"] == {"kernel": "rbf", "lengthscale": 0.7, "outputscale": 2.5, "noise": 0.01}
