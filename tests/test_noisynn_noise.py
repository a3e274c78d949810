"""NoisyNN noises: native kernels against the torch/numpy references and explicit Q matrices, gradients, batch-size-1
identities, keyed (batch-invariant) draws, the injection sites, and validation of bad input."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from toolbox.core import native
from toolbox.core.errors import UserInputError
from toolbox.noisynn import entropy as E
from toolbox.noisynn import kernels as K
from toolbox.noisynn.models import build_model
from toolbox.noisynn.noise import NoiseSpec, attach_noise, noise_site

needs_native = pytest.mark.skipif(not native.available(), reason="native extension not built")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():  # tiny models: extra torch threads only contend
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _x(k, m, seed=0, device="cpu"):
    return torch.randn(k, m, generator=torch.Generator().manual_seed(seed)).to(device)


@pytest.mark.parametrize("k,m", [(1, 5), (2, 3), (10, 1029), (64, 512)])
def test_mixing_equals_the_explicit_q_matrices(device, k, m):
    x = _x(k, m, device=device)
    x64 = x.double().cpu().numpy()
    optimal = (np.eye(k) + E.q_matrix("optimal", k)) @ x64
    circulant = (np.eye(k) + E.q_matrix("linear", k, 0.3)) @ x64
    np.testing.assert_allclose(K.mix_optimal(x).cpu().numpy(), optimal, atol=1e-5)
    np.testing.assert_allclose(K.mix_circulant(x, 0.3).cpu().numpy(), circulant, atol=1e-5)


def test_batch_size_one_is_exactly_the_identity(device):
    x = _x(1, 777, device=device)
    assert torch.equal(K.mix_optimal(x), x)
    assert torch.equal(K.mix_circulant(x, 0.4), x)


@needs_native
@given(k=st.integers(1, 40), m=st.integers(1, 300), alpha=st.floats(0, 1), seed=st.integers(0, 2**40))
@settings(max_examples=25, deadline=None)
def test_native_matches_reference(k, m, alpha, seed):
    x = _x(k, m, seed % 1000)
    keys = torch.arange(k, dtype=torch.int64) * 7 + seed
    torch.testing.assert_close(K.mix_optimal(x), K.mix_optimal_reference(x), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(K.mix_circulant(x, alpha), K.mix_circulant_reference(x, alpha), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(K.gaussian(x, keys, seed, 3, 0.2, 0.7),
                               K.gaussian_reference(x, keys, seed, 3, 0.2, 0.7), rtol=1e-6, atol=1e-6)
    got = K.impulse(x, keys, seed, 3, alpha, 9.0, -9.0)
    want, _ = K.impulse_reference(x, keys, seed, 3, alpha, 9.0, -9.0)
    torch.testing.assert_close(got, want)


def test_gradients_are_the_adjoint_maps():
    x = _x(6, 4).double().requires_grad_()
    assert torch.autograd.gradcheck(lambda t: K.mix_optimal(t), (x,))
    assert torch.autograd.gradcheck(lambda t: K.mix_circulant(t, 0.3, detach_partner=False), (x,))
    xf = _x(6, 4).requires_grad_()  # float32: the native path
    g = _x(6, 4, seed=1)
    (K.mix_circulant(xf, 0.3, detach_partner=False) * g).sum().backward()
    torch.testing.assert_close(xf.grad, (torch.eye(6) + torch.from_numpy(E.q_matrix("linear", 6, 0.3)).float()).T @ g)
    xf.grad = None
    (K.mix_circulant(xf, 0.3, detach_partner=True) * g).sum().backward()  # official CNN: identity gradient
    torch.testing.assert_close(xf.grad, g)
    xf.grad = None
    (K.mix_optimal(xf, detach_partner=True) * g).sum().backward()
    torch.testing.assert_close(xf.grad, g * 2 / 7)


def test_keyed_noise_does_not_depend_on_the_batch():
    x, keys = _x(8, 50), torch.arange(8) + 100
    full = K.gaussian(x, keys, 1, 2, 0.0, 1.0)
    parts = torch.cat([K.gaussian(x[i:i + 1], keys[i:i + 1], 1, 2, 0.0, 1.0) for i in range(8)])
    torch.testing.assert_close(full, parts)
    z = (K.gaussian(torch.zeros(4096, 64), torch.arange(4096), 0, 0, 0.0, 1.0)).flatten()
    assert abs(float(z.mean())) < 0.01 and abs(float(z.std()) - 1) < 0.01
    hit = ~K.impulse_reference(torch.zeros(2000, 50), torch.arange(2000), 0, 0, 0.2, 1.0, -1.0)[1]
    assert float(hit.float().mean()) == pytest.approx(0.2, abs=0.01)


@needs_native
@pytest.mark.parametrize("bad", [np.zeros((3, 4), np.float64), np.zeros(4, np.float32),
                                 np.zeros((4, 6), np.float32)[:, ::2], np.zeros((0, 3), np.float32)])
def test_bindings_reject_bad_arrays(bad):
    core = native.module()
    with pytest.raises(ValueError):
        core.noisynn_mix_optimal(bad)
    with pytest.raises(ValueError):
        core.noisynn_mix_circulant(bad, 0.3, 1)
    with pytest.raises(ValueError):
        core.noisynn_gaussian(bad, np.zeros(3, np.int64), 0, 0, 0.0, 1.0)


@needs_native
def test_bindings_reject_bad_keys_and_p():
    core = native.module()
    x = np.zeros((3, 4), np.float32)
    for keys in (np.zeros(2, np.int64), np.zeros(3, np.int32), np.zeros((3, 1), np.int64)):
        with pytest.raises(ValueError):
            core.noisynn_impulse(x, keys, 0, 0, 0.1, 1.0, 0.0)
    with pytest.raises(ValueError):
        core.noisynn_impulse(x, np.zeros(3, np.int64), 0, 0, 1.5, 1.0, 0.0)


def test_python_entry_points_reject_bad_shapes():
    with pytest.raises(ValueError):
        K.mix_optimal(torch.zeros(0, 3))
    with pytest.raises(ValueError):
        K.mix_circulant(torch.zeros(3), 0.1)
    with pytest.raises(ValueError):
        K.gaussian(torch.zeros(3, 2), torch.zeros(2, dtype=torch.int64), 0, 0, 0.0, 1.0)


@pytest.mark.parametrize("kwargs", [dict(kind="blur"), dict(kind="impulse", strength=1.5), dict(axis="time"),
                                    dict(apply="never"), dict(kind="gaussian", strength=float("nan")),
                                    dict(kind="linear", strength=2.0)])
def test_bad_noise_specs_are_user_errors(kwargs):
    with pytest.raises(UserInputError):
        NoiseSpec(**kwargs)


def test_vit_site_is_the_attention_input_and_leaves_cls_alone():
    torch.manual_seed(0)
    model = build_model("vit", (1, 8, 8), 10).eval()
    module, layout, prefix = noise_site(model, -1)
    assert module is model.blocks[-1].attn and layout == "tokens" and prefix == 1
    seen = []
    record = lambda m, a: seen.append(a[0].clone())  # noqa: E731
    handle = module.register_forward_pre_hook(record)
    x = torch.rand(5, 1, 8, 8)
    model(x)
    handle.remove()
    injector = attach_noise(module, NoiseSpec("optimal", apply="eval"), layout, prefix)
    module.register_forward_pre_hook(record)  # runs after the injector: sees the noisy input
    model(x)
    clean, mixed = seen
    torch.testing.assert_close(mixed[:, 0], clean[:, 0])  # CLS untouched
    torch.testing.assert_close(mixed[:, 1:], (clean[:, 1:] + clean[:, 1:].sum(0)) / 6)
    injector.detach()


@pytest.mark.parametrize("name", ["cnn", "vit"])
@pytest.mark.parametrize("spec", [NoiseSpec("optimal", apply="eval"), NoiseSpec("linear", 0.3, apply="eval")])
def test_batch_size_one_reproduces_noise_free_logits(name, spec):
    torch.manual_seed(1)
    model = build_model(name, (1, 8, 8), 10).eval()
    x = torch.rand(12, 1, 8, 8)
    with torch.no_grad():
        clean = model(x)
        for layer in (0, -1, len(model.blocks)):
            module, layout, prefix = noise_site(model, layer)
            injector = attach_noise(module, spec, layout, prefix)
            single = torch.cat([model(x[i:i + 1]) for i in range(12)])
            batched = model(x)
            injector.detach()
            assert float((single - clean).abs().max()) < 1e-5
            assert float((batched - clean).abs().max()) > 1e-3  # in a batch the noise does act


def test_apply_decides_train_or_eval():
    model = torch.nn.Linear(4, 2)
    x = torch.rand(6, 4)
    for apply, fires_train, fires_eval in (("train", True, False), ("eval", False, True), ("both", True, True)):
        injector = attach_noise(model, NoiseSpec("optimal", apply=apply), "flat")
        seen = {}
        for mode in (True, False):
            model.train(mode)
            with torch.no_grad():
                with injector.disabled():
                    clean = model(x)
                seen[mode] = not torch.allclose(model(x), clean)
        injector.detach()
        assert (seen[True], seen[False]) == (fires_train, fires_eval)


def test_relative_gaussian_scale_uses_the_calibrated_std():
    model = torch.nn.Identity().eval()
    injector = attach_noise(model, NoiseSpec("gaussian", 0.5, apply="eval"), "flat")
    x = 3.0 * torch.randn(20000, 8)
    with injector.observing():
        model(x)
    assert injector.reference_std == pytest.approx(3.0, rel=0.02)
    with injector.keys(torch.arange(20000)):
        noise = model(x) - x
    assert float(noise.std()) == pytest.approx(1.5, rel=0.02)


@pytest.mark.parametrize("name", ["cnn", "vit"])
@pytest.mark.parametrize("shape", [(1, 40), (1, 28, 28)])
def test_models_take_1d_and_2d_inputs(name, shape):
    model = build_model(name, shape, 10)
    assert model(torch.rand(3, *shape)).shape == (3, 10)
    with pytest.raises(UserInputError):
        build_model(name, (1, 2, 3, 4), 10)


@pytest.mark.cuda
@pytest.mark.parametrize("k,m", [(1, 7), (10, 1029), (64, 4096)])
def test_cuda_kernels_match_the_cpu_references(k, m):
    x = _x(k, m, seed=k)
    keys = torch.arange(k, dtype=torch.int64) * 3 + 11
    xc = x.cuda()
    torch.testing.assert_close(K.mix_optimal(xc).cpu(), K.mix_optimal_reference(x), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(K.mix_circulant(xc, 0.3).cpu(), K.mix_circulant_reference(x, 0.3))
    torch.testing.assert_close(K.gaussian(xc, keys, 5, 2, 0.1, 0.5).cpu(),
                               K.gaussian_reference(x, keys, 5, 2, 0.1, 0.5), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(K.impulse(xc, keys, 5, 2, 0.3, 4.0, -4.0).cpu(),
                               K.impulse_reference(x, keys, 5, 2, 0.3, 4.0, -4.0)[0])
    xg = xc.clone().requires_grad_()
    (K.mix_circulant(xg, 0.3, detach_partner=False) * xc).sum().backward()
    torch.testing.assert_close(xg.grad.cpu(), K.mix_circulant_reference(x, 0.3, shift=-1), rtol=1e-5, atol=1e-6)
