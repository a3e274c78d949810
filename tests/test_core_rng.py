import numpy as np
import pytest
import torch

from toolbox.core import native, rng
from toolbox.selfcheck import PHILOX_KNOWN_ANSWERS

pytestmark = pytest.mark.skipif(not native.available(), reason="native extension not built")


@pytest.mark.parametrize("counter,key,want", PHILOX_KNOWN_ANSWERS)
def test_philox_known_answers_reference(counter, key, want):
    assert tuple(int(x) for x in rng.philox4x32_10(counter, key)) == want


@pytest.mark.parametrize("counter,key,want", PHILOX_KNOWN_ANSWERS)
def test_philox_known_answers_native(counter, key, want):
    assert tuple(native.module().philox4x32_10(*counter, *key)) == want


def test_philox_native_matches_reference_on_random_counters():
    gen = np.random.default_rng(1)
    words = gen.integers(0, 2**32, size=(64, 6), dtype=np.uint64)
    for w in words:
        c, k = tuple(int(x) for x in w[:4]), tuple(int(x) for x in w[4:])
        assert tuple(native.module().philox4x32_10(*c, *k)) == tuple(int(x) for x in rng.philox4x32_10(c, k))


@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 1001])
def test_uniform_stream_native_equals_reference_bit_for_bit(n):
    out = np.empty(n)
    native.module().philox_uniform(7, 3, 11, 5, out)
    np.testing.assert_array_equal(out, rng.philox_uniform(7, 3, n, a0=11, b=5))


def test_uniform_stream_is_independent_of_chunking():
    whole = rng.philox_uniform(42, 0, 400)
    parts = np.concatenate([rng.philox_uniform(42, 0, 100, a0=25 * i) for i in range(4)])
    np.testing.assert_array_equal(whole, parts)


def test_uniforms_are_uniform_and_streams_differ():
    u = rng.philox_uniform(5, 0, 200_000)
    assert 0 < u.min() and u.max() < 1
    assert abs(u.mean() - 0.5) < 3e-3 and abs(u.var() - 1 / 12) < 2e-3
    assert not np.array_equal(u[:100], rng.philox_uniform(5, 1, 100))
    assert not np.array_equal(u[:100], rng.philox_uniform(6, 0, 100))


def test_normals_have_unit_moments():
    z = rng.philox_normal4(3, 0, np.arange(50_000, dtype=np.uint64), 0).ravel()
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01


@pytest.mark.cuda
def test_philox_cuda_matches_cpu_bit_for_bit():
    out = torch.empty(1001, dtype=torch.float64, device="cuda")
    with torch.cuda.device(0):
        native.module().philox_uniform_cuda(7, 3, 11, 5, 1001, out.data_ptr(),
                                            torch.cuda.current_stream().cuda_stream)
    torch.cuda.synchronize()
    np.testing.assert_array_equal(out.cpu().numpy(), rng.philox_uniform(7, 3, 1001, a0=11, b=5))


def test_numpy_generator_is_reproducible():
    a = rng.numpy_generator(3, 1).normal(size=5)
    b = rng.numpy_generator(3, 1).normal(size=5)
    c = rng.numpy_generator(3, 2).normal(size=5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
