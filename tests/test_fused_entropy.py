import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from native_calls import native_calls

from toolbox.core import native
from toolbox.entrocraft.fused_entropy import backend, row_entropy, row_entropy_reference

INF = float("inf")
# Every native-vs-reference case runs on both kernels; the CUDA ones carry `cuda` (scripts/gpu_check.sh runs them).
DEVICES = [pytest.param("cpu", marks=pytest.mark.native),
           pytest.param("cuda", marks=[pytest.mark.native, pytest.mark.cuda])]
# Absolute error allowed on H and log p of float32 logits (CUDA's __expf is a few ulp less accurate).
ATOL = {"cpu": 2e-6, "cuda": 5e-5}


def fused(x, y=None, **kwargs):
    """row_entropy, proved to have run the kernel (so that a test cannot compare the reference with itself)."""
    name = "row_entropy_forward_cuda" if x.is_cuda else "row_entropy_forward"
    with native_calls(name) as calls:
        out = row_entropy(x, y, **kwargs)
    assert calls[name] == 1, f"{x.dtype} logits on {x.device} did not reach the native kernel"
    return out


def fused_grad(x, y, weights, dtype):
    """_weighted_grad through the native forward and backward."""
    name = "row_entropy_backward_cuda" if x.is_cuda else "row_entropy_backward"
    with native_calls(name) as calls:
        grad = _weighted_grad(fused, x, y, weights, dtype)
    assert calls[name] == 1, "the gradient did not come from the native backward"
    return grad


def _logits(rows, vocab, scale=3.0, seed=0, device="cpu", offset=0.0):
    gen = torch.Generator().manual_seed(seed)
    x = scale * torch.randn(rows, vocab, generator=gen) + offset
    y = torch.randint(0, vocab, (rows,), generator=gen)
    return x.to(device), y.to(device)


def _masked(device="cpu"):
    """Rows with -inf masks: scattered, a leading block of exactly one / over one / many blocks (2048 entries),
    all but one entry, a masked label, and a fully masked row (padding)."""
    x, y = _logits(8, 5003, seed=11)
    x[0, ::3] = -INF
    x[1, :2048] = -INF
    x[2, :2049] = -INF
    x[3, :4100] = -INF
    x[4, :] = -INF
    x[4, 4321], y[4] = 1.5, 4321
    x[5, y[5]] = -INF
    x[6, :] = -INF
    x[7, 100:] = -INF
    return x.to(device), y.to(device)


def _assert_matches(got, x, y, atol, rtol=1e-6):
    """got (entropy, logp, lse) against the float64 reference at the same point (same conventions)."""
    want = row_entropy_reference(x.double(), y)
    for name, g, w in zip(("entropy", "logp", "lse"), got, want):
        assert g.dtype == torch.float32, name
        torch.testing.assert_close(g.double().cpu(), w.cpu(), rtol=rtol, atol=atol, msg=lambda m, name=name: f"{name}: {m}")


def _weighted_grad(fn, x, y, weights, dtype):
    """d/dx of sum_r (c1 H + c2 logp + c3 lse) with random per-row c (infinite outputs get weight 0)."""
    gen = torch.Generator().manual_seed(9)
    coef = [w * torch.randn(x.shape[0], generator=gen, dtype=torch.float64).to(x.device) for w in weights]
    xa = x.to(dtype).clone().requires_grad_(True)
    outs = fn(xa, y)
    sum((c * torch.where(torch.isinf(o), 0.0, o.double())).sum() for c, o in zip(coef, outs)).backward()
    assert xa.grad.dtype == dtype
    return xa.grad


# --- values -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
def test_closed_form_uniform_and_one_hot(device):
    x = torch.zeros(2, 1000, device=device)
    x[1, 7] = 200.0  # effectively one-hot: entropy 0
    h, lp, lse = fused(x, torch.tensor([3, 7], device=device))
    assert h[0].item() == pytest.approx(np.log(1000), rel=1e-6)
    assert lp[0].item() == pytest.approx(-np.log(1000), rel=1e-6)
    assert lse[0].item() == pytest.approx(np.log(1000), rel=1e-6)
    assert h[1].item() == pytest.approx(0.0, abs=1e-6)
    assert lp[1].item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("rows,vocab", [(1, 1), (3, 5), (2, 15), (3, 17), (17, 2047), (8, 2048), (5, 2049),
                                        (9, 5003), (4, 32768)])
@pytest.mark.parametrize("scale", [0.1, 3.0, 30.0])
def test_forward_matches_float64_reference(device, rows, vocab, scale):
    # Vocabulary sizes around the 8 / 16-lane vectors and the 2048-entry block, and multiples of them.
    x, y = _logits(rows, vocab, scale, device=device)
    _assert_matches(fused(x, y), x, y, atol=ATOL[device] * max(1.0, scale / 3))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("offset,scale", [(1e2, 3.0), (1e3, 3.0), (1e4, 3.0), (-1e4, 3.0), (0.0, 300.0),
                                          (1e4, 300.0)])
def test_forward_is_shift_invariant_and_scales(device, offset, scale):
    # Accumulating relative to the row max (N1-N3): no cancellation between lse and E_p[x] at large offsets.
    x, y = _logits(6, 5003, scale, seed=2, device=device, offset=offset)
    got = fused(x, y)
    # log p of a far-off label is ~ -scale * 8: float32 output rounding is relative, hence rtol.
    _assert_matches(got, x, y, atol=ATOL[device], rtol=2e-7 if device == "cpu" else 2e-6)
    h0, _, _ = fused(x - offset, y)  # H does not depend on the offset
    torch.testing.assert_close(got[0], h0, rtol=0, atol=2 * ATOL[device] + 2e-7 * scale)


@pytest.mark.parametrize("device", DEVICES)
def test_masked_entries_contribute_nothing(device):
    x, y = _masked(device)
    got = fused(x, y)
    _assert_matches(got, x, y, atol=ATOL[device])
    h, lp, lse = (t.cpu() for t in got)
    assert torch.isfinite(h).all()
    assert h[4] == 0 and lp[4] == 0 and lse[4] == pytest.approx(1.5)  # all but one entry masked: one-hot
    assert lp[5] == -INF and torch.isfinite(lse[5])                   # masked label: log p = -inf
    # Masked entries change nothing: the same row without them.
    kept = torch.isfinite(x[3])
    h_kept, _, lse_kept = fused(x[3:4, kept])
    assert h[3].item() == pytest.approx(h_kept.item(), abs=ATOL[device])
    assert lse[3].item() == pytest.approx(lse_kept.item(), rel=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_fully_masked_row_convention(device):
    x, y = _masked(device)
    h, lp, lse = (t.cpu() for t in fused(x, y))
    assert (h[6].item(), lp[6].item(), lse[6].item()) == (0.0, -INF, -INF)
    assert torch.isfinite(h[:6]).all() and torch.isfinite(lse[:6]).all()
    h, lp, lse = fused(torch.full((3, 3000), -INF, device=device))
    assert h.tolist() == [0.0] * 3 and lse.tolist() == [-INF] * 3 and lp.tolist() == [0.0] * 3  # no labels


def test_reference_follows_the_same_conventions():
    x, y = _masked()
    h, lp, lse = row_entropy_reference(x.double(), y)
    assert torch.isfinite(h).all()
    assert (h[6].item(), lp[6].item(), lse[6].item()) == (0.0, -INF, -INF)
    assert lp[5] == -INF


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("offset", [0.0, 1e2])
def test_half_precision_inputs_accumulate_in_float32(device, dtype, offset):
    # Read in their own type: the float64 reference at the same (rounded) logits is the oracle.
    x, y = _logits(9, 5003, 3.0, seed=4, offset=offset)
    x[0, :3000] = -INF
    x[1, ::5] = -INF
    x[2] = -INF
    xh = x.to(device, dtype)
    _assert_matches(fused(xh, y.to(device)), xh, y.to(device), atol=ATOL[device], rtol=1e-6)


def test_half_precision_reference_computes_in_float32():
    x, y = _logits(4, 3000, 3.0, seed=4)
    xb = x.bfloat16()
    got = row_entropy_reference(xb, y)
    assert all(t.dtype == torch.float32 for t in got)
    _assert_matches(got, xb, y, atol=1e-5, rtol=1e-5)


# --- NaN and +inf -----------------------------------------------------------------------------------------------

def _poisoned(device, dtype=torch.float32):
    x, y = _logits(6, 5003, seed=6)
    x[1, 17] = float("nan")
    x[2, 4000] = INF
    x[3, :] = -INF
    x[3, 3000] = float("nan")  # after a fully masked leading block: the max passes over it
    x[4, :2500] = -INF
    x[4, 100] = INF
    return x.to(device, dtype), y.to(device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_nan_and_inf_logits_are_reported(device, dtype):
    x, y = _poisoned(device, dtype)
    with pytest.raises(ValueError, match=r"NaN or \+inf in 4 row\(s\), first: \[1, 2, 3, 4\]"):
        fused(x, y)
    h, lp, lse = (t.cpu() for t in fused(x, y, check_finite=False))
    for t in (h, lp, lse):
        assert torch.isnan(t[1:5]).all() and torch.isfinite(t[[0, 5]]).all()
    xa = x.clone().requires_grad_(True)
    fused(xa, y, check_finite=False)[0].sum().backward()
    g = xa.grad.float().cpu()
    assert torch.isnan(g[1:5]).all() and torch.isfinite(g[[0, 5]]).all()


def test_reference_path_reports_nan_and_inf(monkeypatch):
    monkeypatch.setenv("TOOLBOX_KERNELS", "reference")
    x, y = _poisoned("cpu")
    assert backend(x) == "reference"
    with pytest.raises(ValueError, match=r"first: \[1, 2, 3, 4\]"):
        row_entropy(x, y)


# --- gradients --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("weights", [(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (0.7, -1.3, 0.4)])
@pytest.mark.parametrize("offset,scale", [(0.0, 2.0), (1e4, 3.0), (0.0, 200.0)])
def test_backward_matches_float64_autograd(device, weights, offset, scale):
    x, y = _logits(7, 1500, scale, seed=3, device=device, offset=offset)
    got = fused_grad(x, y, weights, torch.float32)
    want = _weighted_grad(row_entropy_reference, x, y, weights, torch.float64)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=ATOL[device])


@pytest.mark.parametrize("device", DEVICES)
def test_backward_with_masks(device):
    x, y = _masked(device)
    weights = (0.7, -1.3, 0.4)
    got = fused_grad(x, y, weights, torch.float32)
    want = _weighted_grad(row_entropy_reference, x, y, weights, torch.float64)
    assert torch.isfinite(got).all()
    masked = torch.isinf(x)
    masked[5, y[5]] = False  # d logp_y / dx_y = 1 - p_y even for a masked label
    assert (got[masked] == 0).all()
    assert (got[6] == 0).all()  # fully masked row: zero gradient
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=ATOL[device])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_backward_half_precision(device, dtype):
    x, y = _masked(device)
    x = x.to(dtype).float()  # the rounded logits, so that both sides differentiate at the same point
    weights = (0.7, -1.3, 0.4)
    got = fused_grad(x, y, weights, dtype)
    want = _weighted_grad(row_entropy_reference, x, y, weights, torch.float64)
    # The float32 gradient is rounded once to the input's dtype (8 / 11 significant bits).
    rtol = 2 ** -8 if dtype == torch.bfloat16 else 2 ** -11
    torch.testing.assert_close(got.double(), want, rtol=rtol, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_gradient_against_finite_differences(device):
    # The float32 kernel vs central differences of the float64 reference at the same point.
    x, y = _logits(3, 40, 1.0, seed=5, device=device)
    xa = x.clone().requires_grad_(True)
    h, lp, _ = fused(xa, y)
    (h.sum() + 0.5 * lp.sum()).backward()
    eps = 1e-6
    x64 = x.double().cpu()
    num = torch.zeros_like(x64)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            for sign in (1, -1):
                xp = x64.clone()
                xp[i, j] += sign * eps
                hh, ll, _ = row_entropy_reference(xp, y.cpu())
                num[i, j] += sign * (hh.sum() + 0.5 * ll.sum()) / (2 * eps)
    torch.testing.assert_close(xa.grad.double().cpu(), num, rtol=1e-4, atol=1e-5)


# --- dispatch -----------------------------------------------------------------------------------------------------

@pytest.mark.native
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_cpu_dispatches_every_kernel_dtype_to_cpp(dtype):
    assert backend(torch.zeros(2, 3, dtype=dtype)) == "cpu"


def test_float64_and_reference_switch_use_the_reference(monkeypatch):
    x, y = _logits(3, 50)
    assert backend(x.double()) == "reference"
    assert all(t.dtype == torch.float64 for t in row_entropy(x.double(), y))
    monkeypatch.setenv("TOOLBOX_KERNELS", "reference")
    assert backend(x) == "reference"
    _assert_matches(row_entropy(x, y), x, y, atol=1e-5, rtol=1e-5)


@pytest.mark.cuda
@pytest.mark.native
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_cuda_respects_the_current_stream(dtype):
    x, y = _logits(64, 32768, 3.0)
    want = row_entropy_reference(x.to(dtype).double(), y)
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        got = fused(x.to("cuda", dtype), y.cuda())
    s.synchronize()
    for g, w in zip(got, want):
        torch.testing.assert_close(g.double().cpu(), w, rtol=1e-5, atol=ATOL["cuda"])


# --- the binding --------------------------------------------------------------------------------------------------

@pytest.mark.native
def test_native_kernel_allocates_no_row_by_vocab_temporary():
    # Forward output memory is O(T): four float32 vectors, whatever V is.
    x, y = _logits(4, 100_000)
    outs = native.module().row_entropy_forward(x.numpy(), y.numpy())
    assert len(outs) == 4 and all(o.nbytes == 4 * 4 for o in outs)


@pytest.mark.native
@pytest.mark.parametrize("bad,dtype", [
    (lambda: np.zeros((3, 4), dtype=np.float64), 0),     # wrong dtype
    (lambda: np.zeros((3, 4), dtype=np.float16), 2),     # 16-bit logits go as uint16 bit patterns
    (lambda: np.zeros((3, 4), dtype=np.float32), 1),     # float32 under a 16-bit code
    (lambda: np.zeros((3, 4), dtype=np.uint16), 3),      # unknown code
    (lambda: np.zeros((3,), dtype=np.float32), 0),       # wrong rank
    (lambda: np.zeros((4, 3), dtype=np.float32).T, 0),   # not contiguous
    (lambda: np.zeros((3, 0), dtype=np.float32), 0),     # empty vocabulary
    (lambda: [[1.0, 2.0]], 0),                           # not an array
])
def test_binding_rejects_bad_logits(bad, dtype):
    with pytest.raises(ValueError):
        native.module().row_entropy_forward(bad(), None, dtype)


@pytest.mark.native
def test_binding_rejects_bad_labels():
    x = np.zeros((3, 4), dtype=np.float32)
    for labels in (np.zeros(2, dtype=np.int64), np.zeros(3, dtype=np.int32), np.array([0, 1, 4], dtype=np.int64),
                   np.array([0, -1, 2], dtype=np.int64)):
        with pytest.raises(ValueError):
            native.module().row_entropy_forward(x, labels)


@pytest.mark.native
@settings(max_examples=60, deadline=None)
@given(rows=st.integers(0, 5), vocab=st.integers(0, 9), dtype=st.sampled_from([np.float32, np.float64, np.uint16]),
       code=st.sampled_from([0, 1, 2]), transpose=st.booleans())
def test_binding_never_crashes_on_arbitrary_arrays(rows, vocab, dtype, code, transpose):
    x = np.ones((rows, vocab), dtype=np.float32)
    if dtype == np.uint16:
        x = (x.view(np.uint32) >> 16).astype(np.uint16)  # bfloat16 1.0; as float16 bits, 1.875
    x = x.astype(dtype, copy=False)
    if transpose:
        x = x.T
    ok = x.flags.c_contiguous and x.shape[1] > 0 and (dtype == np.float32) == (code == 0) and dtype != np.float64
    if ok:
        h, _, _, _ = native.module().row_entropy_forward(x, None, code)
        np.testing.assert_allclose(h, np.log(x.shape[1]), rtol=1e-5)
    else:
        with pytest.raises(ValueError):
            native.module().row_entropy_forward(x, None, code)


def test_python_api_rejects_bad_shapes():
    with pytest.raises(ValueError):
        row_entropy(torch.zeros(3))
    with pytest.raises(ValueError):
        row_entropy(torch.zeros(3, 0))
    with pytest.raises(ValueError):
        row_entropy(torch.zeros(3, 4), torch.zeros(2, dtype=torch.long))
