"""Fusion of Gaussian experts: PoE, gPoE (uniform, raw and normalised entropy weights), BCM, rBCM, GRBCM.

Every rule is one pass over the experts keeping four running sums per test point (toolbox/gpoe.h):
    S_T = sum_i b_i / v_i,  S_Tm = sum_i b_i m_i / v_i,  S_b = sum_i b_i,  S_b2 = sum_i b_i^2
with b_i = 1 or the entropy change b_i = 1/2 (log v**_i - log v_i) (Cao & Fleet, Sec. 2.3), then one of three
combinations (precision T, mean = numerator / T):
    product     T = S_T                      (PoE, Hinton 2002; gPoE with raw entropy weights)
    normalised  T = S_T / S_b                (gPoE with weights normalised to sum 1; uniform 1/M when b_i = 1)
    corrected   T = S_T + (1 - S_b) / v**    (BCM, Tresp 2000; rBCM, Deisenroth & Ng 2015)
The sums add over any grouping of experts, so shards can fuse partially and `combine_stats` + `finalize` give
the same answer as one flat pass. Where S_b < eps (no informative expert) or T is not positive, the prior is
returned. `fuse_reference` is the float64 numpy oracle; `fuse` runs the C++ / CUDA kernel when it can.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toolbox.core import dispatch, native
from toolbox.core.errors import UserInputError

WEIGHTS = {"one": 0, "entropy": 1}
COMBINES = {"product": 0, "normalised": 1, "corrected": 2}

# rule -> (weight, combine)
RULES: dict[str, tuple[str, str]] = {
    "poe": ("one", "product"),
    "gpoe-uniform": ("one", "normalised"),
    "gpoe-entropy": ("entropy", "product"),
    "gpoe-normalized": ("entropy", "normalised"),
    "bcm": ("one", "corrected"),
    "rbcm": ("entropy", "corrected"),
}
ALL_RULES = (*RULES, "grbcm")
DEFAULT_EPS = 1e-9


@dataclass
class Fused:
    """A fused Gaussian per test point, with the weight diagnostics."""
    mean: np.ndarray
    var: np.ndarray
    fallback: np.ndarray     # True where the prior was returned
    sum_beta: np.ndarray     # S_b
    effective_experts: np.ndarray  # (S_b)^2 / S_b2

    def numpy(self) -> "Fused":
        """The same with every field as a numpy array (CUDA results come back as torch tensors)."""
        return Fused(*(a.detach().cpu().numpy() if _is_torch(a) else a for a in
                       (self.mean, self.var, self.fallback, self.sum_beta, self.effective_experts)))


def rule_parts(rule: str) -> tuple[str, str]:
    if rule not in RULES:
        raise UserInputError(f"unknown fusion rule {rule!r}; known: {', '.join(ALL_RULES)}")
    return RULES[rule]


def expert_weights(var, weight_prior, weight: str) -> np.ndarray:
    """b_i(x): 1, or the entropy change 1/2 log(v**/v_i) clipped at 0; 0 where the expert is not a finite Gaussian."""
    var = np.asarray(var, dtype=np.float64)
    valid = np.isfinite(var) & (var > 0)
    if weight == "one":
        return valid.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.broadcast_to(np.asarray(weight_prior, dtype=np.float64), var.shape) / var
        beta = np.where(valid & (ratio > 1) & np.isfinite(ratio), 0.5 * np.log(np.where(ratio > 0, ratio, 1.0)), 0.0)
    return beta


def statistics(mean, var, weight_prior, weight: str) -> np.ndarray:
    """The running sums [4, N] (S_T, S_Tm, S_b, S_b2) of experts mean/var [M, N] (float64 reference)."""
    mean = np.asarray(mean, dtype=np.float64)
    var = np.asarray(var, dtype=np.float64)
    valid = np.isfinite(mean) & np.isfinite(var) & (var > 0)
    beta = np.where(valid, expert_weights(var, weight_prior, weight), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(valid, beta / np.where(valid, var, 1.0), 0.0)
        weighted_mean = np.where(valid, precision * np.where(valid, mean, 0.0), 0.0)
    return np.stack([precision.sum(0), weighted_mean.sum(0), beta.sum(0), (beta * beta).sum(0)])


def combine_stats(*parts: np.ndarray) -> np.ndarray:
    """Reduction of partial sums from disjoint groups of experts (associative and commutative)."""
    return np.sum(np.stack(parts), axis=0)


def finalize(stats: np.ndarray, combine: str, prior_var, prior_mean=0.0, eps: float = DEFAULT_EPS) -> Fused:
    """The fused Gaussian from the sums [4, N] (mirrors gpoe_finalize in toolbox/gpoe.h)."""
    s_t, s_tm, s_b, s_b2 = np.asarray(stats, dtype=np.float64)
    prior_var = np.broadcast_to(np.asarray(prior_var, dtype=np.float64), s_t.shape)
    prior_mean = np.broadcast_to(np.asarray(prior_mean, dtype=np.float64), s_t.shape)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if combine == "normalised":
            positive = s_b > 0
            precision = np.where(positive, s_t / np.where(positive, s_b, 1.0), s_t)
            numerator = np.where(positive, s_tm / np.where(positive, s_b, 1.0), s_tm)
        elif combine == "corrected":
            precision = s_t + (1.0 - s_b) / prior_var
            numerator = s_tm + (1.0 - s_b) * prior_mean / prior_var
        else:
            precision, numerator = s_t, s_tm
        var = 1.0 / precision
        mean = numerator * var
        effective = s_b * s_b / s_b2
    ok = (s_b >= eps) & (precision > 0) & np.isfinite(var) & np.isfinite(mean)
    return Fused(np.where(ok, mean, prior_mean), np.where(ok, var, prior_var), ~ok, s_b,
                 np.where(s_b2 > 0, effective, 0.0))


def _check_prior(prior_var, prior_mean, eps) -> None:
    """What the kernel rejects too: the fallback prior must be a finite Gaussian, eps finite and >= 0."""
    pv = np.asarray(_np(prior_var), dtype=np.float64)
    if not (np.isfinite(pv).all() and (pv > 0).all()):
        raise UserInputError("prior_var must be finite and > 0")
    if prior_mean is not None and not np.isfinite(np.asarray(_np(prior_mean), dtype=np.float64)).all():
        raise UserInputError("prior_mean must be finite")
    if not 0 <= eps < np.inf:
        raise UserInputError(f"eps must be finite and >= 0, got {eps}")


def fuse_reference(mean, var, prior_var, rule: str = "gpoe-normalized", prior_mean=0.0, weight_prior=None,
                   eps: float = DEFAULT_EPS) -> Fused:
    """float64 numpy fusion of experts [M, N]; weight_prior (default prior_var) is v** of the entropy weights."""
    weight, combine = rule_parts(rule)
    _check_prior(prior_var, prior_mean, eps)
    wp = prior_var if weight_prior is None else weight_prior
    return finalize(statistics(mean, var, wp, weight), combine, prior_var, prior_mean, eps)


def fuse(mean, var, prior_var, rule: str = "gpoe-normalized", prior_mean=None, weight_prior=None,
         eps: float = DEFAULT_EPS) -> Fused:
    """Fuse Gaussian experts mean/var [M, N] with `rule` (one of RULES).

    prior_var (scalar or [N]) is the prior v** used for the fallback and the BCM correction; weight_prior (scalar,
    [N] or [M, N], default prior_var) is each expert's own prior variance for the entropy weights. numpy float32 /
    float64 or torch tensors (CPU or CUDA); the native kernel runs when the build has it, else the reference.
    """
    weight, combine = rule_parts(rule)
    _check_prior(prior_var, prior_mean, eps)
    if _is_torch(mean) and mean.is_cuda:
        return _fuse_cuda(mean, var, prior_var, weight, combine, prior_mean, weight_prior, eps)
    mean, var = (np.asarray(dispatch.as_numpy(a) if _is_torch(a) else a) for a in (mean, var))
    _check_shapes(mean, var)
    wp = prior_var if weight_prior is None else weight_prior
    if not (dispatch.use_native() and mean.dtype == var.dtype and mean.dtype in (np.float32, np.float64)):
        return fuse_reference(mean, var, prior_var, rule, 0.0 if prior_mean is None else prior_mean, wp, eps)
    dt = mean.dtype
    as_vec = lambda a: np.ascontiguousarray(np.atleast_1d(np.asarray(a, dtype=dt)))  # noqa: E731
    out_mean, out_var, fallback, stats = native.module().gpoe_fuse(
        np.ascontiguousarray(mean), np.ascontiguousarray(var), as_vec(wp), as_vec(prior_var),
        None if prior_mean is None else as_vec(prior_mean), WEIGHTS[weight], COMBINES[combine], float(eps), True)
    return _with_diagnostics(out_mean, out_var, fallback.astype(bool), stats)


def _with_diagnostics(mean, var, fallback, stats) -> Fused:
    s_b, s_b2 = stats[2], stats[3]
    with np.errstate(divide="ignore", invalid="ignore"):
        effective = np.where(s_b2 > 0, s_b * s_b / np.where(s_b2 > 0, s_b2, 1.0), 0.0)
    return Fused(mean, var, fallback, s_b, effective)


def _fuse_cuda(mean, var, prior_var, weight, combine, prior_mean, weight_prior, eps) -> Fused:
    import torch

    _check_shapes(mean, var)
    dev, dt = mean.device, mean.dtype
    if dt not in (torch.float32, torch.float64) or var.dtype != dt or not dispatch.native_cuda(mean):
        rule = next(k for k, v in RULES.items() if v == (weight, combine))
        cpu = fuse_reference(mean.double().cpu().numpy(), var.double().cpu().numpy(), _np(prior_var), rule,
                             0.0 if prior_mean is None else _np(prior_mean),
                             None if weight_prior is None else _np(weight_prior), eps)
        return Fused(*(torch.as_tensor(getattr(cpu, f), device=dev) for f in Fused.__dataclass_fields__))
    experts, points = mean.shape
    vec = lambda a: torch.as_tensor(a, dtype=dt, device=dev).reshape(-1).contiguous()  # noqa: E731
    mean, var = mean.contiguous(), var.contiguous()
    pv = vec(prior_var)
    wp = pv if weight_prior is None else torch.as_tensor(weight_prior, dtype=dt, device=dev).contiguous()
    if wp.dim() == 1:
        wp = wp.unsqueeze(0)
    strides = (0 if wp.shape[0] == 1 else wp.shape[1], 0 if wp.shape[1] == 1 else 1)
    if wp.shape[0] not in (1, experts) or wp.shape[1] not in (1, points) or pv.numel() not in (1, points):
        raise UserInputError("prior shapes do not broadcast to the experts' [M, N]")
    pm = None if prior_mean is None else vec(prior_mean)
    out_mean, out_var = torch.empty(points, dtype=dt, device=dev), torch.empty(points, dtype=dt, device=dev)
    fallback = torch.empty(points, dtype=torch.uint8, device=dev)
    stats = torch.empty(4, points, dtype=torch.float64, device=dev)
    with dispatch.on_device(mean) as stream:
        native.module().gpoe_fuse_cuda(
            0 if dt == torch.float32 else 1, experts, points, dispatch.ptr(mean), dispatch.ptr(var),
            dispatch.ptr(wp), strides[0], strides[1], dispatch.ptr(pv), 0 if pv.numel() == 1 else 1,
            dispatch.ptr(pm), 0 if pm is None or pm.numel() == 1 else 1, WEIGHTS[weight], COMBINES[combine],
            float(eps), dispatch.ptr(out_mean), dispatch.ptr(out_var), dispatch.ptr(fallback), dispatch.ptr(stats),
            stream)
    s_b, s_b2 = stats[2], stats[3]
    effective = torch.where(s_b2 > 0, s_b * s_b / s_b2.clamp_min(1e-300), torch.zeros_like(s_b))
    return Fused(out_mean, out_var, fallback.bool(), s_b, effective)


def fuse_grbcm(comm_mean, comm_var, mean, var, eps: float = DEFAULT_EPS) -> Fused:
    """GRBCM (Liu et al. 2018): the communication expert c [N] is the prior of the enlarged experts +i [M', N].

    T = sum_i b_i T_+i + (1 - sum_i b_i) T_c, with b = 1 for the first enlarged expert and the entropy change
    1/2 log(v_c / v_+i) for the others; the mean numerator likewise, with the communication expert's mean.
    """
    mean, var = np.asarray(mean, dtype=np.float64), np.asarray(var, dtype=np.float64)
    _check_shapes(mean, var)
    first = statistics(mean[:1], var[:1], comm_var[None], "one")
    rest = statistics(mean[1:], var[1:], np.asarray(comm_var)[None], "entropy")
    return finalize(combine_stats(first, rest), "corrected", comm_var, comm_mean, eps)


def _check_shapes(mean, var) -> None:
    if mean.ndim != 2 or tuple(var.shape) != tuple(mean.shape):
        raise UserInputError(f"expert means and variances must both be [M, N], got {tuple(mean.shape)} and "
                             f"{tuple(var.shape)}")


def _is_torch(a) -> bool:
    return type(a).__module__.startswith("torch")


def _np(a):
    return a.detach().double().cpu().numpy() if _is_torch(a) else np.asarray(a, dtype=np.float64)
