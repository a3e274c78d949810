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
