"""Dispatch of backward induction and policy evaluation to the C++ kernel (csrc/cpu/shaping_cpu.cpp), the CUDA
kernel (csrc/cuda/shaping_cuda.cu, one block per MDP, for torch tensors on a GPU) or the numpy reference."""
from __future__ import annotations

import numpy as np

from toolbox.core import dispatch
from toolbox.core import native as core_native
from toolbox.core.errors import UserInputError
from toolbox.shaping import mdp


def available() -> bool:
    """The C++ kernel is built (a build without this area's sources falls back to the reference)."""
    return dispatch.use_native() and hasattr(core_native.module(), "shaping_backward_induction")


def _check_model(R: np.ndarray, P: np.ndarray) -> None:
    """What the kernel rejects too: non-finite rewards, rows of P that are not distributions."""
    if not np.isfinite(R).all():
        raise UserInputError("R must be finite")
    if not (((P >= 0) & (P <= 1)).all() and np.allclose(P.sum(-1), 1.0, rtol=0, atol=1e-6)):
        raise UserInputError("P: every row P(.|s, a) must be a probability distribution")


def _check_policy(policy: np.ndarray) -> None:
    if not (((policy >= 0) & (policy <= 1)).all() and np.allclose(policy.sum(-1), 1.0, rtol=0, atol=1e-6)):
        raise UserInputError("policy: every pi_h(.|s) must be a probability distribution")


def _log_prior(prior, shape) -> np.ndarray:
    return np.ascontiguousarray(mdp.log_reference(prior, shape), dtype=np.float64)


def backward_induction(R, P, horizon: int, temperature: float = 0.0, prior=None):
    """(Q [..., H, S, A], V [..., H+1, S]) with gamma = 1, as `mdp.backward_induction`, by the native kernel.

    R [..., S, A], P [..., S, A, S] (float64; leading axes are a batch of MDPs). Falls back to the reference when
    the extension is missing or TOOLBOX_KERNELS=reference.
    """
    R = np.asarray(R, dtype=np.float64)
    P = np.asarray(P, dtype=np.float64)
    if R.ndim < 2 or P.shape != R.shape + R.shape[-2:-1]:
        raise UserInputError(f"R must be [..., S, A] and P [..., S, A, S]; got {R.shape} and {P.shape}")
    if not (0 <= temperature < np.inf) or horizon < 1:
        raise UserInputError("temperature must be finite and >= 0 and the horizon >= 1")
    _check_model(R, P)
    if not available():
        return mdp.backward_induction(R, P, horizon, temperature, prior)
    batch, (S, A) = R.shape[:-2], R.shape[-2:]
    flat_R = np.ascontiguousarray(R.reshape(-1, S, A))
    flat_P = np.ascontiguousarray(P.reshape(-1, S, A, S))
    log_prior = _log_prior(prior, (S, A))
    Q, V = core_native.module().shaping_backward_induction(flat_R, flat_P, log_prior, int(horizon),
                                                           float(temperature))
    return Q.reshape(*batch, horizon, S, A), V.reshape(*batch, horizon + 1, S)


def optimal_values(model: mdp.TabularMDP, temperature: float = 0.0, prior=None):
    """`mdp.optimal_values` with the kernel where it applies (a finite horizon with gamma = 1); the numpy
    reference for discounted backward induction and for infinite-horizon value iteration."""
    if model.discounted or model.gamma != 1:
        return mdp.optimal_values(model, temperature, prior)
    return backward_induction(model.R, model.P, model.horizon, temperature, prior)


def policy_evaluation(R, P, policy, temperature: float = 0.0, prior=None) -> np.ndarray:
    """V^pi [H+1, S] (gamma = 1) as `mdp.policy_evaluation`, by the native kernel when it is built."""
    if not 0 <= temperature < np.inf:
        raise UserInputError("temperature must be finite and >= 0")
    _check_model(np.asarray(R, dtype=np.float64), np.asarray(P, dtype=np.float64))
    _check_policy(np.asarray(policy, dtype=np.float64))
    if not available() or not hasattr(core_native.module(), "shaping_policy_evaluation"):
        return mdp.policy_evaluation(R, P, policy, temperature, prior)
    R = np.ascontiguousarray(R, dtype=np.float64)
    S, A = R.shape
    policy = np.ascontiguousarray(policy, dtype=np.float64)
    return core_native.module().shaping_policy_evaluation(
        R[None], np.ascontiguousarray(P, dtype=np.float64)[None], policy[None], _log_prior(prior, (S, A)),
        float(temperature))[0]


def backward_induction_torch(R, P, horizon: int, temperature: float = 0.0, prior=None):
    """Batched backward induction of float64 torch tensors R [B, S, A], P [B, S, A, S]: the CUDA kernel on a GPU,
    else the CPU path. Returns torch tensors (Q [B, H, S, A], V [B, H+1, S]) on R's device."""
    import torch

    if R.dim() != 3 or tuple(P.shape) != (*R.shape, R.shape[1]) or R.dtype != torch.float64:
        raise UserInputError("R must be float64 [B, S, A] and P [B, S, A, S]")
    B, S, A = R.shape
    if not dispatch.native_cuda(R):
        Q, V = backward_induction(R.cpu().numpy(), P.cpu().numpy(), horizon, temperature, prior)
        return torch.from_numpy(Q).to(R.device), torch.from_numpy(V).to(R.device)
    R, P = R.contiguous(), P.to(R.device).contiguous()
    log_prior = torch.from_numpy(_log_prior(prior, (S, A))).to(R.device)
    Q = torch.empty(B, horizon, S, A, dtype=torch.float64, device=R.device)
    V = torch.empty(B, horizon + 1, S, dtype=torch.float64, device=R.device)
    with dispatch.on_device(R) as stream:
        core_native.module().shaping_backward_induction_cuda(
            dispatch.ptr(R), dispatch.ptr(P), dispatch.ptr(log_prior), B, S, A, int(horizon), float(temperature),
            dispatch.ptr(Q), dispatch.ptr(V), stream)
    return Q, V
