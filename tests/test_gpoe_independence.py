"""Independent experts are optimised independently (issue #15): each expert's own L-BFGS gives the same
hyper-parameters whatever the shard size and backend, and the same as a fit of that expert alone; per-expert
stopping, iteration counts and training curves."""
import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from toolbox.cli.main import app
from toolbox.core.tracking import read_rows
from toolbox.gpoe import data as gdata
from toolbox.gpoe import experts as ge
from toolbox.gpoe.partition import partition
from toolbox.gpoe.pipeline import train_and_predict

FITTED = ("lengthscale", "outputscale", "noise", "iterations", "evaluations", "converged")


@pytest.fixture(scope="module")
def sixteen_experts():
    """16 k-means experts of unequal sizes (padded) on 4-D GP-prior data."""
    d = gdata.gp_prior(480, 20, dims=4, seed=5)
    labels = partition(d.x_train, 16, "kmeans", 0)
    xp, yp, mask = ge.pad(d.x_train, d.y_train, labels, 16)
    assert mask.sum(1).min() < mask.sum(1).max()
    return xp, yp, mask, d.x_test


def _train(inputs, per_task, backend="serial", traces=None):
    xp, yp, mask, xs = inputs
    return train_and_predict(xp, yp, mask, xs, "rbf", "independent", 30, None, backend, workers=2,
                             experts_per_task=per_task, traces=traces)


def test_fitted_experts_do_not_depend_on_the_shard_size(sixteen_experts):
    """The defect: one L-BFGS on the sum of a shard's NLMLs moved lengthscales by up to 177% between shards of 8
    and of 1. Now experts_per_task = 1, 3, 8, 16 give the same hyper-parameters (rel 1e-6; in fact bit-equal)
    and iteration counts."""
    runs = {k: _train(sixteen_experts, k) for k in (1, 3, 8, 16)}
    first = runs[16][0]
    assert first.converged.any() and len(set(first.iterations)) > 1  # experts stop at their own iteration
    for k, (experts, mean, var, *_) in runs.items():
        for name in FITTED:
            np.testing.assert_allclose(getattr(experts, name), getattr(first, name), rtol=1e-6, err_msg=f"{k} {name}")
        np.testing.assert_allclose(mean, runs[16][1], rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(var, runs[16][2], rtol=1e-6, atol=1e-12)


def test_each_expert_equals_a_fit_of_that_expert_alone(sixteen_experts):
    xp, yp, mask, _ = sixteen_experts
    together = ge.fit(xp, yp, mask, "rbf", "independent", 30)
    for i in (0, 7, 15):
        sel = mask[i]
        alone = ge.fit(*ge.pad(xp[i, sel], yp[i, sel], np.zeros(sel.sum(), dtype=int), 1), "rbf", "independent", 30)
        for name in FITTED:
            np.testing.assert_allclose(getattr(alone, name)[0], getattr(together, name)[i], rtol=1e-6)
        assert alone.nlml[0] == pytest.approx(together.nlml[i], rel=1e-9)  # padded to 45 vs unpadded


@pytest.mark.slow
def test_process_backend_gives_the_serial_fit(sixteen_experts):
    serial, process = _train(sixteen_experts, 8), _train(sixteen_experts, 8, "process")
    for name in FITTED:
        np.testing.assert_array_equal(getattr(serial[0], name), getattr(process[0], name))
    np.testing.assert_array_equal(serial[1], process[1])
    np.testing.assert_array_equal(serial[2], process[2])


def _closed_form_nlml(x, y, ls, sf2, sn2):
    k = sf2 * np.exp(-0.5 * (((x[:, None] - x[None]) / ls) ** 2).sum(-1)) + sn2 * np.eye(len(x))
    chol = np.linalg.cholesky(k)
    alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, y))
    return (0.5 * y @ alpha + np.log(np.diag(chol)).sum() + 0.5 * len(x) * math.log(2 * math.pi)) / len(x)


def test_a_converged_expert_sits_at_a_minimum_of_its_own_likelihood():
    """The reported NLML is the textbook one at the reported hyper-parameters, and moving any log
    hyper-parameter by +-1e-3 does not lower it (the stopping rule fired at a minimum, not on a coupled shard)."""
    d = gdata.gp_prior(240, 0, dims=2, noise_var=0.05, seed=6)
    xp, yp, mask = ge.pad(d.x_train, d.y_train, np.arange(240) % 3, 3)
    fitted = ge.fit(xp, yp, mask, "rbf", "independent", 100)
    assert fitted.converged.all()
    for i in range(3):
        x, y = xp[i, mask[i]], yp[i, mask[i]]
        theta = np.log(np.r_[fitted.lengthscale[i], fitted.outputscale[i], fitted.noise[i]])
        def nlml(t, x=x, y=y):
            return _closed_form_nlml(x, y, np.exp(t[:2]), np.exp(t[2]), np.exp(t[3]))

        assert nlml(theta) == pytest.approx(fitted.nlml[i], rel=1e-9)
        for j in range(len(theta)):
            for step in (-1e-3, 1e-3):
                assert nlml(theta + step * np.eye(len(theta))[j]) > nlml(theta) - 1e-9


def test_tolerances_and_caps_decide_each_experts_stop(sixteen_experts):
    xp, yp, mask, _ = sixteen_experts
    capped = ge.fit(xp[:3], yp[:3], mask[:3], "rbf", "independent", 2)
    assert capped.iterations.tolist() == [2, 2, 2] and not capped.converged.any()
    tight = ge.fit(xp[:3], yp[:3], mask[:3], "rbf", "independent", 200, tolerance_grad=1e-9)
    loose = ge.fit(xp[:3], yp[:3], mask[:3], "rbf", "independent", 200, tolerance_grad=1e-2)
    assert loose.converged.all() and np.all(loose.iterations < tight.iterations)
    assert np.all(tight.nlml <= loose.nlml + 1e-12)
    fixed = ge.fit(xp[:3], yp[:3], mask[:3], "rbf", "fixed")
    assert fixed.iterations.tolist() == [0, 0, 0] and fixed.converged.all() and not fixed.failed.any()


def test_trace_has_one_row_per_evaluation_of_each_expert(sixteen_experts):
    traces = []
    experts = _train(sixteen_experts, 3, traces=traces)[0]
    for i in range(16):
        rows = [r for r in traces if r["expert"] == i]
        assert [r["evaluation"] for r in rows] == list(range(1, experts.evaluations[i] + 1))
        assert rows[0]["iteration"] == 0 and max(r["iteration"] for r in rows) == experts.iterations[i]
        assert min(r["nlml_per_point"] for r in rows) == pytest.approx(experts.nlml[i], rel=1e-9)
    shared = []
    fitted = ge.fit(*sixteen_experts[:3], "rbf", "shared", 10, trace=shared)
    assert {r["expert"] for r in shared} == {"all"} and len(shared) == fitted.evaluations[0]
    assert np.all(fitted.iterations == fitted.iterations[0])


def test_run_reports_each_experts_optimisation(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["fuse-gp", "run", "--json", "--out", str(out), "--experts", "4",
                                      "--hyper", "independent", "--partition", "kdtree", "--rule", "gpoe-normalized",
                                      "--set", "n_train=160", "--set", "n_test=20", "--set", "full_gp_max=0",
                                      "--set", "dims=2", "--set", "iterations=40", "--set", "plots=false",
                                      "--set", "experts_per_task=3", "--track", "none"])
    assert result.exit_code == 0, result.output
    experts = read_rows(out / "experts.csv")
    training = read_rows(out / "training.csv")
    assert list(training[0]) == ["partition", "expert", "evaluation", "iteration", "nlml_per_point"]
    saved, _ = ge.ExpertSet.load(out / "experts_kdtree.npz")
    for row in experts:
        i = int(row["expert"])
        curve = [r for r in training if r["expert"] == row["expert"]]
        assert int(row["iterations"]) == saved.iterations[i] == max(int(r["iteration"]) for r in curve)
        assert int(row["evaluations"]) == saved.evaluations[i] == len(curve)
        assert row["converged"] == str(bool(saved.converged[i]))
    summary = json.loads((out / "summary.json").read_text())
    opt = summary["optimisation"]["kdtree"]
    assert opt["experts"] == 4 and opt["failed"] == 0
    assert opt["converged"] == int(saved.converged.sum())
    assert opt["iterations_max"] == saved.iterations.max() and opt["evaluations_total"] == len(training)
