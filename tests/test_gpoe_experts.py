"""Batched exact GP experts: padding masks are exact, closed-form GP parity, training, save/load, bad input."""
import math

import numpy as np
import pytest

from toolbox.core.errors import UserInputError
from toolbox.gpoe import experts as ge
from toolbox.gpoe.data import gp_prior, se_kernel
from toolbox.gpoe.partition import check_labels, partition

TRUE = {"lengthscale": 0.8, "outputscale": 1.3, "noise": 0.05}


def _closed_form(x, y, xs, ls, sf2, sn2):
    """Textbook GP regression (Rasmussen & Williams Alg. 2.1) in numpy: mean, latent variance, NLML."""
    k = se_kernel(x, x, ls, sf2) + sn2 * np.eye(len(x))
    ks = se_kernel(x, xs, ls, sf2)
    chol = np.linalg.cholesky(k)
    alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, y))
    v = np.linalg.solve(chol, ks)
    nlml = 0.5 * y @ alpha + np.log(np.diag(chol)).sum() + 0.5 * len(x) * math.log(2 * math.pi)
    return ks.T @ alpha, sf2 - (v * v).sum(0), nlml


def test_padded_experts_equal_closed_form_unpadded_gps():
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, (90, 2))
    y = np.sin(2 * x[:, 0]) + x[:, 1] ** 2 + 0.1 * rng.standard_normal(90)
    labels = np.repeat([0, 1, 2], [50, 30, 10])  # unequal: experts 1 and 2 are padded to 50
    xp, yp, mask = ge.pad(x, y, labels, 3)
    assert xp.shape == (3, 50, 2) and mask.sum(1).tolist() == [50, 30, 10]
    fitted = ge.fit(xp, yp, mask, "rbf", "fixed", init=TRUE)
    xs = rng.uniform(-2.5, 2.5, (40, 2))
    mean, var, prior = ge.predict(fitted, xs)
    for i in range(3):
        sel = labels == i
        m, v, nlml = _closed_form(x[sel], y[sel], xs, TRUE["lengthscale"], TRUE["outputscale"], TRUE["noise"])
        np.testing.assert_allclose(mean[i], m, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(var[i], v, rtol=1e-9, atol=1e-10)
        assert fitted.nlml[i] * sel.sum() == pytest.approx(nlml, rel=1e-10)
    np.testing.assert_allclose(prior, TRUE["outputscale"])


def test_training_recovers_the_generating_hyper_parameters():
    d = gp_prior(400, 10, dims=2, lengthscale=1.0, signal_var=1.0, noise_var=0.01, seed=1)
    xp, yp, mask = ge.pad(d.x_train, d.y_train, np.zeros(400, dtype=int), 1)
    start = ge.fit(xp, yp, mask, "rbf", "fixed", init={"lengthscale": 1.0, "outputscale": 1.0, "noise": 0.1})
    fitted = ge.fit(xp, yp, mask, "rbf", "independent", iterations=60)
    assert fitted.nlml[0] < start.nlml[0]
    assert fitted.noise[0] == pytest.approx(0.01, rel=0.35)
    assert np.all(np.abs(np.log(fitted.lengthscale[0])) < np.log(1.6))
    assert fitted.converged.all()


def test_shared_hyper_parameters_are_shared_and_independent_ones_differ():
    rng = np.random.default_rng(2)
    x = rng.uniform(-2, 2, (160, 1))
    y = np.where(x[:, 0] < 0, np.sin(6 * x[:, 0]), 0.1 * x[:, 0]) + 0.05 * rng.standard_normal(160)
    labels = (x[:, 0] >= 0).astype(int)
    xp, yp, mask = ge.pad(x, y, labels, 2)
    shared = ge.fit(xp, yp, mask, "matern52", "shared", iterations=30)
    assert shared.lengthscale[0] == pytest.approx(shared.lengthscale[1])
    independent = ge.fit(xp, yp, mask, "matern52", "independent", iterations=30)
    assert independent.lengthscale[0, 0] < 0.5 * independent.lengthscale[1, 0]  # wiggly half vs linear half


def test_save_and_load_predict_identically(tmp_path):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(60, 3)), rng.normal(size=60)
    xp, yp, mask = ge.pad(x, y, np.arange(60) % 4, 4)
    fitted = ge.fit(xp, yp, mask, "matern32", "independent", iterations=5)
    fitted.save(tmp_path / "e.npz", x_shift=np.zeros(3))
    loaded, extra = ge.ExpertSet.load(tmp_path / "e.npz")
    assert loaded.kernel == "matern32" and "x_shift" in extra
    xs = rng.normal(size=(7, 3))
    for a, b in zip(ge.predict(fitted, xs), ge.predict(loaded, xs)):
        np.testing.assert_array_equal(a, b)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(UserInputError):
        ge.ExpertSet.load(tmp_path / "junk.npz")


def test_duplicate_inputs_with_tiny_noise_get_logged_jitter():
    x = np.repeat(np.linspace(-1, 1, 20)[:, None], 3, axis=0)  # every input three times
    y = np.sin(3 * x[:, 0])
    xp, yp, mask = ge.pad(x, y, np.zeros(60, dtype=int), 1)
    logs = []
    fitted = ge.fit(xp, yp, mask, "rbf", "fixed", init={"lengthscale": 1.0, "outputscale": 1.0, "noise": 0.0},
                    log=logs.append)
    assert fitted.jitter[0] > 0 and any("jitter" in line for line in logs)
    mean, var, _ = ge.predict(fitted, np.array([[0.3]]))
    assert np.isfinite(mean).all() and (var > 0).all()


@pytest.mark.parametrize("how", ["diverges", "raises"])
def test_an_expert_that_fails_to_train_keeps_its_start_and_is_flagged(monkeypatch, how):
    """Each expert has its own optimiser: the second one (expert 1) blows its parameters up or hits a
    linear-algebra error; expert 1 keeps its start and is flagged, expert 0 trains as it does alone."""
    import torch

    real, calls = torch.optim.LBFGS.step, []

    def step(self, closure):
        calls.append(1)
        if len(calls) == 2:
            if how == "raises":
                raise torch.linalg.LinAlgError("cholesky: not positive definite")
            with torch.no_grad():
                for p in self.param_groups[0]["params"]:
                    p.fill_(float("nan"))
            return closure()
        return real(self, closure)

    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(40, 1)), rng.normal(size=40)
    xp, yp, mask = ge.pad(x, y, np.arange(40) % 2, 2)
    alone = ge.fit(xp[:1], yp[:1], mask[:1], "rbf", "independent", iterations=3)
    monkeypatch.setattr(torch.optim.LBFGS, "step", step)
    logs = []
    fitted = ge.fit(xp, yp, mask, "rbf", "independent", iterations=3, log=logs.append)
    assert fitted.failed.tolist() == [False, True] and not fitted.converged[1]
    assert fitted.noise[1] == pytest.approx(0.1) and fitted.lengthscale[1, 0] == pytest.approx(1.0)
    assert np.isfinite(fitted.nlml).all()
    assert fitted.lengthscale[0, 0] == alone.lengthscale[0, 0] and fitted.noise[0] == alone.noise[0]
    assert any("failed to train" in line for line in logs)


def test_bad_expert_setups_are_user_errors():
    x, y = np.zeros((4, 1)), np.arange(4.0)
    with pytest.raises(UserInputError, match="no training points"):
        ge.pad(x, y, np.array([0, 0, 2, 2]), 3)
    with pytest.raises(UserInputError, match="kernel"):
        ge.make_kernel("cosine", 1, 0)
    xp, yp, mask = ge.pad(x, y, np.zeros(4, dtype=int), 1)
    with pytest.raises(UserInputError, match="hyper"):
        ge.fit(xp, yp, mask, "rbf", "magic")
    fitted = ge.fit(xp, yp, mask, "rbf", "fixed", init={"noise": 0.1})
    with pytest.raises(UserInputError, match="test inputs"):
        ge.predict(fitted, np.zeros((3, 2)))


def test_partitions():
    rng = np.random.default_rng(5)
    x = rng.uniform(size=(1001, 3))
    random = partition(x, 10, "random", 0)
    assert set(np.bincount(random)) <= {100, 101}
    kd = partition(x, 7, "kdtree", 0)
    counts = np.bincount(kd, minlength=7)
    assert counts.max() - counts.min() <= 2 and len(counts) == 7
    km = partition(x, 5, "kmeans", 0)
    assert set(km) == set(range(5))
    assert np.array_equal(partition(x, 5, "kmeans", 0), km)  # seeded
    with pytest.raises(UserInputError):
        partition(x, 2000, "random", 0)
    with pytest.raises(UserInputError):
        partition(x, 3, "voronoi", 0)
    labels, m = check_labels(np.array([5, 5, 9, 2]), 4)
    assert m == 3 and labels.tolist() == [1, 1, 2, 0]
    with pytest.raises(UserInputError):
        check_labels(np.array([0.5, 1.0]), 2)
    with pytest.raises(UserInputError):
        check_labels(np.array([0, 1]), 3)
