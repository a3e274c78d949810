"""The rejection epilogue (batch entropy, mode, accept mask, kept counts): native C++ / CUDA vs the reference,
the truth table, and the pybind11 boundary (wrong dtype / shape / contiguity / range -> ValueError)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from toolbox.core import native
from toolbox.entrocraft.epilogue import rejection_epilogue, rejection_epilogue_reference
from native_calls import native_calls

needs_native = pytest.mark.skipif(not native.available(), reason="native extension not built")


def _batch(seed, tokens=300, seqs=40, group=4):
    gen = torch.Generator().manual_seed(seed)
    h = torch.rand(tokens, generator=gen) * 2
    seq = torch.sort(torch.randint(0, seqs, (tokens,), generator=gen)).values
    adv = torch.randn(seqs, generator=gen)
    adv[::5] = 0.0
    return h, seq, adv, torch.arange(seqs) // group, seqs // group


@pytest.mark.native
@pytest.mark.parametrize("aggregation", ["token-mean", "seq-mean"])
@pytest.mark.parametrize("band", [(0.1, 0.2), (1.5, 1.9), (0.0, 2.0)])
def test_native_matches_reference(device, aggregation, band):
    h, seq, adv, groups, n_groups = _batch(0)
    h, seq, adv, groups = (t.to(device) for t in (h, seq, adv, groups))
    kernel = "rejection_epilogue_cuda" if device == "cuda" else "rejection_epilogue"
    with native_calls(kernel) as calls:
        got = rejection_epilogue(h, seq, adv, band, groups, n_groups, aggregation)
    assert calls[kernel] == 1
    ref = rejection_epilogue_reference(h, seq, adv, band, groups, n_groups, aggregation)
    assert float(got.entropy) == pytest.approx(float(ref.entropy), abs=1e-9)
    assert int(got.mode) == int(ref.mode)
    assert torch.equal(got.accept.cpu(), ref.accept)
    assert torch.equal(got.kept_per_group.cpu(), ref.kept_per_group)
    assert int(got.kept_per_group.sum()) == int(got.accept.sum())


def test_truth_table_through_the_kernel():
    adv = torch.tensor([1.2, -0.5, 0.0, -0.7])
    seq = torch.arange(4)
    for h, want in ((0.9, [1, 0, 1, 0]), (0.1, [0, 1, 1, 1]), (0.5, [1, 1, 1, 1])):
        res = rejection_epilogue(torch.full((4,), h), seq, adv, (0.4, 0.6))
        assert res.accept.int().tolist() == want


def test_seq_mean_differs_from_token_mean():
    h = torch.tensor([1.0, 1.0, 1.0, 0.0])
    seq = torch.tensor([0, 0, 0, 1])
    adv = torch.zeros(2)
    assert float(rejection_epilogue(h, seq, adv, (0, 1)).entropy) == pytest.approx(0.75)
    assert float(rejection_epilogue(h, seq, adv, (0, 1), aggregation="seq-mean").entropy) == pytest.approx(0.5)


@pytest.mark.native
@settings(max_examples=40, deadline=None)
@given(st.integers(0, 50), st.integers(1, 30), st.floats(0, 2), st.floats(0, 1), st.sampled_from(["token-mean", "seq-mean"]))
def test_random_batches(tokens, seqs, low, width, aggregation):
    gen = torch.Generator().manual_seed(tokens * 31 + seqs)
    h = torch.rand(tokens, generator=gen) * 3
    seq = torch.randint(0, seqs, (tokens,), generator=gen)
    adv = torch.randn(seqs, generator=gen)
    with native_calls("rejection_epilogue") as calls:
        got = rejection_epilogue(h, seq, adv, (low, low + width), aggregation=aggregation)
    assert calls["rejection_epilogue"] == 1
    ref = rejection_epilogue_reference(h, seq, adv, (low, low + width), aggregation=aggregation)
    assert float(got.entropy) == pytest.approx(float(ref.entropy), abs=1e-9)
    assert int(got.mode) == int(ref.mode) and torch.equal(got.accept, ref.accept)


@needs_native
@pytest.mark.parametrize("call", [
    lambda m: m.rejection_epilogue(np.zeros(4, np.float64), np.zeros(4, np.int64), np.zeros(2, np.float32)),
    lambda m: m.rejection_epilogue(np.zeros(4, np.float32), np.zeros(3, np.int64), np.zeros(2, np.float32)),
    lambda m: m.rejection_epilogue(np.zeros(4, np.float32), np.full(4, 5, np.int64), np.zeros(2, np.float32)),
    lambda m: m.rejection_epilogue(np.zeros((2, 2), np.float32), np.zeros(4, np.int64), np.zeros(2, np.float32)),
    lambda m: m.rejection_epilogue(np.zeros(8, np.float32)[::2], np.zeros(4, np.int64), np.zeros(2, np.float32)),
    lambda m: m.rejection_epilogue(np.zeros(4, np.float32), np.zeros(4, np.int64), np.zeros(2, np.float32),
                                   np.array([0, 3], np.int64), 2),
    lambda m: m.rejection_epilogue(np.zeros(4, np.float32), np.zeros(4, np.int64), np.zeros(2, np.float32),
                                   np.array([0, 0], np.int64), 0),
    lambda m: m.rejection_epilogue([0.0], np.zeros(1, np.int64), np.zeros(1, np.float32)),
])
def test_binding_rejects_bad_arrays(call):
    with pytest.raises(ValueError):
        call(native.module())


@needs_native
def test_empty_batch():
    entropy, mode, accept, kept = native.module().rejection_epilogue(
        np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32))
    assert entropy == 0.0 and accept.shape == (0,) and kept is None


def test_wrapper_shape_checks():
    with pytest.raises(ValueError):
        rejection_epilogue(torch.zeros(3), torch.zeros(2, dtype=torch.long), torch.zeros(2), (0, 1))
    with pytest.raises(ValueError):
        rejection_epilogue(torch.zeros(3), torch.zeros(3, dtype=torch.long), torch.zeros(2), (0, 1),
                           torch.zeros(3, dtype=torch.long))


@pytest.mark.cuda
def test_cuda_epilogue_large_batch():
    h, seq, adv, groups, n_groups = _batch(1, tokens=1_000_000, seqs=8192, group=8)
    ref = rejection_epilogue_reference(h, seq, adv, (0.9, 1.1), groups, n_groups, "seq-mean")
    got = rejection_epilogue(h.cuda(), seq.cuda(), adv.cuda(), (0.9, 1.1), groups.cuda(), n_groups, "seq-mean")
    assert float(got.entropy) == pytest.approx(float(ref.entropy), abs=1e-9)
    assert torch.equal(got.accept.cpu(), ref.accept) and torch.equal(got.kept_per_group.cpu(), ref.kept_per_group)
