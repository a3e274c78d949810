"""gPoE fusion rules: closed-form values (gpoe.md Sec. 4.1), invariances, native-vs-reference parity, bad input."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from toolbox.core import native
from toolbox.core.errors import UserInputError
from toolbox.gpoe import fusion

needs_native = pytest.mark.skipif(not native.available(), reason="native extension not built")

# gpoe.md Sec. 4.1: two identical experts (0.3, 0.2), prior variance 1.01
TWO_EXPERTS = {
    "poe": (0.3, 0.1),
    "gpoe-uniform": (0.3, 0.2),
    "gpoe-normalized": (0.3, 0.2),
    "bcm": (0.332967, 0.110989),
    "rbcm": (0.324584, 0.133624),
}


def _two(dtype):
    return np.full((2, 1), 0.3, dtype), np.full((2, 1), 0.2, dtype)


def _exact_two(rule):
    """The same numbers from the algebra, unrounded: T_i = 5, b = 1/2 ln(1.01 / 0.2)."""
    beta, t, tss = 0.5 * math.log(1.01 / 0.2), 5.0, 1 / 1.01
    prec = {"poe": 2 * t, "gpoe-uniform": t, "gpoe-normalized": t, "bcm": 2 * t - tss,
            "rbcm": 2 * beta * t + (1 - 2 * beta) * tss}[rule]
    numer = {"poe": 2 * t * 0.3, "gpoe-uniform": t * 0.3, "gpoe-normalized": t * 0.3, "bcm": 2 * t * 0.3,
             "rbcm": 2 * beta * t * 0.3}[rule]
    return numer / prec, 1 / prec


@pytest.mark.parametrize("rule", list(TWO_EXPERTS))
def test_two_identical_experts_reference_values(rule):
    mean, var = _two(np.float64)
    ref = fusion.fuse_reference(mean, var, 1.01, rule)
    assert ref.mean[0] == pytest.approx(TWO_EXPERTS[rule][0], abs=1e-6)
    assert ref.var[0] == pytest.approx(TWO_EXPERTS[rule][1], abs=1e-6)
    exact = _exact_two(rule)
    assert ref.mean[0] == pytest.approx(exact[0], abs=1e-12)
    assert ref.var[0] == pytest.approx(exact[1], abs=1e-12)
    got = fusion.fuse(mean, var, np.array([1.01]), rule)  # native float64 when built
    assert got.mean[0] == pytest.approx(exact[0], abs=1e-12)
    assert got.var[0] == pytest.approx(exact[1], abs=1e-12)
    got32 = fusion.fuse(*_two(np.float32), np.float32(1.01), rule)
    assert got32.mean.dtype == np.float32
    assert got32.mean[0] == pytest.approx(TWO_EXPERTS[rule][0], abs=1e-6)
    assert got32.var[0] == pytest.approx(TWO_EXPERTS[rule][1], abs=1e-6)


@pytest.mark.parametrize("impl", ["reference", "fuse"])
def test_far_from_data(impl):
    """Every expert at the prior (1.01): PoE is overconfident (prior / 16), the others return the prior."""
    mean, var = np.zeros((16, 3)), np.full((16, 3), 1.01)
    fn = fusion.fuse_reference if impl == "reference" else fusion.fuse
    out = {rule: fn(mean, var, np.array([1.01]), rule) for rule in fusion.RULES}
    assert out["poe"].var == pytest.approx(np.full(3, 1.01 / 16), abs=1e-12)
    assert out["poe"].var[0] == pytest.approx(0.063125, abs=1e-9)
    for rule in ("gpoe-uniform", "bcm", "rbcm", "gpoe-normalized", "gpoe-entropy"):
        assert out[rule].var == pytest.approx(np.full(3, 1.01), rel=1e-12), rule
    # entropy weights are all 0: the entropy-weighted rules report "no informative expert" (rBCM's own formula
    # gives the prior there too); rules with b = 1 never fall back
    for rule in ("gpoe-normalized", "gpoe-entropy", "rbcm"):
        assert out[rule].fallback.all() and np.all(out[rule].sum_beta == 0), rule
    for rule in ("poe", "gpoe-uniform", "bcm"):
        assert not out[rule].fallback.any(), rule
    for f in out.values():
        assert np.all(np.isfinite(f.mean)) and np.all(np.isfinite(f.var))


def _random_experts(m, n, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=(m, n))
    var = rng.uniform(0.01, 1.0, size=(m, n))
    return mean.astype(dtype), var.astype(dtype)


def test_normalising_does_not_change_the_mean_and_poe_equals_uniform_mean():
    mean, var = _random_experts(7, 500)
    raw = fusion.fuse_reference(mean, var, 1.0, "gpoe-entropy")
    norm = fusion.fuse_reference(mean, var, 1.0, "gpoe-normalized")
    assert np.max(np.abs(raw.mean - norm.mean)) < 1e-12
    np.testing.assert_allclose(raw.var / norm.var, 1 / norm.sum_beta, rtol=1e-12)  # variance scales by sum b
    poe = fusion.fuse_reference(mean, var, 1.0, "poe")
    uni = fusion.fuse_reference(mean, var, 1.0, "gpoe-uniform")
    assert np.max(np.abs(poe.mean - uni.mean)) < 1e-12
    np.testing.assert_allclose(uni.var, 7 * poe.var, rtol=1e-12)


@pytest.mark.parametrize("rule", ["gpoe-normalized", "rbcm", "bcm", "poe", "gpoe-uniform"])
def test_one_expert_is_reproduced(rule):
    mean, var = _random_experts(1, 200)
    out = fusion.fuse(mean, var, np.array([1.5]), rule)
    if rule == "rbcm":
        # T = b T_1 + (1 - b) T**: the single expert only where b = 1 (gpoe.md Sec. 4.1 says rBCM always
        # reproduces it; the algebra says otherwise, so this checks the algebra)
        beta = 0.5 * np.log(1.5 / var[0])
        precision = beta / var[0] + (1 - beta) / 1.5
        np.testing.assert_allclose(out.var, 1 / precision, rtol=1e-12)
        np.testing.assert_allclose(out.mean, beta * mean[0] / var[0] / precision, rtol=1e-12)
    else:
        np.testing.assert_allclose(out.mean, mean[0], rtol=1e-12)
        np.testing.assert_allclose(out.var, var[0], rtol=1e-12)


def test_tree_reduction_equals_flat_fusion():
    """Random binary trees of partial sums over 64 experts give the flat answer (Deisenroth & Ng)."""
    mean, var = _random_experts(64, 300, seed=3)
    rng = np.random.default_rng(0)
    for weight, combine in set(fusion.RULES.values()):
        flat = fusion.finalize(fusion.statistics(mean, var, 1.0, weight), combine, 1.0)
        for _ in range(3):
            nodes = [fusion.statistics(mean[i:i + 1], var[i:i + 1], 1.0, weight) for i in rng.permutation(64)]
            while len(nodes) > 1:
                i, j = sorted(rng.choice(len(nodes), 2, replace=False))
                merged = fusion.combine_stats(nodes[i], nodes[j])
                nodes = [n for k, n in enumerate(nodes) if k not in (i, j)] + [merged]
            tree = fusion.finalize(nodes[0], combine, 1.0)
            np.testing.assert_allclose(tree.mean, flat.mean, rtol=1e-10, atol=1e-14)
            np.testing.assert_allclose(tree.var, flat.var, rtol=1e-10)


@needs_native
@pytest.mark.parametrize("rule", list(fusion.RULES))
def test_native_float32_matches_float64_reference(rule):
    mean, var = _random_experts(64, 5000, seed=1)
    prior = np.random.default_rng(2).uniform(1.0, 1.2, 5000)
    want = fusion.fuse_reference(mean, var, prior, rule)
    got = fusion.fuse(mean.astype(np.float32), var.astype(np.float32), prior.astype(np.float32), rule)
    m32, v32 = mean.astype(np.float32).astype(np.float64), var.astype(np.float32).astype(np.float64)
    want32 = fusion.fuse_reference(m32, v32, prior.astype(np.float32).astype(np.float64), rule)
    np.testing.assert_allclose(got.var, want32.var, rtol=1e-6)
    np.testing.assert_allclose(got.mean, want32.mean, rtol=1e-6, atol=1e-6 * np.abs(want32.mean).max())
    np.testing.assert_allclose(got.var, want.var, rtol=1e-5)  # plus the float32 rounding of the inputs
    np.testing.assert_array_equal(got.fallback, want32.fallback)


@needs_native
def test_native_float64_statistics_match_reference_with_invalid_entries_and_priors():
    mean, var = _random_experts(9, 700, seed=4)
    mean[2, 5], var[3, 6], var[4, 7], var[5, 8] = np.nan, 0.0, np.inf, -1.0
    var[:, 9] = np.nan  # no valid expert at point 9
    rng = np.random.default_rng(5)
    weight_prior = rng.uniform(0.9, 1.1, (9, 700))
    prior_mean = rng.normal(size=700)
    for rule, (weight, combine) in fusion.RULES.items():
        got = fusion.fuse(mean, var, np.array([1.0]), rule, prior_mean=prior_mean, weight_prior=weight_prior)
        stats = fusion.statistics(mean, var, weight_prior, weight)
        want = fusion.finalize(stats, combine, 1.0, prior_mean)
        np.testing.assert_allclose(got.mean, want.mean, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got.var, want.var, rtol=1e-12)
        np.testing.assert_allclose(got.sum_beta, stats[2], rtol=1e-12, atol=1e-15)
        assert got.fallback[9] and got.mean[9] == pytest.approx(prior_mean[9]) and got.var[9] == 1.0
        assert np.all(np.isfinite(got.mean)) and np.all(np.isfinite(got.var))


def test_grbcm_closed_form():
    """Enlarged experts identical to the communication expert: b = 1 for the first, 0 for the rest, so GRBCM
    returns that expert; a hand-computed case for distinct experts."""
    comm_mean, comm_var = np.array([0.1]), np.array([0.5])
    same = fusion.fuse_grbcm(comm_mean, comm_var, np.full((3, 1), 0.1), np.full((3, 1), 0.5))
    assert same.mean[0] == pytest.approx(0.1, abs=1e-14) and same.var[0] == pytest.approx(0.5, abs=1e-14)
    mean, var = np.array([[0.2], [0.4]]), np.array([[0.25], [0.1]])
    beta = 0.5 * math.log(0.5 / 0.1)
    prec = 1 / 0.25 + beta / 0.1 + (1 - 1 - beta) / 0.5
    numer = 0.2 / 0.25 + beta * 0.4 / 0.1 + (1 - 1 - beta) * 0.1 / 0.5
    out = fusion.fuse_grbcm(comm_mean, comm_var, mean, var)
    assert out.var[0] == pytest.approx(1 / prec, abs=1e-14)
    assert out.mean[0] == pytest.approx(numer / prec, abs=1e-14)


def test_effective_experts():
    out = fusion.fuse_reference(np.zeros((4, 1)), np.full((4, 1), 0.5), 1.0, "poe")
    assert out.effective_experts[0] == pytest.approx(4.0)


def test_unknown_rule_and_bad_shapes_are_user_errors():
    mean, var = _random_experts(3, 10)
    with pytest.raises(UserInputError, match="unknown fusion rule"):
        fusion.fuse(mean, var, 1.0, "mixture")
    with pytest.raises(UserInputError, match=r"\[M, N\]"):
        fusion.fuse(mean, var[:, :5], 1.0, "poe")
    with pytest.raises(UserInputError, match=r"\[M, N\]"):
        fusion.fuse(mean[0], var[0], 1.0, "poe")


@needs_native
def test_binding_validates_dtype_shape_contiguity():
    core = native.module()
    mean, var = _random_experts(3, 10, dtype=np.float32)
    prior = np.ones(1, np.float32)
    ok = core.gpoe_fuse(mean, var, prior, prior, None, 1, 1, 1e-9, False)
    assert ok[3] is None and ok[0].shape == (10,)
    bad_calls = [
        (mean, var.astype(np.float64), prior, prior),                  # dtype mismatch
        (mean, var[:, :5].copy(), prior, prior),                         # shape mismatch
        (np.asfortranarray(np.ones((3, 10), np.float32)), var, prior, prior),  # not C-contiguous
        (mean[0], var[0], prior, prior),                                 # rank 1
        (mean, var, np.ones(7, np.float32), prior),                      # weight prior does not broadcast
        (mean, var, np.ones((2, 10), np.float32), prior),                # expert axis does not broadcast
        (mean, var, prior, np.ones((1, 10), np.float32)),                # fused prior must be rank 1
        ([[1.0]], var, prior, prior),                                    # not an array
    ]
    for args in bad_calls:
        with pytest.raises(ValueError):
            core.gpoe_fuse(*args, None, 1, 1, 1e-9, False)
    with pytest.raises(ValueError):
        core.gpoe_fuse(mean, var, prior, prior, None, 2, 1, 1e-9, False)
    with pytest.raises(ValueError):
        core.gpoe_fuse(mean, var, prior, prior, None, 1, 3, 1e-9, False)
    with pytest.raises(ValueError):
        core.gpoe_fuse(mean, var, prior, prior, None, 1, 1, -1.0, False)
    empty = core.gpoe_fuse(np.zeros((0, 4), np.float32), np.zeros((0, 4), np.float32), prior, prior, None, 1, 1,
                           1e-9, True)
    assert np.all(empty[2] == 1) and np.all(empty[1] == 1.0)  # no experts: the prior everywhere
    none = core.gpoe_fuse(np.zeros((2, 0), np.float32), np.zeros((2, 0), np.float32), prior, prior, None, 1, 1,
                          1e-9, True)
    assert none[0].shape == (0,)


@needs_native
@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 9), n=st.integers(1, 700), wp_e=st.booleans(), wp_p=st.booleans(), pv_p=st.booleans(),
       rule=st.sampled_from(list(fusion.RULES)), seed=st.integers(0, 10 ** 6))
def test_native_broadcasting_matches_reference(m, n, wp_e, wp_p, pv_p, rule, seed):
    rng = np.random.default_rng(seed)
    mean, var = rng.normal(size=(m, n)), rng.uniform(0.01, 2.0, (m, n))
    wp = rng.uniform(0.5, 2.0, (m if wp_e else 1, n if wp_p else 1))
    pv = rng.uniform(0.5, 2.0, n if pv_p else 1)
    got = fusion.fuse(mean, var, pv, rule, weight_prior=wp)
    want = fusion.fuse_reference(mean, var, pv, rule, weight_prior=wp)
    np.testing.assert_allclose(got.mean, want.mean, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(got.var, want.var, rtol=1e-11)
    np.testing.assert_array_equal(got.fallback, want.fallback)


def test_torch_cpu_inputs_and_reference_kernels_env(monkeypatch):
    mean, var = _random_experts(5, 64)
    via_torch = fusion.fuse(torch.from_numpy(mean), torch.from_numpy(var), np.array([1.0]), "rbcm")
    monkeypatch.setenv("TOOLBOX_KERNELS", "reference")
    via_reference = fusion.fuse(mean, var, np.array([1.0]), "rbcm")
    np.testing.assert_allclose(via_torch.mean, via_reference.mean, rtol=1e-12)
    np.testing.assert_allclose(via_torch.var, via_reference.var, rtol=1e-12)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("rule", list(fusion.RULES))
def test_cuda_kernel_matches_reference(rule, dtype):
    mean, var = _random_experts(64, 100_003, seed=7)
    var[3, 11] = np.nan
    prior = np.random.default_rng(8).uniform(1.0, 1.2, 100_003)
    mt, vt = (torch.as_tensor(a, dtype=dtype, device="cuda") for a in (mean, var))
    got = fusion.fuse(mt, vt, torch.as_tensor(prior, dtype=dtype, device="cuda"), rule)
    assert got.mean.is_cuda
    want = fusion.fuse_reference(mt.double().cpu().numpy(), vt.double().cpu().numpy(),
                                 torch.as_tensor(prior, dtype=dtype).double().numpy(), rule)
    rtol = 1e-6 if dtype == torch.float32 else 1e-12
    np.testing.assert_allclose(got.var.cpu().double().numpy(), want.var, rtol=rtol)
    np.testing.assert_allclose(got.mean.cpu().double().numpy(), want.mean, rtol=rtol,
                               atol=rtol * np.abs(want.mean).max())
    cpu = fusion.fuse(mt.cpu().numpy(), vt.cpu().numpy(), torch.as_tensor(prior, dtype=dtype).numpy(), rule)
    np.testing.assert_array_equal(got.fallback.cpu().numpy(), cpu.fallback)
