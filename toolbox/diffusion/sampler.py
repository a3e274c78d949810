"""Forward, reverse and probability-flow Langevin dynamics with entropy bookkeeping in the same pass.

Paper convention (Yu & Huang eqs. 1, 31): forward OU dX = -X dt + sqrt(2) dW on [t_lo, t_hi]; reverse SDE in
generative time dY = [Y + 2 grad log p_{t}(Y)] ds + sqrt(2) dW with t = t_hi - s; probability-flow ODE
dY = [Y + grad log p_t(Y)] ds. Integrators: Euler-Maruyama, exact OU transitions (forward), stochastic Heun.

Per trajectory the kernel returns the medium entropy Delta S_E = int F o dx (Stratonovich, trapezoid rule on the
drift F that the step already needs; eqs. 61a-b), the exact log-ratio of the discrete Gaussian transition
kernels (EM and exact OU; for it <exp(-Delta S_tot)> = 1 at any step size), and ln p at both ends (Delta S = ln
p_start(x_start) - ln p_end(x_end), eqs. 25, 62). The noise of coordinate j of particle a at step k is Philox
(seed, stream, a, (k d + j) / 4), so results do not depend on batch size, chunking or device.

`langevin_reference` is the numpy oracle (and fallback); `simulate` dispatches to the fused C++ / CUDA kernel;
`simulate_external` runs an external score (a network in torch) with only the step / noise / heat epilogue fused.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toolbox.core import dispatch, native
from toolbox.core.errors import UserInputError
from toolbox.diffusion.densities import GaussianMixture, philox_normals

DIRECTIONS = {"forward": 0, "reverse": 1, "flow": 2}
SCHEMES = {"euler": 0, "exact": 1, "heun": 2}
START_STREAM = 1000  # Philox streams START_STREAM + 2 * stream (+1) draw the start states


@dataclass
class Run:
    """One batch of trajectories; entropies in nats, arrays indexed by particle."""
    direction: str
    scheme: str
    t_lo: float
    t_hi: float
    steps: int
    x_start: np.ndarray
    x_end: np.ndarray
    heat: np.ndarray           # medium entropy Delta S_E (continuum, Stratonovich)
    heat_discrete: np.ndarray  # discrete-kernel medium entropy (NaN for Heun)
    logp_start: np.ndarray
    logp_end: np.ndarray
    snapshots: np.ndarray | None = None  # [S, n, d]
    backend: str = "reference"

    @property
    def system(self) -> np.ndarray:
        """Delta S = ln p_start(x_start) - ln p_end(x_end)."""
        return self.logp_start - self.logp_end

    @property
    def total(self) -> np.ndarray:
        return self.system + self.heat

    @property
    def total_discrete(self) -> np.ndarray:
        return self.system + self.heat_discrete

    @property
    def h(self) -> float:
        return (self.t_hi - self.t_lo) / self.steps

    def snapshot_times(self, stride: int) -> np.ndarray:
        """Physical time of each snapshot."""
        k = np.arange(self.snapshots.shape[0]) * stride * self.h
        return self.t_lo + k if self.direction == "forward" else self.t_hi - k


def _validate(density: GaussianMixture, direction: str, scheme: str, t_lo: float, t_hi: float, steps: int) -> None:
    if direction not in DIRECTIONS:
        raise UserInputError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    if scheme not in SCHEMES:
        raise UserInputError(f"scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    if scheme == "exact" and direction != "forward":
        raise UserInputError("the exact OU scheme exists for the forward process only")
    if not (0.0 <= t_lo < t_hi < np.inf) or steps < 1:
        raise UserInputError(f"need 0 <= t_lo < t_hi < inf and steps >= 1, got t_lo={t_lo}, t_hi={t_hi}, steps={steps}")
    if t_lo == 0.0 and np.any(density.variances == 0):
        raise UserInputError("a point-mass component has no density at t = 0: set t_lo > 0 (e.g. 1e-3)")


def _drift(density: GaussianMixture, direction: int, x: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    """(drift, log p_t(x)); the forward drift -x needs no score (log p is then NaN, as in the kernel)."""
    if direction == 0:
        return -x, np.full(len(x), np.nan)
    logp, score = density.log_prob_score(x, t)
    return x + (2.0 if direction == 1 else 1.0) * score, logp


def langevin_reference(density: GaussianMixture, x: np.ndarray, direction: str, scheme: str, t_lo: float,
                       t_hi: float, steps: int, seed: int, stream: int = 0, first: int = 0,
                       snapshot_stride: int = 0):
    """Numpy float64 twin of langevin_particle (diffusion.h), vectorised over particles; x [n, d] is not modified.

    Returns (x_end, heat, heat_discrete, logp_start, logp_end, snapshots or None).
    """
    _validate(density, direction, scheme, t_lo, t_hi, steps)
    dirc, sch = DIRECTIONS[direction], SCHEMES[scheme]
    h = (t_hi - t_lo) / steps
    sign, t = (1.0, t_lo) if dirc == 0 else (-1.0, t_hi)
    noise = 0.0 if dirc == 2 else np.sqrt(2.0 * h)
    x = np.array(x, dtype=np.float64)
    particles = np.arange(first, first + len(x), dtype=np.uint64)
    f, logp = _drift(density, dirc, x, t)
    logp_start = density.log_prob(x, t) if dirc == 0 else logp
    f2_start = np.sum(f**2, 1)
    heat = np.zeros(len(x))
    snaps = [x.copy()] if snapshot_stride > 0 else None
    for step in range(steps):
        t_next = t + sign * h
        xi = philox_normals(seed, stream, particles, density.dim, step) if noise or sch == 1 else 0.0
        if sch == 1:  # exact OU transition
            dx = (np.exp(-h) - 1.0) * x + np.sqrt(1.0 - np.exp(-2.0 * h)) * xi
        elif sch == 2:  # stochastic Heun: predictor, then the trapezoid drift with the same noise
            xt = x + f * h + noise * xi
            ft, _ = _drift(density, dirc, xt, t_next)
            dx = 0.5 * (f + ft) * h + noise * xi
        else:
            dx = f * h + noise * xi
        work_in = np.sum(f * dx, 1)
        x = x + dx
        f, logp = _drift(density, dirc, x, t_next)
        heat += 0.5 * (work_in + np.sum(f * dx, 1))
        t = t_next
        if snapshot_stride > 0 and (step + 1) % snapshot_stride == 0:
            snaps.append(x.copy())
    logp_end = density.log_prob(x, t) if dirc == 0 else logp
    heat_discrete = {0: heat + 0.25 * h * (np.sum(f**2, 1) - f2_start), 1: heat, 2: np.full(len(x), np.nan)}[sch]
    return x, heat, heat_discrete, logp_start, logp_end, (np.stack(snaps) if snaps is not None else None)


def _native_cpu(density, x, direction, scheme, t_lo, t_hi, steps, seed, stream, first, stride, snapshots):
    h = (t_hi - t_lo) / steps
    t_start = t_lo if direction == "forward" else t_hi
    x = np.ascontiguousarray(x, dtype=np.float64).copy()
    heat, heat_d, lp0, lp1 = native.module().langevin(
        density.means, np.log(density.weights), density.variances, x, DIRECTIONS[direction], SCHEMES[scheme],
        t_start, h, steps, seed, stream, first, stride, snapshots)
    return x, heat, heat_d, lp0, lp1


def _native_cuda(density, x, direction, scheme, t_lo, t_hi, steps, seed, stream, first, stride, snapshots):
    import torch

    dev = torch.device("cuda")
    h = (t_hi - t_lo) / steps
    t_start = t_lo if direction == "forward" else t_hi
    as_t = lambda a: torch.as_tensor(np.ascontiguousarray(a, dtype=np.float64), device=dev)  # noqa: E731
    means, logw, var, xs = as_t(density.means), as_t(np.log(density.weights)), as_t(density.variances), as_t(x)
    n, d = xs.shape
    outs = [torch.empty(n, dtype=torch.float64, device=dev) for _ in range(4)]
    work = torch.empty((n, 4 * d) if d > 4 else (1,), dtype=torch.float64, device=dev)
    total = snapshots.shape[1] if snapshots is not None else first + n
    with dispatch.on_device(xs) as cuda_stream:
        native.module().langevin_cuda(
            dispatch.ptr(means), dispatch.ptr(logw), dispatch.ptr(var), density.components, d, dispatch.ptr(xs), n,
            DIRECTIONS[direction], SCHEMES[scheme], t_start, h, steps, seed, stream, first, stride, total,
            dispatch.ptr(work), *(dispatch.ptr(o) for o in outs), dispatch.ptr(snapshots), cuda_stream)
    return (xs.cpu().numpy(), *(o.cpu().numpy() for o in outs))


def simulate(density: GaussianMixture, n: int, direction: str = "forward", scheme: str = "euler",
             t_lo: float = 0.0, t_hi: float = 1.0, steps: int = 100, seed: int = 0, stream: int = 0,
             x_start: np.ndarray | None = None, chunk: int = 0, snapshot_stride: int = 0,
             device: str = "cpu", backend: str = "auto") -> Run:
    """Run n trajectories; the start states are exact samples of p_{t_start} (keyed by particle) unless given.

    backend: auto (native when built, else reference) | native | reference. chunk > 0 splits the particles into
    chunks of that size (results are identical). device cuda runs the CUDA kernel (float64 on the GPU).
    """
    _validate(density, direction, scheme, t_lo, t_hi, steps)
    if n < 1:
        raise UserInputError("need at least one particle")
    if snapshot_stride < 0 or (snapshot_stride > 0 and steps % snapshot_stride):
        raise UserInputError("snapshot_stride must divide the number of steps")
    t_start = t_lo if direction == "forward" else t_hi
    if x_start is None:
        x_start = density.sample(n, t_start, seed, START_STREAM + 2 * stream)
    x_start = np.asarray(x_start, dtype=np.float64)
    if x_start.shape != (n, density.dim):
        raise UserInputError(f"x_start must be [{n}, {density.dim}], got {x_start.shape}")
    if not np.isfinite(x_start).all():
        raise UserInputError("x_start must be finite")
    if backend not in ("auto", "native", "reference"):
        raise UserInputError(f"backend must be auto, native or reference, got {backend!r}")
    use_native = backend == "native" or (backend == "auto" and dispatch.use_native())
    if use_native and not native.available():
        raise UserInputError("backend=native asked for, but the native extension is not built")
    if device == "cuda" and not (use_native and native.cuda_kernels_usable()):
        raise UserInputError("device cuda needs the CUDA build of the native extension and a GPU")
    chunk = chunk if chunk > 0 else n
    snapshots = None
    if snapshot_stride > 0:
        snapshots = np.zeros((steps // snapshot_stride + 1, n, density.dim))
        if device == "cuda":
            import torch

            snapshots = torch.zeros(snapshots.shape, dtype=torch.float64, device="cuda")
    parts = []
    for first in range(0, n, chunk):
        xs = x_start[first:first + chunk]
        if not use_native:
            *res, snaps = langevin_reference(density, xs, direction, scheme, t_lo, t_hi, steps, seed, stream, first,
                                             snapshot_stride)
            if snaps is not None:
                snapshots[:, first:first + len(xs)] = snaps
        elif device == "cuda":
            res = _native_cuda(density, xs, direction, scheme, t_lo, t_hi, steps, seed, stream, first,
                               snapshot_stride, snapshots)
        else:
            res = _native_cpu(density, xs, direction, scheme, t_lo, t_hi, steps, seed, stream, first,
                              snapshot_stride, snapshots)
        parts.append(res)
    cat = [np.concatenate(p) for p in zip(*parts)]
    if snapshots is not None and not isinstance(snapshots, np.ndarray):
        snapshots = snapshots.cpu().numpy()
    name = "reference" if not use_native else ("cuda" if device == "cuda" else "cpu")
    return Run(direction, scheme, t_lo, t_hi, steps, x_start, *cat, snapshots=snapshots, backend=name)


def simulate_external(score_source, x_start: np.ndarray, direction: str = "reverse", t_lo: float = 0.0,
                      t_hi: float = 1.0, steps: int = 100, seed: int = 0, stream: int = 0,
                      device: str = "cpu") -> Run:
    """Euler-Maruyama with an external score (e.g. a `LearnedScore` network run in torch): the drift is evaluated
    outside, the step / Philox noise / heat epilogue runs in the fused native kernel (C++ or CUDA). Same noise
    layout and bookkeeping as `langevin_reference(score_source, ...)`, its oracle; ln p is not known (NaN)."""
    _validate(score_source, direction, "euler", t_lo, t_hi, steps)
    if not native.available():
        raise UserInputError("the fused epilogue needs the native extension; use langevin_reference instead")
    dirc, h = DIRECTIONS[direction], (t_hi - t_lo) / steps
    sign, t = (1.0, t_lo) if dirc == 0 else (-1.0, t_hi)
    x = np.array(x_start, dtype=np.float64, order="C")
    n = len(x)
    f = np.ascontiguousarray(_drift(score_source, dirc, x, t)[0])
    f2_start = np.sum(f**2, 1)
    core = native.module()
    if device == "cuda":
        import torch

        xs, dxs, heat = (torch.as_tensor(a, device="cuda") for a in (x, np.zeros_like(x), np.zeros(n)))
        for step in range(steps + 1):
            fs = torch.as_tensor(f, device="cuda")
            with dispatch.on_device(xs) as cuda_stream:
                core.langevin_external_step_cuda(dispatch.ptr(xs), dispatch.ptr(fs), dispatch.ptr(dxs),
                                                 dispatch.ptr(heat), n, x.shape[1], dirc, h, step, step < steps,
                                                 seed, stream, 0, cuda_stream)
            if step < steps:
                t += sign * h
                f = np.ascontiguousarray(_drift(score_source, dirc, xs.cpu().numpy(), t)[0])
        x, heat = xs.cpu().numpy(), heat.cpu().numpy()
    else:
        dx, heat = np.zeros_like(x), np.zeros(n)
        for step in range(steps + 1):  # the last call only closes the heat of the last increment
            core.langevin_external_step(x, f, dx, heat, dirc, h, step, step < steps, seed, stream)
            if step < steps:
                t += sign * h
                f = np.ascontiguousarray(_drift(score_source, dirc, x, t)[0])
    heat_discrete = heat + 0.25 * h * (np.sum(f**2, 1) - f2_start)
    nan = np.full(n, np.nan)
    return Run(direction, "euler", t_lo, t_hi, steps, np.asarray(x_start), x, heat, heat_discrete, nan, nan,
               backend=f"{device}-epilogue")
