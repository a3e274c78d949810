"""Choice-set misspecification: the class of an (assumed set, true set, true reward) triple and its exact effects.

Classes (rewards.md B3; letters as in the paper, digit numbering [R]): the set relation
    A: C_R strict subset of C_H,  B: C_R strict superset of C_H,  C: overlap without containment,  D: disjoint,
crossed with where the truly best option c* = argmax_{C_R u C_H} theta*.phi lies:
    1: in C_R n C_H,  2: only in C_H,  3: only in C_R.
Feasible: A1 A2 B1 B3 C1 C2 C3 D2 D3. Ties for c* are resolved toward the intersection, then toward C_H [R].

Effects are exact expectations over the human's Boltzmann choice c ~ P(. | theta*, C_H), compared with the correctly
specified robot (C_R = C_H): change in posterior mass on theta*, in posterior entropy, and in the regret of the
robot's resulting choice argmax_c E_b[theta].phi(c) over the whole universe.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import logsumexp

from toolbox.choice.model import ChoiceProblem, choice_logprobs, entropy, unit_directions
from toolbox.core.errors import UserInputError

CLASSES = ("A1", "A2", "B1", "B3", "C1", "C2", "C3", "D2", "D3")
_ALLOWED_REGIONS = {"A": (0, 1, 3), "B": (0, 1, 2), "C": (0, 1, 2, 3), "D": (0, 2, 3)}  # 0 neither, 1 both,
_REQUIRED_REGIONS = {"A": (1, 3), "B": (1, 2), "C": (1, 2, 3), "D": (2, 3)}              # 2 R only, 3 H only


def classify(assumed: np.ndarray, true: np.ndarray, rewards: np.ndarray) -> str:
    """Class label A1..D3 of an assumed set C_R and true set C_H (masks) under true rewards; 'exact' if equal."""
    assumed, true = np.asarray(assumed, dtype=bool), np.asarray(true, dtype=bool)
    if not assumed.any() or not true.any():
        raise UserInputError("choice sets must not be empty")
    if np.array_equal(assumed, true):
        return "exact"
    both, r_only, h_only = assumed & true, assumed & ~true, true & ~assumed
    letter = "A" if not r_only.any() else "B" if not h_only.any() else "D" if not both.any() else "C"
    union = assumed | true
    best = union & np.isclose(rewards, rewards[union].max(), rtol=0, atol=1e-12)
    digit = "1" if (best & both).any() else "2" if (best & h_only).any() else "3"
    return letter + digit


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


def _expected_outcome(problem: ChoiceProblem, utilities, robot_set, choices, weights, star, unique_features):
    with np.errstate(divide="ignore"):
        log_prior = np.log(problem.prior)
    post = posteriors_per_choice(utilities, log_prior, robot_set, choices)  # [K, m]
    theta_star = problem.thetas[star]
    mean_theta = post.T @ problem.thetas  # [m, d]
    picked = unique_features[np.argmax(mean_theta @ unique_features.T, axis=1)]  # the robot's choice per c
    regrets = (unique_features @ theta_star).max() - picked @ theta_star
    return (float(weights @ post[star]), float(weights @ entropy(post, axis=0)), float(weights @ regrets))


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
    unique_features = np.unique(problem.features, axis=0)
    mis = _expected_outcome(problem, utilities, assumed, choices, weights, star, unique_features)
    cor = _expected_outcome(problem, utilities, true, choices, weights, star, unique_features)
    return Effects(cls, mis[0], cor[0], mis[1], cor[1], mis[2], cor[2])


def sample_instance(rng: np.random.Generator, cls: str, n: int, d: int, thetas: np.ndarray, max_tries: int = 10_000):
    """A random (features [n, d], C_R, C_H, star) realising class `cls` (rewards.md B4): Gaussian features,
    each option placed in C_R only / C_H only / both / neither as the letter allows, theta* uniform on the grid;
    redrawn until the triple has class `cls`."""
    if cls not in CLASSES:
        raise UserInputError(f"unknown class {cls!r}; known: {', '.join(CLASSES)}")
    letter = cls[0]
    allowed = np.array(_ALLOWED_REGIONS[letter])
    for _ in range(max_tries):
        regions = rng.choice(allowed, size=n)
        if not all((regions == r).any() for r in _REQUIRED_REGIONS[letter]):
            continue
        features = rng.standard_normal((n, d))
        star = int(rng.integers(len(thetas)))
        assumed, true = np.isin(regions, (1, 2)), np.isin(regions, (1, 3))
        if classify(assumed, true, features @ thetas[star]) == cls:
            return features, assumed, true, star
    raise RuntimeError(f"could not realise class {cls} with {n} options in {max_tries} draws")


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


def run_sweep_task(task: SweepTask) -> list[dict]:
    """Per-trial exact effects for one (class, beta) cell; a pure function of the task (any executor backend)."""
    from toolbox.core.rng import numpy_generator

    rng = numpy_generator(task.seed, CLASSES.index(task.cls), int(round(task.beta * 1000)))
    thetas = unit_directions(task.d, task.k, seed=task.seed)
    prior = np.full(len(thetas), 1.0 / len(thetas))
    rows = []
    for trial in range(task.trials):
        features, assumed, true, star = sample_instance(rng, task.cls, task.n_options, task.d, thetas)
        problem = ChoiceProblem(features, thetas, prior, task.beta)
        eff = misspecification_effects(problem, assumed, true, star)
        rows.append({"class": task.cls, "beta": task.beta, "trial": trial, **eff.as_dict()})
    return rows


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
