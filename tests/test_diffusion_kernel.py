"""Fused Langevin kernel: native vs numpy reference, chunking / batch invariance, Philox layout, bad input."""
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from toolbox.core import native, rng
from toolbox.core.errors import UserInputError
from toolbox.diffusion.densities import GaussianMixture, philox_normals
from toolbox.diffusion.sampler import langevin_reference, simulate

needs_native = pytest.mark.skipif(not native.available(), reason="native extension not built")

CASES = [("forward", "euler"), ("forward", "exact"), ("forward", "heun"), ("reverse", "euler"),
         ("reverse", "heun"), ("flow", "euler"), ("flow", "heun")]


def _mixture(dim, seed=0):
    gen = np.random.default_rng(seed)
    return GaussianMixture(gen.normal(size=(3, dim)), [0.1, 0.5, 0.0], [1.0, 2.0, 3.0])


def test_philox_known_answers():
    assert tuple(rng.philox4x32_10((0, 0, 0, 0), (0, 0))) == (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)
    ones = (0xFFFFFFFF,) * 4
    assert tuple(rng.philox4x32_10(ones, ones[:2])) == (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)
    if native.available():
        assert native.module().philox4x32_10(0, 0, 0, 0, 0, 0) == (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)


def test_noise_layout_is_one_stream_per_particle():
    """Step k of a d-dim particle uses its normals k d .. k d + d - 1, i.e. consecutive lanes of its Philox blocks."""
    particles = np.arange(5, dtype=np.uint64)
    stream = np.concatenate([philox_normals(3, 0, particles, 3, step) for step in range(4)], axis=1)
    blocks = rng.philox_normal4(3, 0, particles[:, None], np.arange(3, dtype=np.uint64)[None, :]).reshape(5, -1)
    np.testing.assert_array_equal(stream, blocks)
    z = philox_normals(1, 0, np.arange(200_000, dtype=np.uint64), 2)
    assert abs(z.mean()) < 0.01 and abs(z.var() - 1) < 0.01


@needs_native
@pytest.mark.parametrize("dim", [1, 3, 6])
@pytest.mark.parametrize("direction,scheme", CASES)
def test_native_matches_reference(dim, direction, scheme):
    dens = _mixture(dim)
    kw = dict(direction=direction, scheme=scheme, t_lo=0.01, t_hi=2.0, steps=30, seed=3, snapshot_stride=10)
    ref = simulate(dens, 40, backend="reference", **kw)
    nat = simulate(dens, 40, backend="native", **kw)
    for name in ("x_end", "heat", "heat_discrete", "logp_start", "logp_end", "snapshots"):
        np.testing.assert_allclose(getattr(nat, name), getattr(ref, name), rtol=1e-10, atol=1e-10, err_msg=name)


@needs_native
@pytest.mark.parametrize("dim", [1, 6])
def test_chunking_gives_identical_bits(dim):
    dens = _mixture(dim)
    runs = [simulate(dens, 50, "reverse", "euler", 0.01, 1.0, 25, seed=9, chunk=c, snapshot_stride=5)
            for c in (1, 7, 4096)]
    for other in runs[1:]:
        for name in ("x_end", "heat", "heat_discrete", "logp_end", "snapshots"):
            np.testing.assert_array_equal(getattr(other, name), getattr(runs[0], name))
    # a particle's trajectory does not depend on the batch it is in
    alone = simulate(dens, 50, "reverse", "euler", 0.01, 1.0, 25, seed=9, x_start=runs[0].x_start)
    np.testing.assert_array_equal(alone.x_end, runs[0].x_end)


def test_reference_chunking_and_first_particle():
    dens = _mixture(2)
    full = simulate(dens, 12, "forward", "euler", 0.0 + 0.1, 1.0, 10, seed=1, backend="reference")
    part = langevin_reference(dens, full.x_start[5:], "forward", "euler", 0.1, 1.0, 10, seed=1, first=5)
    np.testing.assert_array_equal(part[0], full.x_end[5:])


def test_forward_heat_telescopes():
    """For the OU drift the trapezoid Stratonovich heat is exactly -(|x_T|^2 - |x_0|^2) / 2 (notes sec. 1.2)."""
    dens = GaussianMixture.symmetric(1.0, 0.3, dim=2)
    run = simulate(dens, 100, "forward", "euler", 0.0, 1.0, 17, seed=2)
    np.testing.assert_allclose(run.heat, -0.5 * (np.sum(run.x_end**2, 1) - np.sum(run.x_start**2, 1)), atol=1e-12)


def test_score_matches_finite_difference():
    dens = _mixture(3)
    x = np.random.default_rng(1).normal(size=(4, 3))
    _, score = dens.log_prob_score(x, 0.4)
    eps = 1e-6
    fd = np.stack([(dens.log_prob(x + eps * e, 0.4) - dens.log_prob(x - eps * e, 0.4)) / (2 * eps)
                   for e in np.eye(3)], axis=1)
    np.testing.assert_allclose(score, fd, rtol=1e-6, atol=1e-6)


@needs_native
def test_binding_rejects_bad_arrays():
    core = native.module()
    means, logw, var = np.zeros((2, 1)), np.log([0.5, 0.5]), np.ones(2)
    x = np.zeros((4, 1))
    args = (0, 0, 0.0, 0.1, 3, 0, 0)
    with pytest.raises(ValueError, match="dtype"):
        core.langevin(means.astype(np.float32), logw, var, x, *args)
    with pytest.raises(ValueError, match="axis 1"):
        core.langevin(means, logw, var, np.zeros((4, 2)), *args)
    with pytest.raises(ValueError, match="contiguous"):
        core.langevin(means, logw, var, np.zeros((4, 2))[:, :1], *args)
    with pytest.raises(ValueError, match="axis 0"):
        core.langevin(means, logw[:1], var, x, *args)
    with pytest.raises(ValueError, match="at least one"):
        core.langevin(np.zeros((0, 1)), logw[:0], var[:0], x, *args)
    with pytest.raises(ValueError, match="variances"):
        core.langevin(means, logw, -var, x, *args)
    with pytest.raises(ValueError, match="forward only"):
        core.langevin(means, logw, var, x, 1, 1, 0.0, 0.1, 3, 0, 0)
    with pytest.raises(ValueError, match="h > 0"):
        core.langevin(means, logw, var, x, 0, 0, 0.0, -0.1, 3, 0, 0)
    empty = core.langevin(means, logw, var, np.zeros((0, 1)), *args)
    assert all(len(a) == 0 for a in empty)


@needs_native
@settings(max_examples=25, deadline=None)
@given(st.integers(0, 3), st.integers(0, 3), st.sampled_from([np.float32, np.int64, np.float64]))
@example(2, 2, np.float64)  # the well-formed call always runs
def test_binding_never_crashes_on_random_shapes(n_dims, k, dtype):
    """Every malformed call is a ValueError; the one well-formed call (means [2, 2] float64, 2 normalised
    weights, float64 x [3, 2]) runs and returns the reference's values."""
    core = native.module()
    means = np.zeros((2,) * n_dims, dtype)
    logw = np.full(k, -np.log(k)) if k else np.zeros(0)  # normalised, so only shapes / dtypes can be wrong
    x = np.zeros((3, 2), dtype)
    args = (0, 0, 0.0, 0.1, 2, 0, 0)  # forward, Euler, t in [0, 0.2], seed 0, stream 0
    if not (n_dims == 2 and k == 2 and dtype is np.float64):
        with pytest.raises(ValueError):
            core.langevin(means, logw, np.ones(k), x, *args)
        return
    heat, heat_discrete, logp_start, logp_end = core.langevin(means, logw, np.ones(k), x, *args)
    # two unit components at 0: the density is N(0, I_2) at every t, so log p(x) = -log(2 pi) - |x|^2 / 2
    # (float64 round-off, ~1e-15: tolerance 1e-12); x was moved in place by the noise
    assert np.abs(x).max() > 0
    np.testing.assert_allclose(logp_start, np.full(3, -np.log(2 * np.pi)), rtol=0, atol=1e-12)
    np.testing.assert_allclose(logp_end, -np.log(2 * np.pi) - 0.5 * np.sum(x**2, 1), rtol=0, atol=1e-12)
    dens = GaussianMixture(np.zeros((2, 2)), [1.0, 1.0], [0.5, 0.5])
    ref = langevin_reference(dens, np.zeros((3, 2)), "forward", "euler", 0.0, 0.2, 2, seed=0)
    # same float64 arithmetic in C++ and numpy: the kernel-vs-reference tolerance of test_native_matches_reference
    for got, want in zip((x, heat, heat_discrete, logp_start, logp_end), ref[:5]):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_user_errors():
    dens = GaussianMixture.symmetric()
    with pytest.raises(UserInputError):
        simulate(dens, 10, "reverse", "exact")
    with pytest.raises(UserInputError):
        simulate(dens, 10, "sideways")
    with pytest.raises(UserInputError):
        simulate(GaussianMixture.empirical(np.zeros((3, 2))), 10, "reverse", t_lo=0.0)
    with pytest.raises(UserInputError):
        simulate(dens, 10, snapshot_stride=7, steps=10)
    with pytest.raises(UserInputError):
        GaussianMixture(np.zeros((2, 1)), [1.0], [1.0, 1.0])


@pytest.mark.cuda
@pytest.mark.parametrize("dim", [1, 6])
def test_cuda_matches_cpu(dim):
    dens = _mixture(dim)
    kw = dict(direction="reverse", scheme="euler", t_lo=0.01, t_hi=2.0, steps=200, seed=5, snapshot_stride=50)
    cpu = simulate(dens, 3000, device="cpu", **kw)
    gpu = simulate(dens, 3000, device="cuda", chunk=1000, **kw)
    for name in ("x_end", "heat", "heat_discrete", "logp_start", "logp_end", "snapshots"):
        np.testing.assert_allclose(getattr(gpu, name), getattr(cpu, name), rtol=1e-5, atol=1e-8, err_msg=name)


@pytest.mark.cuda
def test_cuda_philox_bits_identical():
    import torch

    n = 1_000_000
    out = torch.empty(n, dtype=torch.float64, device="cuda")
    native.module().philox_uniform_cuda(7, 0, 0, 3, n, out.data_ptr(), torch.cuda.current_stream().cuda_stream)
    torch.cuda.synchronize()
    np.testing.assert_array_equal(out.cpu().numpy(), rng.philox_uniform(7, 0, n, 0, 3))


@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_discrete_heat_is_the_log_ratio_of_the_em_kernels(direction):
    """heat_discrete = sum_i ln N(x_{i+1}; x_i + F_i h, 2h) - ln N(x_i; x_{i+1} + F_{i+1} h, 2h), from the path."""
    dens = _mixture(2)
    run = simulate(dens, 30, direction, "euler", 0.05, 1.0, 12, seed=4, snapshot_stride=1, backend="reference")
    h = run.h
    times = run.snapshot_times(1)
    c = 0.0 if direction == "forward" else (2.0 if direction == "reverse" else 1.0)
    drifts = [(-x if c == 0 else x + c * dens.score(x, t)) for x, t in zip(run.snapshots, times)]
    total = np.zeros(30)
    for i in range(len(times) - 1):
        x0, x1, f0, f1 = run.snapshots[i], run.snapshots[i + 1], drifts[i], drifts[i + 1]
        total += (-np.sum((x1 - x0 - f0 * h) ** 2, 1) + np.sum((x0 - x1 - f1 * h) ** 2, 1)) / (4 * h)
    np.testing.assert_allclose(run.heat_discrete, total, rtol=1e-9, atol=1e-9)


@needs_native
@pytest.mark.parametrize("direction,dim", [("reverse", 1), ("reverse", 3), ("flow", 2), ("forward", 5)])
def test_external_score_epilogue_matches_reference(direction, dim):
    """The fused epilogue for an external score gives the numpy reference's states and heats."""
    from toolbox.diffusion.sampler import simulate_external

    dens = _mixture(dim)
    x0 = dens.sample(40, 1.5, 0)
    ext = simulate_external(dens, x0, direction, 0.05, 1.5, 20, seed=6, stream=2)
    ref = langevin_reference(dens, x0, direction, "euler", 0.05, 1.5, 20, seed=6, stream=2)
    np.testing.assert_allclose(ext.x_end, ref[0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ext.heat, ref[1], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ext.heat_discrete, ref[2], rtol=1e-10, atol=1e-10)


@pytest.mark.cuda
def test_external_score_epilogue_cuda():
    from toolbox.diffusion.sampler import simulate_external

    dens = _mixture(3)
    x0 = dens.sample(500, 1.5, 0)
    cpu = simulate_external(dens, x0, "reverse", 0.05, 1.5, 50, seed=6)
    gpu = simulate_external(dens, x0, "reverse", 0.05, 1.5, 50, seed=6, device="cuda")
    np.testing.assert_allclose(gpu.x_end, cpu.x_end, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gpu.heat, cpu.heat, rtol=1e-6, atol=1e-8)
