"""Exact GP experts: each expert is trained on its own points by its own optimiser; predictions are batched.

Training. `independent`: M separate gpytorch `ExactGP` models (zero mean, ScaleKernel, GaussianLikelihood), each on
its own unpadded points, each minimising its own `ExactMarginalLogLikelihood` (per point) with its own L-BFGS: own
line search, own stopping rule, own iteration count. So an expert's hyper-parameters do not depend on which experts
share its shard (`experts_per_task`) or on the backend. A batch-mode ExactGP (batch_shape [M]) is not used for
training: one optimiser over batched parameter tensors couples the experts through the shared line search and
stopping rule (what this replaced: lengthscales changed by up to 177% between shards of 8 and of 1), and it needs
equal-sized experts, whose padding gpytorch's ExactGP cannot mask exactly. `shared`: the same per-expert models
sharing one kernel and likelihood, fitted on the sum of their log marginal likelihoods (Deisenroth & Ng 2015);
`fixed`: given values. gpytorch runs with Cholesky at every size (never CG / Lanczos), in float64.

Factorisation and prediction are batched over the padded experts [M, m, d]: expert i holds n_i of the m points, and
its matrix A_i = mask mask^T * (K_i + s_i I) + diag(1 - mask) with padded targets 0 makes the padding exact (padded
points add log 1 and 0 to the marginal likelihood and nothing to predictions: their k_* is masked to 0). Kernels:
RBF and Matern 1/2, 3/2, 5/2 with ARD lengthscales (gpytorch); float64 Cholesky with logged jitter escalation.
"""
from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toolbox.core.errors import UserInputError

KERNELS = ("rbf", "matern12", "matern32", "matern52")
HYPER_MODES = ("independent", "shared", "fixed")
JITTERS = (0.0, 1e-8, 1e-6, 1e-4, 1e-2)  # relative to the signal variance, tried in order
TOLERANCE_GRAD = 1e-5     # an expert's L-BFGS stops when max |gradient| of its NLML per point is below this
TOLERANCE_CHANGE = 1e-9   # ... or when its NLML per point or its step changes by less than this


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
    converged: np.ndarray = field(default=None)    # [M] the optimiser stopped by its tolerance before its caps
    iterations: np.ndarray = field(default=None)   # [M] L-BFGS iterations (shared: the joint fit's; fixed: 0)
    evaluations: np.ndarray = field(default=None)  # [M] objective evaluations
    failed: np.ndarray = field(default=None)       # [M] training failed; the initial hyper-parameters were kept

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
        np.savez_compressed(buf, **{k: v for k, v in self.__dict__.items() if k != "kernel" and v is not None},
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


def batched_kernel(name: str, lengthscale, outputscale):
    """make_kernel with batch_shape [M] set to lengthscales [M, d] and signal variances [M]."""
    import torch

    experts, dims = lengthscale.shape
    kern = make_kernel(name, dims, experts)
    with torch.no_grad():
        kern.base_kernel.lengthscale = torch.as_tensor(lengthscale, dtype=torch.float64).view(experts, 1, dims)
        kern.outputscale = torch.as_tensor(outputscale, dtype=torch.float64)
    return kern


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


def _nlml(kernel: str, lengthscale, outputscale, noise, x, y, mask):
    """Negative log marginal likelihood per expert [M] of the padded experts (exact, masked; inf where the Cholesky
    failed even with jitter), and the relative jitter each expert needed."""
    import torch

    k = batched_kernel(kernel, lengthscale, outputscale)(x, x).to_dense()
    chol, jitter, failed = _masked_cholesky(k, noise, mask, outputscale)
    alpha = torch.cholesky_solve(y.unsqueeze(-1), chol).squeeze(-1)
    logdet = torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    nlml = 0.5 * (y * alpha).sum(-1) + logdet + 0.5 * mask.sum(-1) * math.log(2 * math.pi)
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


@contextlib.contextmanager
def exact_gpytorch():
    """gpytorch with Cholesky at every size: no CG / Lanczos, whose results are approximate and seed-dependent."""
    import gpytorch

    with gpytorch.settings.max_cholesky_size(2 ** 62), gpytorch.settings.fast_computations(False, False, False):
        yield


@functools.cache
def _exact_gp():
    import gpytorch

    class ExactExpert(gpytorch.models.ExactGP):
        """One expert: a zero-mean exact GP on its own points."""

        def __init__(self, x, y, kernel, likelihood):
            super().__init__(x, y, likelihood)
            self.mean_module = gpytorch.means.ZeroMean()
            self.covar_module = kernel

        def forward(self, x):
            return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))

    return ExactExpert


def _modules(kernel: str, dims: int, init: dict):
    """A kernel and a Gaussian likelihood (no batch shape) at the initial hyper-parameters."""
    import gpytorch
    import torch

    kern = make_kernel(kernel, dims, 0)
    lik = gpytorch.likelihoods.GaussianLikelihood(noise_constraint=gpytorch.constraints.GreaterThan(1e-6)).double()
    kern.base_kernel.lengthscale = torch.as_tensor(init["lengthscale"], dtype=torch.float64).expand_as(
        kern.base_kernel.lengthscale)
    kern.outputscale = torch.as_tensor(init["outputscale"], dtype=torch.float64)
    lik.noise = torch.as_tensor(init["noise"], dtype=torch.float64).expand_as(lik.noise)
    return kern, lik


def _neg_mll(kern, lik, x, y):
    """The objective of one expert: minus gpytorch's exact log marginal likelihood per point of its own points."""
    import gpytorch

    model = _exact_gp()(x, y, kern, lik)
    model.train()
    mll = gpytorch.mlls.ExactMarginalLogLikelihood(lik, model)
    return lambda: -mll(model(x), y)


def _per_point_sum(terms):
    """NLML per point of a group of experts from (objective per point, points) pairs; one expert: its own."""
    total = sum(n for _, n in terms)
    return lambda: sum(f() * n for f, n in terms) / total


def _lbfgs(params, objective, iterations, tolerance_grad, tolerance_change, record=None):
    """Minimise `objective` with an L-BFGS (strong Wolfe) of its own: at most `iterations` iterations and
    3 x iterations evaluations; it stops earlier when max |gradient| <= tolerance_grad, or when the objective, the
    step or the directional derivative changes by less than tolerance_change. `record(iteration, value)` sees every
    evaluation. Returns (iterations that evaluated the objective, evaluations, converged: stopped by a tolerance
    before a cap)."""
    import torch

    max_eval = 3 * iterations
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=iterations, max_eval=max_eval, tolerance_grad=tolerance_grad,
                            tolerance_change=tolerance_change, line_search_fn="strong_wolfe")
    state, seen = opt.state[params[0]], [0]

    def closure():
        opt.zero_grad()
        loss = objective()
        if torch.isfinite(loss):
            loss.backward()
        seen[0] = state.get("n_iter", 0)
        if record is not None:
            record(seen[0], float(loss.detach()))
        return loss

    opt.step(closure)
    started, evals = state.get("n_iter", 0), state.get("func_evals", 0)
    return seen[0], evals, started < iterations and evals < max_eval


def _values(kern, lik):
    return (kern.base_kernel.lengthscale.detach().reshape(-1), kern.outputscale.detach().reshape(()),
            lik.noise.detach().reshape(()))


def fit(x: np.ndarray, y: np.ndarray, mask: np.ndarray, kernel: str = "rbf", hyper: str = "independent",
        iterations: int = 50, init: dict | None = None, log=None, trace: list | None = None,
        tolerance_grad: float = TOLERANCE_GRAD, tolerance_change: float = TOLERANCE_CHANGE) -> ExpertSet:
    """Train M experts on padded data (standardised units). init: lengthscale, outputscale, noise (fixed: the truth).

    `trace`, when given, receives one row per objective evaluation: expert (its index here; "all" for the joint
    shared fit), evaluation, iteration (the L-BFGS iteration it belongs to, 0: the start) and nlml_per_point.
    An expert whose training raises a linear-algebra error, or whose likelihood is not finite afterwards, keeps its
    initial hyper-parameters and is flagged (failed True, converged False) with a log line.
    """
    with one_torch_thread(), exact_gpytorch():
        return _fit(x, y, mask, kernel, hyper, iterations, init, log, trace, tolerance_grad, tolerance_change)


def _fit(x, y, mask, kernel, hyper, iterations, init, log, trace, tolerance_grad, tolerance_change) -> ExpertSet:
    import torch

    if hyper not in HYPER_MODES:
        raise UserInputError(f"hyper must be one of {', '.join(HYPER_MODES)}, got {hyper!r}")
    experts, _, dims = x.shape
    init = {"lengthscale": 1.0, "outputscale": 1.0, "noise": 0.1, **(init or {})}
    start = [torch.as_tensor(init[k], dtype=torch.float64).expand(*shape).clone() for k, shape in
             (("lengthscale", (experts, dims)), ("outputscale", (experts,)), ("noise", (experts,)))]
    ls, outputscale, noise = (t.clone() for t in start)
    runs, evals = np.zeros(experts, dtype=int), np.zeros(experts, dtype=int)
    converged, failed = np.full(experts, hyper == "fixed" or iterations == 0), np.zeros(experts, dtype=bool)
    trained = hyper != "fixed" and iterations > 0
    if trained:
        points = [(torch.as_tensor(x[i, mask[i]], dtype=torch.float64),
                   torch.as_tensor(y[i, mask[i]], dtype=torch.float64)) for i in range(experts)]
        groups = ([(i, [p]) for i, p in enumerate(points)] if hyper == "independent" else [("all", points)])
        for name, data in groups:
            rows = slice(name, name + 1) if hyper == "independent" else slice(None)
            kern, lik = _modules(kernel, dims, init)
            objective = _per_point_sum([(_neg_mll(kern, lik, xi, yi), len(yi)) for xi, yi in data])
            record = None if trace is None else _recorder(trace, name)
            try:
                runs[rows], evals[rows], converged[rows] = _lbfgs([*kern.parameters(), *lik.parameters()], objective,
                                                                  iterations, tolerance_grad, tolerance_change, record)
            except RuntimeError as exc:  # a linear-algebra failure inside the line search
                failed[rows] = True
                if log:
                    log(f"gpoe: expert {name}: training stopped ({exc})")
                continue
            ls[rows], outputscale[rows], noise[rows] = _values(kern, lik)
    xt, mt = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(mask, dtype=torch.float64)
    yt = torch.as_tensor(y, dtype=torch.float64) * mt
    with torch.no_grad():
        nlml, jitter = _nlml(kernel, ls, outputscale, noise, xt, yt, mt)
        bad = torch.as_tensor(failed) | ~torch.isfinite(nlml) if trained else torch.zeros(experts, dtype=torch.bool)
        if hyper == "shared" and bad.any():
            bad[:] = True
        if bad.any():
            for value, first in zip((ls, outputscale, noise), start):
                value[bad] = first[bad]
            failed |= bad.numpy()
            nlml, jitter = _nlml(kernel, ls, outputscale, noise, xt, yt, mt)
            if log:
                log(f"gpoe: {int(bad.sum())} expert(s) failed to train; kept their initial hyper-parameters")
    missing = torch.isnan(jitter)
    if bool(missing.any()):
        raise UserInputError(f"{int(missing.sum())} expert(s) are numerically singular even with jitter "
                             f"{JITTERS[-1]}; check for constant targets or duplicated inputs")
    if log and bool((jitter > 0).any()):
        log(f"gpoe: added jitter (up to {float(jitter.max()):.0e} x signal variance) to "
            f"{int((jitter > 0).sum())} expert(s)")
    return ExpertSet(x, y * mask, mask, kernel, ls.numpy(), outputscale.numpy(), noise.numpy(), jitter.numpy(),
                     (nlml / mt.sum(-1)).numpy(), converged & ~failed, runs, evals, failed)


def _recorder(trace: list, expert):
    """Appends one trace row per evaluation of one optimiser."""
    count = iter(range(1, 2 ** 62))

    def record(iteration: int, value: float) -> None:
        trace.append({"expert": expert, "evaluation": next(count), "iteration": iteration, "nlml_per_point": value})

    return record


def predict(experts: ExpertSet, xs: np.ndarray, chunk_elements: int = 2 ** 24) -> tuple[np.ndarray, ...]:
    """Latent predictions of every expert at xs [T, d]: (mean [M, T], var_f [M, T], prior var k(x, x) [M])."""
    with one_torch_thread():
        return _predict(experts, xs, chunk_elements)


def _predict(experts, xs, chunk_elements):
    import torch

    m_experts, m, dims = experts.x.shape
    if xs.ndim != 2 or xs.shape[1] != dims:
        raise UserInputError(f"test inputs must be [T, {dims}], got {xs.shape}")
    kern = batched_kernel(experts.kernel, experts.lengthscale, experts.outputscale)
    with torch.no_grad():
        x = torch.as_tensor(experts.x)
        mask = torch.as_tensor(experts.mask, dtype=torch.float64)
        y = torch.as_tensor(experts.y) * mask
        outputscale = torch.as_tensor(experts.outputscale)
        chol, _, failed = _masked_cholesky(kern(x, x).to_dense(), torch.as_tensor(experts.noise), mask,
                                           outputscale)
        if bool(failed.any()):
            raise UserInputError("saved experts are numerically singular")
        alpha = torch.cholesky_solve(y.unsqueeze(-1), chol)
        step = max(1, chunk_elements // max(1, m_experts * m))
        means, variances = [], []
        for start in range(0, len(xs), step):
            xt = torch.as_tensor(xs[start:start + step]).expand(m_experts, -1, -1)
            ks = kern(x, xt).to_dense() * mask.unsqueeze(-1)  # [M, m, t]
            means.append((ks * alpha).sum(1))
            v = torch.linalg.solve_triangular(chol, ks, upper=False)
            variances.append((outputscale.unsqueeze(-1) - (v * v).sum(1)).clamp_min(1e-12 * outputscale.unsqueeze(-1)))
        mean = torch.cat(means, 1).numpy() if means else np.zeros((m_experts, 0))
        var = torch.cat(variances, 1).numpy() if variances else np.zeros((m_experts, 0))
    return mean, var, experts.outputscale.copy()
