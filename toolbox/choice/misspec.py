"""Choice-set misspecification: the class of an (assumed set, true set, true reward) triple and its exact effects.

Classes (rewards.md B3; letters as in the paper, digit numbering [R]): the set relation
    A: C_R strict subset of C_H,  B: C_R strict superset of C_H,  C: overlap without containment,  D: disjoint,
crossed with where the truly best option c* = argmax_{C_R u C_H} theta*.phi lies:
    1: in C_R n C_H,  2: only in C_H,  3: only in C_R.
Feasible: A1 A2 B1 B3 C1 C2 C3 D2 D3. Ties for c* are resolved toward the intersection, then toward C_H [R].

Effects are exact expectations over the human's Boltzmann choice c ~ P(. | theta*, C_H), compared with the correctly
specified robot (C_R = C_H): change in posterior mass on theta*, in posterior entropy, and in the regret of the
robot's resulting choice argmax_c E_b[theta].phi(c) over the whole universe. `misspecification_effects` is the numpy
reference; `batched_effects` runs many trials through the native kernel (csrc/include/toolbox/choice.h).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import logsumexp

from toolbox.choice.model import ChoiceProblem, choice_logprobs, entropy, robot_choice, unit_directions
from toolbox.core.errors import UserInputError

CLASSES = ("A1", "A2", "B1", "B3", "C1", "C2", "C3", "D2", "D3")
_ALLOWED_REGIONS = {"A": (0, 1, 3), "B": (0, 1, 2), "C": (0, 1, 2, 3), "D": (0, 2, 3)}  # 0 neither, 1 both,
_REQUIRED_REGIONS = {"A": (1, 3), "B": (1, 2), "C": (1, 2, 3), "D": (2, 3)}              # 2 R only, 3 H only


def classify(assumed: np.ndarray, true: np.ndarray, rewards: np.ndarray) -> str:
    """Class label A1..D3 of an assumed set C_R and true set C_H (masks) under true rewards; 'exact' if equal."""
    assumed, true = np.asarray(assumed, dtype=bool), np.asarray(true, dtype=bool)
    if not assumed.any() or not true.any():
        raise UserInputError("choice sets must not be empty")
    return str(classify_batch(assumed[None], true[None], np.asarray(rewards, dtype=float)[None])[0])


def classify_batch(assumed: np.ndarray, true: np.ndarray, rewards: np.ndarray) -> np.ndarray:
    """Labels [B] for non-empty set masks [B, n] and rewards [B, n] (see `classify`)."""
    both, r_only, h_only = assumed & true, assumed & ~true, true & ~assumed
    letter = np.where(~r_only.any(1), "A", np.where(~h_only.any(1), "B", np.where(~both.any(1), "D", "C")))
    union = assumed | true
    top = np.where(union, rewards, -np.inf).max(axis=1, keepdims=True)
    best = union & (np.abs(rewards - top) <= 1e-12)
    digit = np.where((best & both).any(1), "1", np.where((best & h_only).any(1), "2", "3"))
    return np.where((assumed == true).all(1), "exact", np.char.add(letter, digit))


@dataclass(frozen=True)
class Effects:
    """Exact expected effects of assuming C_R when the human chose from C_H (mis) vs assuming C_H (cor)."""

    cls: str
    p_true_mis: float
    p_true_cor: float
    entropy_mis: float
    entropy_cor: float
    regret_mis: float
    regret_cor: float

    @property
    def d_p_true(self) -> float:
        return self.p_true_mis - self.p_true_cor

    @property
    def d_entropy(self) -> float:
        return self.entropy_mis - self.entropy_cor

    @property
    def d_regret(self) -> float:
        return self.regret_mis - self.regret_cor

    @property
    def confidently_wrong(self) -> bool:
        """The detector's flag: the robot grows more certain while the true reward loses mass."""
        return self.d_entropy < 0 and self.d_p_true < 0

    def as_dict(self) -> dict:
        return {**asdict(self), "d_p_true": self.d_p_true, "d_entropy": self.d_entropy, "d_regret": self.d_regret,
                "confidently_wrong": self.confidently_wrong}


def posteriors_per_choice(utilities: np.ndarray, log_prior: np.ndarray, robot_set: np.ndarray,
                          choices: np.ndarray) -> np.ndarray:
    """Posterior [K, m] after observing each of `choices` (indices) alone, evaluated over robot_set u {c}."""
    log_z = logsumexp(np.where(robot_set, utilities, -np.inf), axis=1)  # [K]
    u_c = utilities[:, choices]  # [K, m]
    outside = ~robot_set[choices]
    log_z_c = np.where(outside, np.logaddexp(log_z[:, None], u_c), log_z[:, None])
    log_post = log_prior[:, None] + u_c - log_z_c
    return np.exp(log_post - logsumexp(log_post, axis=0, keepdims=True))


def _expected_outcome(problem: ChoiceProblem, utilities, robot_set, choices, weights, star):
    with np.errstate(divide="ignore"):
        log_prior = np.log(problem.prior)
    post = posteriors_per_choice(utilities, log_prior, robot_set, choices)  # [K, m]
    rewards = problem.features @ problem.thetas[star]
    regrets = rewards.max() - rewards[robot_choice(problem.features, problem.thetas, post.T)]
    return float(weights @ post[star]), float(weights @ entropy(post, axis=0)), float(weights @ regrets)


def misspecification_effects(problem: ChoiceProblem, assumed: np.ndarray, true: np.ndarray, star: int) -> Effects:
    """Exact expected effects for the triple (C_R = assumed, C_H = true, theta* = thetas[star])."""
    assumed, true = np.asarray(assumed, dtype=bool), np.asarray(true, dtype=bool)
    if assumed.shape != (problem.n_options,) or true.shape != (problem.n_options,):
        raise UserInputError(f"choice set masks must have {problem.n_options} entries")
    if not 0 <= star < len(problem.thetas):
        raise UserInputError(f"true reward index {star} is outside the {len(problem.thetas)} hypotheses")
    utilities = problem.utilities()
    cls = classify(assumed, true, problem.features @ problem.thetas[star])
    choices = np.flatnonzero(true)
    weights = np.exp(choice_logprobs(utilities[star], true)[choices])  # the human's choice distribution
    mis = _expected_outcome(problem, utilities, assumed, choices, weights, star)
    cor = _expected_outcome(problem, utilities, true, choices, weights, star)
    return Effects(cls, mis[0], cor[0], mis[1], cor[1], mis[2], cor[2])


def batched_effects_reference(features, assumed, true, star, thetas, prior, beta) -> np.ndarray:
    """[T, 6] = (P_mis, P_cor, H_mis, H_cor, regret_mis, regret_cor) per trial, one trial at a time in numpy."""
    out = np.empty((len(features), 6))
    for t in range(len(features)):
        e = misspecification_effects(ChoiceProblem(features[t], thetas, prior, beta), assumed[t], true[t],
                                     int(star[t]))
        out[t] = (e.p_true_mis, e.p_true_cor, e.entropy_mis, e.entropy_cor, e.regret_mis, e.regret_cor)
    return out


def batched_effects(features, assumed, true, star, thetas, prior, beta, device: str = "cpu") -> np.ndarray:
    """The same [T, 6] by the native kernel (C++ threads, or CUDA with device='cuda') when built, else the
    reference. features [T, n, d], assumed / true bool [T, n], star int [T], thetas [K, d], prior [K]."""
    from toolbox.core import native

    features = np.ascontiguousarray(features, dtype=np.float64)
    prior_arr = np.asarray(prior, dtype=np.float64)
    if not (np.isfinite(features).all() and np.isfinite(np.asarray(thetas, dtype=np.float64)).all()):
        raise UserInputError("features and thetas must be finite")
    if not (np.isfinite(prior_arr).all() and (prior_arr >= 0).all() and prior_arr.sum() > 0):
        raise UserInputError("prior must be finite, >= 0 and not all 0")
    backend = effects_backend(device, features.shape[2])
    if backend == "numpy":
        return batched_effects_reference(features, assumed, true, star, thetas, prior, beta)
    with np.errstate(divide="ignore"):
        log_prior = np.log(np.asarray(prior, dtype=np.float64) / np.sum(prior))
    args = (features, np.ascontiguousarray(assumed, dtype=np.uint8), np.ascontiguousarray(true, dtype=np.uint8),
            np.ascontiguousarray(star, dtype=np.int64), np.ascontiguousarray(thetas, dtype=np.float64), log_prior)
    if backend == "cuda":
        return _effects_cuda(args, float(beta))
    return native.module().choice_effects(*args, float(beta))


def effects_backend(device: str = "cpu", d: int = 2) -> str:
    """'cuda', 'cpu-native' or 'numpy': what `batched_effects` runs on (the kernels take d <= 16 features)."""
    from toolbox.core import dispatch, native

    if not dispatch.use_native() or d > 16:
        return "numpy"
    return "cuda" if device == "cuda" and native.cuda_kernels_usable() else "cpu-native"


def _effects_cuda(args, beta: float) -> np.ndarray:
    import torch

    from toolbox.core import dispatch, native

    tensors = [torch.from_numpy(a).cuda() for a in args]
    trials, options, dim = args[0].shape
    hypotheses = len(args[4])
    sets_ok = bool((tensors[1].sum(dim=1) > 0).all()) and bool((tensors[2].sum(dim=1) > 0).all())
    if not sets_ok or not bool(((tensors[3] >= 0) & (tensors[3] < hypotheses)).all()):
        raise UserInputError("every trial needs non-empty choice sets and a valid true reward index")
    log_z = torch.empty((max(trials, 1), hypotheses), dtype=torch.float64, device="cuda")
    out = torch.empty((trials, 6), dtype=torch.float64, device="cuda")
    with dispatch.on_device(out) as stream:
        native.module().choice_effects_cuda(*(dispatch.ptr(t) for t in tensors[:6]), beta, trials, options, dim,
                                            hypotheses, dispatch.ptr(log_z), dispatch.ptr(out), stream)
    return out.cpu().numpy()


def sample_instances(rng: np.random.Generator, cls: str, count: int, n: int, d: int, thetas: np.ndarray,
                     max_draws: int = 10_000_000):
    """`count` random triples realising class `cls` (rewards.md B4): Gaussian features [count, n, d], each option
    placed in C_R only / C_H only / both / neither as the letter allows, theta* uniform on the grid; candidates
    are drawn in batches and kept when their class is `cls`. Returns (features, assumed, true, star)."""
    if cls not in CLASSES:
        raise UserInputError(f"unknown class {cls!r}; known: {', '.join(CLASSES)}")
    allowed, required = np.array(_ALLOWED_REGIONS[cls[0]]), _REQUIRED_REGIONS[cls[0]]
    kept, have, drawn = [], 0, 0
    while have < count:
        batch = max(64, 4 * (count - have))
        if drawn > max_draws:
            raise RuntimeError(f"could not realise class {cls} with {n} options in {max_draws} draws")
        drawn += batch
        regions = rng.choice(allowed, size=(batch, n))
        features = rng.standard_normal((batch, n, d))
        star = rng.integers(len(thetas), size=batch)
        ok = np.logical_and.reduce([(regions == r).any(axis=1) for r in required])
        assumed, true = np.isin(regions, (1, 2))[ok], np.isin(regions, (1, 3))[ok]
        features, star = features[ok], star[ok]
        rewards = np.einsum("bnd,bd->bn", features, thetas[star])
        hit = classify_batch(assumed, true, rewards) == cls
        kept.append((features[hit], assumed[hit], true[hit], star[hit]))
        have += int(hit.sum())
    return tuple(np.concatenate(parts)[:count] for parts in zip(*kept))


@dataclass(frozen=True)
class SweepTask:
    """One cell of the sweep: a class at one beta, `trials` random instances from its own seed stream."""

    cls: str
    beta: float
    trials: int
    n_options: int
    d: int
    k: int
    seed: int
    device: str = "cpu"


def run_sweep_task(task: SweepTask) -> list[dict]:
    """Per-trial exact effects for one (class, beta) cell; a pure function of the task (any executor backend)."""
    from toolbox.core.rng import numpy_generator

    rng = numpy_generator(task.seed, CLASSES.index(task.cls), int(round(task.beta * 1000)))
    thetas = unit_directions(task.d, task.k, seed=task.seed)
    prior = np.full(len(thetas), 1.0 / len(thetas))
    features, assumed, true, star = sample_instances(rng, task.cls, task.trials, task.n_options, task.d, thetas)
    effects = batched_effects(features, assumed, true, star, thetas, prior, task.beta, task.device)
    return [{"class": task.cls, "beta": task.beta, "trial": i, **Effects(task.cls, *map(float, e)).as_dict()}
            for i, e in enumerate(effects)]


METRICS = ("d_p_true", "d_entropy", "d_regret")


def summarise_sweep(rows: list[dict], z: float = 2.0) -> list[dict]:
    """Mean and standard error of each effect per (class, beta), the confidently-wrong rate and a verdict:
    harmful / helpful when P(theta*) or regret moves by more than z standard errors, neutral otherwise."""
    out = []
    for key in dict.fromkeys((r["class"], r["beta"]) for r in rows):
        cell = [r for r in rows if (r["class"], r["beta"]) == key]
        stats = {"class": key[0], "beta": key[1], "trials": len(cell)}
        for m in METRICS:
            x = np.array([r[m] for r in cell])
            stats[m] = float(x.mean())
            stats[m + "_se"] = float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")
        stats["confidently_wrong_rate"] = float(np.mean([r["confidently_wrong"] for r in cell]))
        stats["verdict"] = verdict(stats, z)
        out.append(stats)
    return out


def verdict(stats: dict, z: float = 2.0) -> str:
    worse = stats["d_p_true"] + z * stats["d_p_true_se"] < 0 or stats["d_regret"] - z * stats["d_regret_se"] > 0
    better = stats["d_p_true"] - z * stats["d_p_true_se"] > 0 or stats["d_regret"] + z * stats["d_regret_se"] < 0
    return "mixed" if worse and better else "harmful" if worse else "helpful" if better else "neutral"
