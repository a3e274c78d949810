"""Exact GP experts, batched: one gpytorch kernel with batch_shape [M] over M experts of unequal sizes.

Expert i holds n_i of the padded m points; the mask makes the padding exact rather than approximate: the
expert's matrix is A_i = mask mask^T * (K_i + s_i I) + diag(1 - mask) with padded targets 0, so padded points
add nothing to the marginal likelihood (log 1 and 0) and nothing to predictions (their k_* is masked to 0).
Hyper-parameters are per expert (`independent`), shared by all experts and fitted on the sum of their log
marginal likelihoods (`shared`, Deisenroth & Ng 2015), or given (`fixed`). Kernels: RBF and Matern 1/2, 3/2,
5/2 with ARD lengthscales (gpytorch). Linear algebra is float64 Cholesky with logged jitter escalation.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toolbox.core.errors import UserInputError

KERNELS = ("rbf", "matern12", "matern32", "matern52")
HYPER_MODES = ("independent", "shared", "fixed")
JITTERS = (0.0, 1e-8, 1e-6, 1e-4, 1e-2)  # relative to the signal variance, tried in order


@dataclass
class ExpertSet:
    """M fitted experts: padded data [M, m, d], masks, hyper-parameters [M, ...] (shared ones repeated)."""
    x: np.ndarray
    y: np.ndarray
    mask: np.ndarray
    kernel: str
    lengthscale: np.ndarray  # [M, d]
    outputscale: np.ndarray  # [M]
    noise: np.ndarray        # [M]
    jitter: np.ndarray = field(default=None)       # [M] relative jitter that made the Cholesky succeed
    nlml: np.ndarray = field(default=None)         # [M] negative log marginal likelihood per point
    converged: np.ndarray = field(default=None)    # [M] False where training failed and the init was kept

    @property
    def n_experts(self) -> int:
        return int(self.x.shape[0])

    @property
    def sizes(self) -> np.ndarray:
        return self.mask.sum(1)

    def subset(self, idx) -> "ExpertSet":
        return ExpertSet(**{k: (v[idx] if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()})

    def save(self, path: str | Path, **extra: np.ndarray) -> Path:
        from toolbox.core.io import atomic_write_bytes
        import io

        buf = io.BytesIO()
        np.savez_compressed(buf, **{k: v for k, v in self.__dict__.items() if k != "kernel"},
                            kernel=np.array(self.kernel), **extra)
        return atomic_write_bytes(path, buf.getvalue())

    @staticmethod
    def load(path: str | Path) -> tuple["ExpertSet", dict]:
        """(experts, the extra arrays saved with them)."""
        try:
            data = dict(np.load(path, allow_pickle=False))
        except (OSError, ValueError) as exc:
            raise UserInputError(f"{path}: not a saved expert file ({exc})") from exc
        names = {f for f in ExpertSet.__dataclass_fields__}
        if not {"x", "y", "mask", "kernel", "lengthscale", "outputscale", "noise"} <= set(data):
            raise UserInputError(f"{path}: not a saved expert file (missing arrays)")
        experts = ExpertSet(**{k: (str(v) if k == "kernel" else v) for k, v in data.items() if k in names})
        return experts, {k: v for k, v in data.items() if k not in names}


def pad(x: np.ndarray, y: np.ndarray, labels: np.ndarray, n_experts: int):
    """Padded [M, m, d], [M, m] and the mask [M, m] of the points labelled 0..M-1; m is the largest group."""
    groups = [np.flatnonzero(labels == i) for i in range(n_experts)]
    empty = [i for i, g in enumerate(groups) if len(g) == 0]
    if empty:
        raise UserInputError(f"expert(s) {empty[:5]} got no training points; use fewer experts")
    m = max(len(g) for g in groups)
    xp = np.zeros((n_experts, m, x.shape[1]))
    yp = np.zeros((n_experts, m))
    mask = np.zeros((n_experts, m), dtype=bool)
    for i, g in enumerate(groups):
        xp[i, :len(g)], yp[i, :len(g)], mask[i, :len(g)] = x[g], y[g], True
    return xp, yp, mask


def make_kernel(name: str, dims: int, batch: int):
    """ScaleKernel(RBF or Matern, ARD) in float64 with batch_shape [batch] (batch 0: shared, no batch shape)."""
    import gpytorch
    import torch

    if name not in KERNELS:
        raise UserInputError(f"kernel must be one of {', '.join(KERNELS)}, got {name!r}")
    shape = torch.Size([batch] if batch else [])
    base = (gpytorch.kernels.RBFKernel(ard_num_dims=dims, batch_shape=shape) if name == "rbf" else
            gpytorch.kernels.MaternKernel(nu={"matern12": 0.5, "matern32": 1.5, "matern52": 2.5}[name],
                                          ard_num_dims=dims, batch_shape=shape))
    return gpytorch.kernels.ScaleKernel(base, batch_shape=shape).double()


def _covariance(kernel, x1, x2):
    return kernel(x1, x2).to_dense()


def _masked_cholesky(k, noise, mask, outputscale):
    """Cholesky of A = mm^T (K + s I) + diag(1 - m), escalating the jitter per expert; (L, jitter used [M])."""
    import torch

    mm = mask.unsqueeze(-1) * mask.unsqueeze(-2)
    base = k * mm + torch.diag_embed(noise.unsqueeze(-1) * mask + (1 - mask))
    used = torch.full((k.shape[0],), float("nan"), dtype=k.dtype)
    chol = torch.zeros_like(base)
    todo = torch.ones(k.shape[0], dtype=torch.bool)
    for jitter in JITTERS:
        if not todo.any():
            break
        idx = todo.nonzero().squeeze(-1)
        add = (jitter * outputscale[idx]).view(-1, 1, 1) * torch.diag_embed(mask[idx])
        factor, info = torch.linalg.cholesky_ex(base[idx] + add)
        ok = info == 0
        chol = chol.index_copy(0, idx[ok], factor[ok])
        used[idx[ok]] = jitter
        todo[idx[ok]] = False
    return chol, used, todo


def _expand(t, batch):
    return t.expand(batch, *t.shape[1:]) if t.shape[0] == 1 else t


def _parameters(kernel, likelihood, experts):
    ls = _expand(kernel.base_kernel.lengthscale.reshape(-1, kernel.base_kernel.lengthscale.shape[-1]), experts)
    os_ = _expand(kernel.outputscale.reshape(-1), experts)
    noise = _expand(likelihood.noise.reshape(-1), experts)
    return ls, os_, noise


def _nlml(kernel, likelihood, x, y, mask):
    """Negative log marginal likelihood per expert [M] (exact, masked; inf where the Cholesky failed even with
    jitter), and the relative jitter each expert needed."""
    import torch

    experts = x.shape[0]
    _, outputscale, noise = _parameters(kernel, likelihood, experts)
    k = _covariance(kernel, x, x)
    if k.shape[0] != experts:
        k = k.expand(experts, *k.shape[-2:])
    chol, jitter, failed = _masked_cholesky(k, noise, mask, outputscale.detach())
    alpha = torch.cholesky_solve(y.unsqueeze(-1), chol).squeeze(-1)
    n = mask.sum(-1)
    logdet = torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    nlml = 0.5 * (y * alpha).sum(-1) + logdet + 0.5 * n * math.log(2 * math.pi)
    return torch.where(failed, torch.full_like(nlml, float("inf")), nlml), jitter


@contextlib.contextmanager
def one_torch_thread():
    """Experts run on one torch thread: shards of experts are the unit of parallelism (the executor), and MKL's
    threads waiting on busy cores made single-right-hand-side solves ~8x slower on a shared 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit(x: np.ndarray, y: np.ndarray, mask: np.ndarray, kernel: str = "rbf", hyper: str = "independent",
        iterations: int = 50, init: dict | None = None, log=None, trace: list | None = None) -> ExpertSet:
    """`trace`, when given, receives the training objective (NLML per point) at every L-BFGS evaluation."""
    with one_torch_thread():
        return _fit(x, y, mask, kernel, hyper, iterations, init, log, trace)


def _fit(x, y, mask, kernel, hyper, iterations, init, log, trace=None) -> ExpertSet:
    """Train M experts on padded data (standardised units). init: lengthscale, outputscale, noise (fixed: the truth).

    L-BFGS on the sum of the experts' exact log marginal likelihoods (independent experts decouple; shared
    parameters give the product-of-experts likelihood). An expert whose likelihood is not finite after training
    keeps its initial hyper-parameters and is flagged (converged False) with a log line.
    """
    import gpytorch
    import torch

    if hyper not in HYPER_MODES:
        raise UserInputError(f"hyper must be one of {', '.join(HYPER_MODES)}, got {hyper!r}")
    experts, _, dims = x.shape
    xt, yt = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    mt = torch.as_tensor(mask, dtype=torch.float64)
    yt = yt * mt
    batch = experts if hyper == "independent" else 0
    kern = make_kernel(kernel, dims, batch)
    lik = gpytorch.likelihoods.GaussianLikelihood(
        batch_shape=torch.Size([batch] if batch else []),
        noise_constraint=gpytorch.constraints.GreaterThan(0.0 if hyper == "fixed" else 1e-6)).double()
    init = {"lengthscale": 1.0, "outputscale": 1.0, "noise": 0.1, **(init or {})}
    kern.base_kernel.lengthscale = torch.as_tensor(init["lengthscale"], dtype=torch.float64).expand_as(
        kern.base_kernel.lengthscale)
    kern.outputscale = torch.as_tensor(init["outputscale"], dtype=torch.float64).expand_as(kern.outputscale)
    lik.noise = torch.as_tensor(init["noise"], dtype=torch.float64).expand_as(lik.noise)
    start = {k: v.detach().clone() for k, v in {**dict(kern.named_parameters()),
                                                 **dict(lik.named_parameters())}.items()}
    converged = torch.ones(experts, dtype=torch.bool)
    if hyper != "fixed" and iterations > 0:  # (a fixed expert is only factorised, once, below)
        params = list(kern.parameters()) + list(lik.parameters())
        opt = torch.optim.LBFGS(params, lr=1.0, max_iter=iterations, line_search_fn="strong_wolfe")
        points = float(mt.sum())

        def closure():
            opt.zero_grad()
            nlml, _ = _nlml(kern, lik, xt, yt, mt)
            loss = nlml.sum() / points
            if torch.isfinite(loss):
                loss.backward()
            if trace is not None:
                trace.append(float(loss.detach()))
            return loss

        try:
            opt.step(closure)
        except RuntimeError as exc:  # a linear-algebra failure inside the line search
            if log:
                log(f"gpoe: training stopped early ({exc}); checking each expert")
        with torch.no_grad():
            nlml, _ = _nlml(kern, lik, xt, yt, mt)
            bad = ~torch.isfinite(nlml)
            if hyper == "shared" and bad.any():
                bad[:] = True
            if bad.any():
                _restore(kern, lik, start, bad if batch else None)
                converged &= ~bad
                if log:
                    log(f"gpoe: {int(bad.sum())} expert(s) did not converge; kept their initial hyper-parameters")
    with torch.no_grad():
        nlml, jitter = _nlml(kern, lik, xt, yt, mt)
        ls, outputscale, noise = _parameters(kern, lik, experts)
    failed = torch.isnan(jitter)
    if bool(failed.any()):
        raise UserInputError(f"{int(failed.sum())} expert(s) are numerically singular even with jitter "
                             f"{JITTERS[-1]}; check for constant targets or duplicated inputs")
    if log and bool((jitter > 0).any()):
        log(f"gpoe: added jitter (up to {float(jitter.max()):.0e} x signal variance) to "
            f"{int((jitter > 0).sum())} expert(s)")
    return ExpertSet(x, y * mask, mask, kernel, ls.numpy().copy(), outputscale.numpy().copy(), noise.numpy().copy(),
                     jitter.numpy(), (nlml / mt.sum(-1)).numpy(), converged.numpy())


def _restore(kern, lik, start, bad):
    import torch

    for name, p in {**dict(kern.named_parameters()), **dict(lik.named_parameters())}.items():
        if bad is None:
            p.data.copy_(start[name])
        else:
            rows = bad.view(-1, *([1] * (p.dim() - 1))) if p.dim() else bad
            p.data.copy_(torch.where(rows, start[name], p.data))


def predict(experts: ExpertSet, xs: np.ndarray, chunk_elements: int = 2 ** 24) -> tuple[np.ndarray, ...]:
    """Latent predictions of every expert at xs [T, d]: (mean [M, T], var_f [M, T], prior var k(x, x) [M])."""
    with one_torch_thread():
        return _predict(experts, xs, chunk_elements)


def _predict(experts, xs, chunk_elements):
    import torch

    m_experts, m, dims = experts.x.shape
    if xs.ndim != 2 or xs.shape[1] != dims:
        raise UserInputError(f"test inputs must be [T, {dims}], got {xs.shape}")
    kern = make_kernel(experts.kernel, dims, m_experts)
    with torch.no_grad():
        kern.base_kernel.lengthscale = torch.as_tensor(experts.lengthscale).view(m_experts, 1, dims)
        kern.outputscale = torch.as_tensor(experts.outputscale)
        x = torch.as_tensor(experts.x)
        mask = torch.as_tensor(experts.mask, dtype=torch.float64)
        y = torch.as_tensor(experts.y) * mask
        outputscale = torch.as_tensor(experts.outputscale)
        chol, _, failed = _masked_cholesky(_covariance(kern, x, x), torch.as_tensor(experts.noise), mask,
                                           outputscale)
        if bool(failed.any()):
            raise UserInputError("saved experts are numerically singular")
        alpha = torch.cholesky_solve(y.unsqueeze(-1), chol)
        step = max(1, chunk_elements // max(1, m_experts * m))
        means, variances = [], []
        for start in range(0, len(xs), step):
            xt = torch.as_tensor(xs[start:start + step]).expand(m_experts, -1, -1)
            ks = _covariance(kern, x, xt) * mask.unsqueeze(-1)  # [M, m, t]
            means.append((ks * alpha).sum(1))
            v = torch.linalg.solve_triangular(chol, ks, upper=False)
            variances.append((outputscale.unsqueeze(-1) - (v * v).sum(1)).clamp_min(1e-12 * outputscale.unsqueeze(-1)))
        mean = torch.cat(means, 1).numpy() if means else np.zeros((m_experts, 0))
        var = torch.cat(variances, 1).numpy() if variances else np.zeros((m_experts, 0))
    return mean, var, experts.outputscale.copy()
