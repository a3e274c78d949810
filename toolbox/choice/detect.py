"""Beyond the paper [R]: detecting and bounding choice-set misspecification from the observed choices alone.

- Posterior-predictive check: draw theta from the posterior, replicate every choice from its assumed set, and compare
  the log-likelihood of the observed choices with that of the replicas (mid-p value; small = the observed choices
  are atypical for the assumed set).
- Robustness report over a family of plausible true sets (generic: the assumed set with up to k options removed or
  added, chosen options always kept; gridworlds: the human believes up to k cells are blocked): how far the
  posterior moves (total variation), whether the robot's choice changes, and the max-min robust choice
  argmax_c min_F E_{b_F}[theta].phi(c) (in the spirit of Jonnavittula & Losey's advice to hedge against the
  human's real set).
- Choice-set evidence: the marginal likelihood of the choices under each plausible set (Bayes factor against the
  assumed set); the assumed set's posterior probability among them flags a set the choices contradict.
"""
from __future__ import annotations

from itertools import combinations

import numpy as np
from scipy.special import logsumexp

from toolbox.choice.model import (ChoiceProblem, Observation, choice_logprobs, entropy, log_evidence, posterior,
                                   robot_choice)


def posterior_predictive_pvalue(problem: ChoiceProblem, observations: list[Observation], belief: np.ndarray,
                                rng: np.random.Generator, draws: int = 2000) -> float:
    """P(T_rep < T_obs) + P(T_rep = T_obs) / 2 with T = sum_i log P(c_i | theta, C_i u {c_i}), theta ~ belief."""
    if not observations:
        return float("nan")
    util = problem.utilities()
    ks = rng.choice(len(belief), size=draws, p=belief)
    t_obs = np.zeros(draws)
    t_rep = np.zeros(draws)
    for obs in observations:
        cset = np.asarray(obs.choice_set, dtype=bool).copy()
        cset[obs.choice] = True
        logp = choice_logprobs(util, cset)[ks]  # [draws, n]
        t_obs += logp[:, obs.choice]
        cdf = np.cumsum(np.exp(logp), axis=1)
        replica = np.minimum((cdf < rng.random(draws)[:, None] * cdf[:, -1:]).sum(axis=1), cdf.shape[1] - 1)
        t_rep += logp[np.arange(draws), replica]
    close = np.isclose(t_rep, t_obs, rtol=0, atol=1e-9)
    return float(np.mean((t_rep < t_obs) & ~close) + 0.5 * np.mean(close))


def plausible_sets(assumed: np.ndarray, keep: np.ndarray, changes: int, rng: np.random.Generator,
                   max_sets: int = 200, names: list[str] | None = None) -> list[tuple[str, np.ndarray]]:
    """(label, mask) for the assumed set with up to `changes` options removed (never those in `keep`) or added;
    a seeded sample of max_sets members when there are more."""
    removable = np.flatnonzero(assumed & ~keep)
    addable = np.flatnonzero(~assumed)
    family = []
    for k in range(1, changes + 1):
        for kind, pool in (("-", removable), ("+", addable)):
            for combo in combinations(pool.tolist(), k):
                mask = assumed.copy()
                mask[list(combo)] = kind == "+"
                family.append((kind, combo, mask))
    if len(family) > max_sets:
        family = [family[i] for i in sorted(rng.choice(len(family), size=max_sets, replace=False))]
    names = names or [str(i) for i in range(len(assumed))]
    return [(kind + ",".join(names[i] for i in combo), mask) for kind, combo, mask in family]


def robustness_report(problem: ChoiceProblem, observations: list[Observation], assumed: np.ndarray,
                      family: list[tuple[str, np.ndarray]], flag_below: float = 0.05) -> dict:
    """How the posterior and the robot's choice move when the human's true set is any member of `family`
    (label, mask) instead of the assumed set (observations made in the assumed set are re-evaluated in each), and
    how well each set explains the choices: the Bayes factor against the assumed set and the assumed set's
    posterior probability against the family (prior 1/2 : 1/2; flagged below `flag_below`)."""
    base = posterior(problem, observations)
    base_evidence = log_evidence(problem, observations)
    base_choice = int(robot_choice(problem.features, problem.thetas, base))
    members, beliefs = [], [base]
    for label, mask in family:
        moved = [Observation(o.choice, mask) if np.array_equal(o.choice_set, assumed) else o for o in observations]
        b = posterior(problem, moved)
        beliefs.append(b)
        members.append({"set": label, "size": int(mask.sum()),
                        "log_bayes_factor": log_evidence(problem, moved) - base_evidence,
                        "tv_from_assumed": 0.5 * float(np.abs(b - base).sum()), "entropy": float(entropy(b)),
                        "map_theta": int(np.argmax(b)),
                        "robot_choice": problem.names[int(robot_choice(problem.features, problem.thetas, b))]})
    expected = np.array(beliefs) @ problem.thetas @ problem.features.T  # [family + 1, n] E_b[reward] per option
    robust = int(np.argmax(expected.min(axis=0)))
    log_bf = np.array([0.0] + [m["log_bayes_factor"] for m in members])
    best = int(np.argmax(log_bf))
    # prior 1/2 on the assumed set, 1/2 spread evenly over the family: posterior odds = mean Bayes factor, which
    # has mean 1 when the assumed set is right, so P(p_assumed < a) <= a / (1 - a) under it (Markov)
    mean_bf = float(np.exp(logsumexp(log_bf[1:]) - np.log(len(members)))) if members else 0.0
    p_assumed = 1.0 / (1.0 + mean_bf)
    return {
        "family_size": len(members),
        "p_assumed_set": p_assumed,
        "misspecification_suspected": p_assumed < flag_below,
        "best_supported_set": "assumed" if best == 0 else members[best - 1]["set"],
        "max_log_bayes_factor": float(log_bf.max()),
        "assumed_robot_choice": problem.names[base_choice],
        "robust_choice": problem.names[robust],
        "worst_case_tv": max((m["tv_from_assumed"] for m in members), default=0.0),
        "choice_stable_fraction": float(np.mean([m["robot_choice"] == problem.names[base_choice] for m in members]))
        if members else 1.0,
        "members": members,
    }


def chosen_mask(n_options: int, observations: list[Observation]) -> np.ndarray:
    keep = np.zeros(n_options, dtype=bool)
    keep[[o.choice for o in observations]] = True
    return keep
