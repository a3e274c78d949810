"""Exact values of the gPoE fusion rules (toolbox/gpoe/fusion.py) where mutation testing found them unchecked
(scripts/mutation.sh; docs/developing.md#mutation-testing): the entropy weights, the running sums with invalid
experts, the eps threshold of the fallback (inclusive), the prior checks' edges and the kernel path's diagnostics."""
from __future__ import annotations

import math

import numpy as np
import pytest

from toolbox.core import native
from toolbox.core.errors import UserInputError
from toolbox.gpoe import fusion


def test_rule_table():
    assert fusion.rule_parts("rbcm") == ("entropy", "corrected")
    assert fusion.rule_parts("gpoe-uniform") == ("one", "normalised")
    assert fusion.ALL_RULES[-1] == "grbcm" and len(fusion.ALL_RULES) == 7
    with pytest.raises(UserInputError, match="known: poe, gpoe-uniform, .*, grbcm"):
        fusion.rule_parts("grbcm")   # GRBCM has its own entry point


def test_expert_weights_exact():
    var = np.array([[0.25, 1.0, 2.0, 0.0, np.inf, np.nan, -1.0]])
    np.testing.assert_array_equal(fusion.expert_weights(var, 1.0, "one"), [[1, 1, 1, 0, 0, 0, 0]])
    # 1/2 log(v** / v) where v < v**, else 0; 0 for anything but a finite positive variance
    np.testing.assert_allclose(fusion.expert_weights(var, 1.0, "entropy"),
                               [[0.5 * math.log(4.0), 0, 0, 0, 0, 0, 0]], atol=0)
    # per-expert priors [M, N]
    got = fusion.expert_weights(np.array([[0.5], [0.5]]), np.array([[2.0], [0.25]]), "entropy")
    np.testing.assert_allclose(got, [[0.5 * math.log(4.0)], [0.0]], atol=1e-15)


def test_statistics_skip_invalid_experts():
    mean = np.array([[1.0, 2.0], [np.nan, 3.0], [5.0, 4.0]])
    var = np.array([[0.5, 0.25], [1.0, np.inf], [2.0, 0.0]])
    s = fusion.statistics(mean, var, 1.0, "one")
    np.testing.assert_allclose(s, [[1 / 0.5 + 1 / 2.0, 1 / 0.25], [1 / 0.5 + 5 / 2.0, 2 / 0.25], [2, 1], [2, 1]],
                               atol=1e-15)
    assert np.isfinite(s).all()
    e = fusion.statistics(mean, var, 1.0, "entropy")
    b = 0.5 * math.log(2.0)
    np.testing.assert_allclose(e[:, 0], [b / 0.5, b * 1 / 0.5, b, b * b], atol=1e-15)
    np.testing.assert_allclose(e[:, 1], [0.5 * math.log(4) / 0.25, 0.5 * math.log(4) * 2 / 0.25,
                                         0.5 * math.log(4), (0.5 * math.log(4)) ** 2], atol=1e-14)


def test_finalize_combinations_and_fallbacks():
    stats = np.array([[4.0, 0.0, 2.0], [2.0, 0.0, -1.0], [2.0, 0.0, 1.0], [2.0, 0.0, 1.0]])
    prod = fusion.finalize(stats, "product", 0.5, 3.0)
    np.testing.assert_allclose(prod.var, [0.25, 0.5, 0.5])
    np.testing.assert_allclose(prod.mean, [0.5, 3.0, -0.5])
    np.testing.assert_array_equal(prod.fallback, [False, True, False])
    np.testing.assert_allclose(prod.effective_experts, [2.0, 0.0, 1.0])
    norm = fusion.finalize(stats, "normalised", 0.5, 3.0)
    np.testing.assert_allclose(norm.var, [0.5, 0.5, 0.5])
    np.testing.assert_allclose(norm.mean, [0.5, 3.0, -0.5])
    corr = fusion.finalize(stats, "corrected", 0.5, 3.0)
    # T = S_T + (1 - S_b) / v**, numerator S_Tm + (1 - S_b) m** / v**
    np.testing.assert_allclose(corr.var, [1 / (4 - 2), 0.5, 0.5])
    np.testing.assert_allclose(corr.mean, [(2 - 1 * 3 / 0.5) * 0.5, 3.0, -0.5])
    np.testing.assert_array_equal(corr.fallback, [False, True, False])
    np.testing.assert_array_equal(corr.sum_beta, [2.0, 0.0, 1.0])


def test_eps_threshold_is_inclusive():
    mean, var = np.array([[2.0]]), np.array([[0.5]])
    at = fusion.fuse_reference(mean, var, 1.0, "poe", eps=1.0)        # S_b = 1 = eps: fused
    assert not at.fallback[0] and at.mean[0] == 2.0 and at.var[0] == 0.5
    above = fusion.fuse_reference(mean, var, 1.0, "poe", eps=1.0 + 1e-12)
    assert above.fallback[0] and above.mean[0] == 0.0 and above.var[0] == 1.0
    assert not fusion.fuse_reference(mean, var, 1.0, "poe", eps=0.0).fallback[0]


@pytest.mark.parametrize("kw, message", [
    (dict(prior_var=0.0), "prior_var must be finite and > 0"),
    (dict(prior_var=-1.0), "prior_var must be finite and > 0"),
    (dict(prior_var=np.inf), "prior_var must be finite and > 0"),
    (dict(prior_var=1.0, prior_mean=np.inf), "prior_mean must be finite"),
    (dict(prior_var=1.0, eps=-0.5), "eps must be finite and >= 0, got -0.5"),
    (dict(prior_var=1.0, eps=np.inf), "eps must be finite and >= 0"),
])
@pytest.mark.parametrize("fn", [fusion.fuse, fusion.fuse_reference])
def test_prior_and_eps_edges(fn, kw, message):
    with pytest.raises(UserInputError, match=message):
        fn(np.zeros((2, 3)), np.ones((2, 3)), **kw)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_fuse_diagnostics_on_every_path(dtype):
    """Kernel (float32 / float64 when built) and reference (int): S_b and (S_b)^2 / S_b2, 0 where no expert counts."""
    mean = np.array([[1, 2], [3, 4], [5, 6], [7, 8]], dtype=dtype)
    var = np.array([[1, 1], [1, 1], [1, 1], [1, 4]], dtype=dtype)
    out = fusion.fuse(mean, var, 4.0, "gpoe-normalized")
    b = 0.5 * math.log(4.0)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out.sum_beta, [4 * b, 3 * b], rtol=tol)
    np.testing.assert_allclose(out.effective_experts, [4.0, 3.0], rtol=tol)
    np.testing.assert_allclose(out.mean, [4.0, 4.0], rtol=tol)      # equal weights: the plain average
    np.testing.assert_allclose(out.var, [1.0, 1.0], rtol=tol)
    poe = fusion.fuse(mean, var, 4.0, "poe")
    np.testing.assert_allclose(poe.effective_experts, [4.0, 4.0], rtol=tol)
    none = fusion.fuse(mean, np.full_like(var, 8), 4.0, "gpoe-entropy", prior_mean=1.5)
    np.testing.assert_array_equal(none.effective_experts, [0.0, 0.0])
    np.testing.assert_array_equal(none.fallback, [True, True])
    np.testing.assert_allclose(none.mean, [1.5, 1.5])
    np.testing.assert_allclose(none.var, [4.0, 4.0])


@pytest.mark.skipif(native.module() is None, reason="needs the native kernels")
def test_kernel_and_reference_agree_with_prior_mean_none_and_mixed_dtypes():
    rng = np.random.default_rng(3)
    mean = rng.normal(size=(5, 7))
    var = rng.uniform(0.1, 2.0, size=(5, 7))
    for rule in fusion.RULES:
        got = fusion.fuse(mean, var, 1.5, rule)
        want = fusion.fuse_reference(mean, var, 1.5, rule, prior_mean=0.0)
        for f in ("mean", "var", "sum_beta", "effective_experts"):
            np.testing.assert_allclose(getattr(got, f), getattr(want, f), rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(got.fallback, want.fallback)
    mixed = fusion.fuse(mean.astype(np.float32), var, 1.5, "bcm")      # dtypes differ: the reference
    np.testing.assert_allclose(mixed.mean, fusion.fuse_reference(mean.astype(np.float32), var, 1.5, "bcm").mean)


def test_grbcm_uses_the_first_expert_with_weight_one():
    comm_mean, comm_var = np.array([0.0, 1.0]), np.array([1.0, 2.0])
    mean, var = np.array([[3.0, -1.0]]), np.array([[0.5, 4.0]])
    out = fusion.fuse_grbcm(comm_mean, comm_var, mean, var)
    # only the first enlarged expert (b = 1): T = 1/v1 + (1 - 1)/v_c, the expert itself
    np.testing.assert_allclose(out.mean, [3.0, -1.0], atol=1e-15)
    np.testing.assert_allclose(out.var, [0.5, 4.0], atol=1e-15)
    with pytest.raises(UserInputError, match=r"both be \[M, N\], got \(2,\) and \(2,\)"):
        fusion.fuse_grbcm(comm_mean, comm_var, mean[0], var[0])


def test_combine_stats_adds_parts():
    a, b, c = np.ones((4, 2)), np.full((4, 2), 2.0), np.arange(8.0).reshape(4, 2)
    np.testing.assert_array_equal(fusion.combine_stats(a, b, c), a + b + c)


def test_torch_inputs_on_the_cpu():
    torch = pytest.importorskip("torch")
    mean = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    var = torch.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    out = fusion.fuse(mean, var, torch.tensor(2.0), "poe", prior_mean=torch.tensor(0.5))
    np.testing.assert_allclose(out.mean, [2.0, 3.0])
    np.testing.assert_allclose(out.var, [0.5, 0.5])
    back = fusion.Fused(*(torch.as_tensor(getattr(out, f)) for f in fusion.Fused.__dataclass_fields__)).numpy()
    assert all(isinstance(getattr(back, f), np.ndarray) for f in fusion.Fused.__dataclass_fields__)
    np.testing.assert_allclose(back.mean, [2.0, 3.0])
    with pytest.raises(UserInputError, match="prior_var must be finite and > 0"):
        fusion.fuse(mean, var, torch.tensor([1.0, 0.0]))


# ---- the CUDA glue (_fuse_cuda) on CPU memory: a stand-in for gpoe_fuse_cuda that honours the kernel's pointer
# contract (csrc/bindings/bind_gpoe.cpp) by reading the host buffers behind the pointers and running the C++ CPU
# kernel, so that the dtype code, strides, broadcast flags, optional prior mean and output buffers that the glue
# passes are checked without a GPU (the CUDA arithmetic itself is checked against the CPU kernel under `cuda`).

def _host_array(address, dtype, count):
    import ctypes
    dtype = np.dtype(dtype)
    return np.frombuffer((ctypes.c_char * (dtype.itemsize * count)).from_address(address), dtype, count)


class _PointerKernel:
    """gpoe_fuse_cuda's signature over host memory."""

    def __init__(self):
        self.calls = []

    def gpoe_fuse_cuda(self, dtype, experts, points, mean, var, wp, wp_se, wp_sp, pv, pv_stride, pm, pm_stride,
                       weight, combine, eps, out_mean, out_var, out_fallback, out_stats, stream):
        self.calls.append(dict(dtype=dtype, wp_strides=(wp_se, wp_sp), pv_stride=pv_stride, pm=pm,
                               pm_stride=pm_stride, weight=weight, combine=combine, eps=eps, stream=stream))
        dt = (np.float32, np.float64)[dtype]
        read = lambda p, n: _host_array(p, dt, n).copy()  # noqa: E731
        full = lambda p, se, sp: np.lib.stride_tricks.as_strided(  # noqa: E731
            read(p, (experts - 1) * se + (points - 1) * sp + 1), (experts, points),
            (se * np.dtype(dt).itemsize, sp * np.dtype(dt).itemsize)).copy()
        m, v = read(mean, experts * points).reshape(experts, points), read(var, experts * points).reshape(experts,
                                                                                                          points)
        args = (np.ascontiguousarray(full(wp, wp_se, wp_sp)), read(pv, points if pv_stride else 1),
                None if not pm else read(pm, points if pm_stride else 1))
        fm, fv, fb, st = native.module().gpoe_fuse(m, v, *args, weight, combine, eps, True)
        _host_array(out_mean, dt, points)[:] = fm
        _host_array(out_var, dt, points)[:] = fv
        _host_array(out_fallback, np.uint8, points)[:] = fb
        _host_array(out_stats, np.float64, 4 * points)[:] = np.asarray(st).reshape(-1)


@pytest.fixture
def pointer_kernel(monkeypatch):
    import contextlib

    if not native.available():
        pytest.skip("the C++ extension is not built")
    kernel, real_module = _PointerKernel(), native.module()
    kernel.gpoe_fuse = real_module.gpoe_fuse
    monkeypatch.setattr(fusion.dispatch, "native_cuda", lambda t: True)
    monkeypatch.setattr(fusion.dispatch, "on_device", lambda t: contextlib.nullcontext(7))
    monkeypatch.setattr(fusion.native, "module", lambda: kernel)
    return kernel


@pytest.mark.native
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("rule", list(fusion.RULES))
@pytest.mark.parametrize("priors", ["scalar", "per-point", "per-expert", "expert-column", "point-row"])
def test_cuda_glue_passes_the_kernel_contract(pointer_kernel, dtype, rule, priors):
    import torch

    rng = np.random.default_rng(3)
    M, N = 4, 6
    mean = rng.normal(size=(M, N))
    var = rng.uniform(0.05, 3.0, size=(M, N))
    var[1, 2] = np.inf   # an invalid expert
    var[:, 5] = 5.0      # every expert uninformative at the last point: fallback there for the entropy rules
    pv = {"scalar": 2.0, "per-point": rng.uniform(1.0, 3.0, N)}.get(priors, 2.5)
    wp = {"per-expert": rng.uniform(1.0, 4.0, (M, N)), "expert-column": rng.uniform(1.0, 4.0, (M, 1)),
          "point-row": rng.uniform(1.0, 4.0, (1, N))}.get(priors)
    pm = {"per-point": rng.normal(size=N), "scalar": None}.get(priors, 0.75)
    t = lambda a: torch.as_tensor(np.asarray(a, dtype=dtype))  # noqa: E731
    weight, combine = fusion.RULES[rule]
    got = fusion._fuse_cuda(t(mean), t(var), pv if np.isscalar(pv) else t(pv), weight, combine,
                            None if pm is None else (pm if np.isscalar(pm) else t(pm)),
                            None if wp is None else t(wp), 1e-9)
    want = fusion.fuse(np.asarray(mean, dtype), np.asarray(var, dtype), pv, rule, pm, wp, 1e-9)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got.mean.numpy(), want.mean, rtol=tol, atol=tol)
    np.testing.assert_allclose(got.var.numpy(), want.var, rtol=tol, atol=tol)
    np.testing.assert_array_equal(got.fallback.numpy(), want.fallback)
    assert got.fallback.dtype == torch.bool and got.mean.dtype == getattr(torch, dtype)
    np.testing.assert_allclose(got.sum_beta.numpy(), want.sum_beta, rtol=1e-12)
    np.testing.assert_allclose(got.effective_experts.numpy(), want.effective_experts, rtol=1e-12)
    call = pointer_kernel.calls[-1]
    assert call["dtype"] == (dtype == "float64") and call["stream"] == 7 and call["eps"] == 1e-9
    assert (call["weight"], call["combine"]) == (fusion.WEIGHTS[weight], fusion.COMBINES[combine])
    assert call["pv_stride"] == (priors == "per-point")
    assert call["wp_strides"] == {"per-expert": (N, 1), "expert-column": (1, 0), "point-row": (0, 1),
                                  "per-point": (0, 1)}.get(priors, (0, 0))
    assert (call["pm"] == 0) == (pm is None) and call["pm_stride"] == (priors == "per-point")


@pytest.mark.native
def test_cuda_glue_effective_experts_and_bad_priors(pointer_kernel):
    import torch

    mean = torch.tensor([[1.0, 2.0, 0.0], [3.0, 4.0, 0.0]])
    var = torch.tensor([[0.5, 1.0, 9.0], [0.5, 0.25, 9.0]])
    got = fusion._fuse_cuda(mean, var, 4.0, "entropy", "normalised", None, None, 0.0)
    b = 0.5 * np.log(4.0 / np.array([[0.5, 1.0], [0.5, 0.25]]))
    np.testing.assert_allclose(got.sum_beta.numpy()[:2], b.sum(0), rtol=1e-6)
    # (sum b)^2 / sum b^2, and 0 where no expert carries weight (var 9 > v** = 4: the third point)
    np.testing.assert_allclose(got.effective_experts.numpy(), [*(b.sum(0) ** 2 / (b ** 2).sum(0)), 0.0], rtol=1e-6)
    assert got.fallback.tolist() == [False, False, True]   # no weight at all: the prior N(0, 4)
    assert (got.mean[2].item(), got.var[2].item()) == (0.0, 4.0)
    for bad in (torch.ones(3, 3), torch.ones(2, 4)):
        with pytest.raises(UserInputError, match="do not broadcast"):
            fusion._fuse_cuda(mean, var, 4.0, "entropy", "corrected", None, bad, 0.0)
    with pytest.raises(UserInputError, match="do not broadcast"):
        fusion._fuse_cuda(mean, var, torch.ones(4), "entropy", "corrected", None, None, 0.0)
    with pytest.raises(UserInputError, match=r"both be \[M, N\]"):
        fusion._fuse_cuda(mean, var[:1], 4.0, "entropy", "corrected", None, None, 0.0)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_cuda_glue_falls_back_to_the_float64_reference(monkeypatch, dtype):
    import torch

    monkeypatch.setattr(fusion.dispatch, "native_cuda", lambda t: False)
    rng = np.random.default_rng(5)
    mean, var = rng.normal(size=(3, 5)), rng.uniform(0.1, 2.0, (3, 5))
    t = lambda a: torch.as_tensor(a).to(getattr(torch, dtype))  # noqa: E731
    got = fusion._fuse_cuda(t(mean), t(var), torch.tensor(1.5), "entropy", "corrected", torch.tensor(0.5),
                            torch.full((3, 5), 2.0), 1e-9)
    exact = lambda a: t(a).double().numpy()  # noqa: E731  the inputs as the kernel sees them
    want = fusion.fuse_reference(exact(mean), exact(var), 1.5, "rbcm", 0.5, np.full((3, 5), 2.0), 1e-9)
    for f in fusion.Fused.__dataclass_fields__:
        np.testing.assert_allclose(getattr(got, f).numpy(), getattr(want, f), rtol=1e-12)
        assert getattr(got, f).device == torch.device("cpu")


# ---- survivors of the full fusion.py mutation run -------------------------------------------------------------------

def test_negative_variance_is_an_invalid_expert():
    s = fusion.statistics(np.array([[1.0], [3.0]]), np.array([[-0.5], [0.5]]), 1.0, "one")
    np.testing.assert_allclose(s[:, 0], [2.0, 6.0, 1.0, 1.0])     # only the second expert counts


def test_corrected_combination_falls_back_on_a_non_positive_precision():
    # rBCM: T = S_T + (1 - S_b) / v**; with v** = 0.5: S_T = 1.5, S_b = 2 -> T = -0.5; S_T = 2, S_b = 2 -> T = 0
    stats = np.array([[1.5, 2.0], [0.0, 0.0], [2.0, 2.0], [4.0, 4.0]])
    out = fusion.finalize(stats, "corrected", 0.5, 3.0)
    np.testing.assert_array_equal(out.fallback, [True, True])
    np.testing.assert_allclose(out.var, [0.5, 0.5])
    np.testing.assert_allclose(out.mean, [3.0, 3.0])


def test_fuse_with_mixed_dtypes_takes_the_reference():
    rng = np.random.default_rng(1)
    mean, var = rng.normal(size=(3, 4)), rng.uniform(0.1, 1.0, (3, 4))
    got = fusion.fuse(mean, var.astype(np.float32), 2.0)
    want = fusion.fuse_reference(mean, var.astype(np.float32).astype(np.float64), 2.0)
    np.testing.assert_allclose(got.mean, want.mean, rtol=1e-12)
    np.testing.assert_allclose(got.var, want.var, rtol=1e-12)


@pytest.mark.parametrize("mean_shape, var_shape", [((2, 3, 1), (2, 3, 1)), ((2, 3), (2, 4))])
def test_fuse_rejects_shapes_that_are_not_matching_matrices(mean_shape, var_shape):
    with pytest.raises(UserInputError, match=r"both be \[M, N\]"):
        fusion.fuse(np.ones(mean_shape), np.ones(var_shape), 1.0)


@pytest.mark.native
@pytest.mark.parametrize("mean_dtype, var_dtype", [("float16", "float16"), ("float32", "float64")])
def test_cuda_glue_sends_unsupported_dtypes_to_the_reference(pointer_kernel, mean_dtype, var_dtype):
    import torch

    rng = np.random.default_rng(2)
    mean, var = rng.normal(size=(3, 5)), rng.uniform(0.1, 2.0, (3, 5))
    t = lambda a, d: torch.as_tensor(a).to(getattr(torch, d))  # noqa: E731
    m, v = t(mean, mean_dtype), t(var, var_dtype)
    got = fusion._fuse_cuda(m, v, 1.5, "entropy", "normalised", None, None, 1e-9)
    assert pointer_kernel.calls == []                                  # the kernel never sees these dtypes
    want = fusion.fuse_reference(m.double().numpy(), v.double().numpy(), 1.5, "gpoe-normalized", 0.0, None, 1e-9)
    np.testing.assert_allclose(got.mean.numpy(), want.mean, rtol=1e-12)


@pytest.mark.parametrize("rule", list(fusion.RULES))
def test_cuda_glue_fallback_keeps_the_rule_and_a_zero_prior_mean(monkeypatch, rule):
    import torch

    monkeypatch.setattr(fusion.dispatch, "native_cuda", lambda t: False)
    rng = np.random.default_rng(6)
    mean, var = rng.normal(size=(4, 3)), rng.uniform(0.1, 3.0, (4, 3))
    var[:, 2] = 5.0                                # no weight at the last point: the prior mean (0) comes back
    weight, combine = fusion.RULES[rule]
    got = fusion._fuse_cuda(torch.tensor(mean), torch.tensor(var), 2.0, weight, combine, None, None, 1e-9)
    want = fusion.fuse_reference(mean, var, 2.0, rule, 0.0, None, 1e-9)
    np.testing.assert_allclose(got.mean.numpy(), want.mean, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got.var.numpy(), want.var, rtol=1e-12)


def test_finalize_falls_back_when_the_mean_overflows_with_a_finite_variance():
    # S_T = 1e-10 gives v = 1e10 (finite); S_Tm = 1e300 then makes the mean 1e310 = inf: the prior is returned
    stats = np.array([[1e-10, 2.0], [1e300, 1.0], [1.0, 1.0], [1.0, 1.0]])
    for combine in ("product", "normalised"):
        fused = fusion.finalize(stats, combine, 0.5, 3.0)
        np.testing.assert_array_equal(fused.fallback, [True, False])
        np.testing.assert_allclose(fused.mean, [3.0, 0.5])
        np.testing.assert_allclose(fused.var, [0.5, 0.5])
