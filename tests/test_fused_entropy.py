import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from toolbox.core import native
from toolbox.entrocraft.fused_entropy import row_entropy, row_entropy_reference

needs_native = pytest.mark.skipif(not native.available(), reason="native extension not built")


def _logits(rows, vocab, scale=3.0, seed=0, device="cpu"):
    gen = torch.Generator().manual_seed(seed)
    x = scale * torch.randn(rows, vocab, generator=gen)
    y = torch.randint(0, vocab, (rows,), generator=gen)
    return x.to(device), y.to(device)


def test_closed_form_uniform_and_one_hot():
    x = torch.zeros(2, 1000)
    x[1, 7] = 200.0  # effectively one-hot: entropy 0
    h, lp, lse = row_entropy(x, torch.tensor([3, 7]))
    assert h[0].item() == pytest.approx(np.log(1000), rel=1e-6)
    assert lp[0].item() == pytest.approx(-np.log(1000), rel=1e-6)
    assert lse[0].item() == pytest.approx(np.log(1000), rel=1e-6)
    assert h[1].item() == pytest.approx(0.0, abs=1e-6)
    assert lp[1].item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("rows,vocab", [(1, 1), (3, 5), (17, 2047), (8, 2048), (9, 5003), (4, 32768)])
@pytest.mark.parametrize("scale", [0.1, 3.0, 30.0])
def test_forward_matches_float64_reference(device, rows, vocab, scale):
    x, y = _logits(rows, vocab, scale, device=device)
    got = row_entropy(x, y)
    want = row_entropy_reference(x.double(), y)
    for g, w in zip(got, want):
        torch.testing.assert_close(g.double(), w, rtol=2e-5, atol=2e-5 * max(1.0, scale))


def test_forward_without_labels(device):
    x, _ = _logits(6, 300, device=device)
    h, lp, lse = row_entropy(x)
    h_ref, _, lse_ref = row_entropy_reference(x.double())
    torch.testing.assert_close(h.double(), h_ref, rtol=1e-5, atol=1e-5)
    assert torch.all(lp == 0)


@needs_native
def test_native_path_is_used_on_cpu_float32(monkeypatch):
    from toolbox.entrocraft import fused_entropy

    calls = []
    monkeypatch.setattr(fused_entropy._RowEntropy, "apply", lambda *a: calls.append(1) or fused_entropy.row_entropy_reference(*a))
    fused_entropy.row_entropy(torch.zeros(2, 3))
    assert calls, "the C++ kernel was not dispatched for float32 CPU input"


def test_reference_fallback_for_float64_keeps_dtype():
    x, y = _logits(3, 50)
    h, lp, lse = row_entropy(x.double(), y)
    assert h.dtype == torch.float64


@pytest.mark.parametrize("weights", [(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (0.7, -1.3, 0.4)])
def test_backward_matches_autograd_of_reference(device, weights):
    x, y = _logits(7, 1500, 2.0, seed=3, device=device)
    gen = torch.Generator().manual_seed(9)
    coef = [w * torch.randn(7, generator=gen).to(device) for w in weights]
    xa = x.clone().requires_grad_(True)
    sum(c * o for c, o in zip(coef, row_entropy(xa, y))).sum().backward()
    xr = x.double().clone().requires_grad_(True)
    sum(c.double() * o for c, o in zip(coef, row_entropy_reference(xr, y))).sum().backward()
    torch.testing.assert_close(xa.grad.double(), xr.grad, rtol=1e-4, atol=1e-6)


@needs_native
def test_gradcheck_against_finite_differences():
    # The float32 kernel vs central differences of the float64 reference at the same point.
    x, y = _logits(3, 40, 1.0, seed=5)
    xa = x.clone().requires_grad_(True)
    h, lp, lse = row_entropy(xa, y)
    (h.sum() + 0.5 * lp.sum()).backward()
    eps = 1e-6
    x64 = x.double()
    num = torch.zeros_like(x64)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            for sign in (1, -1):
                xp = x64.clone()
                xp[i, j] += sign * eps
                hh, ll, _ = row_entropy_reference(xp, y)
                num[i, j] += sign * (hh.sum() + 0.5 * ll.sum()) / (2 * eps)
    torch.testing.assert_close(xa.grad.double(), num, rtol=1e-4, atol=1e-5)


@needs_native
def test_native_kernel_allocates_no_row_by_vocab_temporary():
    # Forward output memory is O(T): three float32 vectors, whatever V is.
    x, y = _logits(4, 100_000)
    h, lp, lse = native.module().row_entropy_forward(x.numpy(), y.numpy())
    assert h.nbytes == lp.nbytes == lse.nbytes == 4 * 4


@needs_native
@pytest.mark.parametrize("bad", [
    lambda: np.zeros((3, 4), dtype=np.float64),          # wrong dtype
    lambda: np.zeros((3,), dtype=np.float32),            # wrong rank
    lambda: np.zeros((4, 3), dtype=np.float32).T,        # not contiguous
    lambda: np.zeros((3, 0), dtype=np.float32),          # empty vocabulary
    lambda: [[1.0, 2.0]],                                # not an array
])
def test_binding_rejects_bad_logits(bad):
    with pytest.raises(ValueError):
        native.module().row_entropy_forward(bad(), None)


@needs_native
def test_binding_rejects_bad_labels():
    x = np.zeros((3, 4), dtype=np.float32)
    for labels in (np.zeros(2, dtype=np.int64), np.zeros(3, dtype=np.int32), np.array([0, 1, 4], dtype=np.int64),
                   np.array([0, -1, 2], dtype=np.int64)):
        with pytest.raises(ValueError):
            native.module().row_entropy_forward(x, labels)


@needs_native
@settings(max_examples=60, deadline=None)
@given(rows=st.integers(0, 5), vocab=st.integers(0, 9), dtype=st.sampled_from([np.float32, np.float64, np.int64]),
       transpose=st.booleans())
def test_binding_never_crashes_on_arbitrary_arrays(rows, vocab, dtype, transpose):
    x = np.ones((rows, vocab), dtype=dtype)
    if transpose:
        x = x.T
    ok = dtype == np.float32 and x.flags.c_contiguous and x.shape[1] > 0
    if ok:
        h, _, _ = native.module().row_entropy_forward(x, None)
        np.testing.assert_allclose(h, np.log(x.shape[1]), rtol=1e-5)
    else:
        with pytest.raises(ValueError):
            native.module().row_entropy_forward(x, None)


def test_python_api_rejects_bad_shapes():
    with pytest.raises(ValueError):
        row_entropy(torch.zeros(3))
    with pytest.raises(ValueError):
        row_entropy(torch.zeros(3, 0))
    with pytest.raises(ValueError):
        row_entropy(torch.zeros(3, 4), torch.zeros(2, dtype=torch.long))


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_matches_cpu_reference_and_respects_stream(dtype):
    x, y = _logits(64, 32768, 3.0)
    want = row_entropy_reference(x.to(dtype).double(), y)
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        xc = x.to("cuda", dtype)
        got = row_entropy(xc, y.cuda())
    s.synchronize()
    for g, w in zip(got, want):
        torch.testing.assert_close(g.double().cpu(), w, rtol=1e-4, atol=1e-3)
