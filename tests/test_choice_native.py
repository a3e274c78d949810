"""Native kernel of the batched misspecification effects (C++ / CUDA) against the numpy reference."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolbox.choice import misspec
from toolbox.choice.model import unit_directions
from toolbox.choice.scenarios import builtin
from toolbox.core import native
from toolbox.core.rng import numpy_generator

needs_native = pytest.mark.skipif(not native.available(), reason="native extension not built")


def _instances(seed, cls, count=40, n=8, d=2, k=16):
    thetas = unit_directions(d, k)
    return (*misspec.sample_instances(numpy_generator(seed), cls, count, n, d, thetas), thetas)


def _native(features, assumed, true, star, thetas, prior, beta):
    with np.errstate(divide="ignore"):
        log_prior = np.log(prior / prior.sum())
    return native.module().choice_effects(np.ascontiguousarray(features, np.float64), assumed.astype(np.uint8),
                                          true.astype(np.uint8), star.astype(np.int64), thetas, log_prior, beta)


@needs_native
@pytest.mark.parametrize("cls", misspec.CLASSES)
@pytest.mark.parametrize("d, k, beta", [(2, 16, 2.0), (3, 32, 0.5), (4, 12, 5.0)])
def test_native_matches_reference_every_class(cls, d, k, beta):
    features, assumed, true, star, thetas = _instances(1, cls, 30, 8, d, k)
    prior = numpy_generator(2).random(len(thetas)) + 0.2
    want = misspec.batched_effects_reference(features, assumed, true, star, thetas, prior, beta)
    got = _native(features, assumed, true, star, thetas, prior, beta)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11)


@needs_native
def test_native_matches_reference_on_gridworld_universe():
    scn = builtin("gridworld", 1.0, 16, 3, 0)
    p = scn.problem
    args = (p.features[None], scn.assumed[None], scn.true[None], np.array([scn.true_theta]), p.thetas, p.prior, 1.0)
    np.testing.assert_allclose(_native(*args), misspec.batched_effects_reference(*args), rtol=1e-9, atol=1e-11)


@needs_native
@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10**6), st.integers(2, 9), st.floats(0.1, 8.0))
def test_native_parity_random_sets(seed, n, beta):
    """Arbitrary (not class-conditioned) set pairs, including zero-prior hypotheses and identical sets."""
    rng = numpy_generator(seed)
    thetas = unit_directions(2, 8)
    features = rng.standard_normal((6, n, 2))
    assumed = rng.random((6, n)) < 0.5
    true = rng.random((6, n)) < 0.5
    true[:, 0] = True
    assumed[:, -1] = True
    assumed[0] = true[0]
    star = rng.integers(8, size=6)
    prior = rng.random(8) * (rng.random(8) < 0.8) + 1e-300 * (np.arange(8) == 0)
    prior[star[0]] = 1.0
    want = misspec.batched_effects_reference(features, assumed, true, star, thetas, prior, beta)
    np.testing.assert_allclose(_native(features, assumed, true, star, thetas, prior, beta), want,
                               rtol=1e-8, atol=1e-10)


@needs_native
def test_dispatch_uses_native_and_reference_switch(monkeypatch):
    features, assumed, true, star, thetas = _instances(3, "B3", 10)
    prior = np.ones(len(thetas))
    fast = misspec.batched_effects(features, assumed, true, star, thetas, prior, 2.0)
    monkeypatch.setenv("TOOLBOX_KERNELS", "reference")
    slow = misspec.batched_effects(features, assumed, true, star, thetas, prior, 2.0)
    np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-11)


@needs_native
@pytest.mark.parametrize("change, message", [
    (dict(features=np.zeros((2, 4, 2), np.float32)), "dtype"),
    (dict(features=np.zeros((2, 4, 2))[:, ::-1]), "C-contiguous"),
    (dict(features=np.zeros((2, 0, 2))), "empty"),
    (dict(features=np.zeros((2, 4, 17)), thetas=np.ones((3, 17))), "dim"),
    (dict(assumed=np.ones((2, 5), np.uint8)), "axis 1"),
    (dict(truth=np.ones((2, 4), bool)), "dtype"),
    (dict(star=np.array([0, 3])), "star"),
    (dict(truth=np.array([[1, 0, 0, 0], [0, 0, 0, 0]], np.uint8)), "true choice set is empty"),
    (dict(assumed=np.array([[0, 0, 0, 0], [0, 1, 0, 0]], np.uint8)), "assumed choice set is empty"),
    (dict(thetas=np.ones((3, 3))), "axis 1"),
    (dict(log_prior=np.zeros(4)), "axis 0"),
    (dict(beta=0.0), "beta"),
])
def test_binding_rejects_bad_input(change, message):
    args = dict(features=np.zeros((2, 4, 2)), assumed=np.ones((2, 4), np.uint8), truth=np.ones((2, 4), np.uint8),
                star=np.array([0, 1]), thetas=np.ones((3, 2)), log_prior=np.log(np.full(3, 1 / 3)), beta=1.0)
    args.update(change)
    with pytest.raises(ValueError, match=message):
        native.module().choice_effects(*args.values())


@pytest.mark.cuda
def test_cuda_matches_cpu():
    features, assumed, true, star, thetas = _instances(4, "C3", 500, 8, 3, 32)
    prior = np.ones(len(thetas))
    cpu = misspec.batched_effects(features, assumed, true, star, thetas, prior, 2.0, device="cpu")
    gpu = misspec.batched_effects(features, assumed, true, star, thetas, prior, 2.0, device="cuda")
    np.testing.assert_allclose(gpu, cpu, rtol=1e-9, atol=1e-11)
