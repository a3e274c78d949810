"""Running agents on environments: exact regret per episode, the entropy-production ledger, the DeepSea score.

Regret of episode k is V*(s0) - V^{pi_k}(s0), both computed exactly on the true MDP (no sampling noise); the
episode itself is sampled with pi_k and fed to the agent. The ledger is kept on a posterior of the agent's own
data (the same prior for every agent), so it measures what each agent's behaviour has taught it.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy import stats

from toolbox.core.rng import numpy_generator
from toolbox.shaping import native
from toolbox.shaping.agents import make_agent
from toolbox.shaping.dirichlet import Posterior, policy_entropy
from toolbox.shaping.envs import deepsea_bad_episode, make_env, sample_episode

LEDGER_KEYS = ("epistemic_total", "reward_epistemic_total", "aleatoric_mean", "predictive_mean", "policy_entropy",
               "second_law_gap")


@dataclasses.dataclass(frozen=True)
class Task:
    """One run: an agent spec on an environment for some episodes with one seed (a picklable executor task)."""

    env: str
    agent: str
    seed: int
    episodes: int
    prior_mass: float = 1.0
    ledger: bool = True
    ledger_temperature: float = 0.1


def run_task(task: Task) -> dict:
    """Per-episode arrays (regret, return, bad, ledger terms) and the final per-(s,a) ledger maps of one run."""
    mdp = make_env(task.env, seed=task.seed)
    S, A, H = mdp.n_states, mdp.n_actions, mdp.horizon
    agent = make_agent(task.agent, S, A, H, task.episodes, numpy_generator(task.seed, 1), task.prior_mass)
    env_rng = numpy_generator(task.seed, 2)
    v_star = float(native.backward_induction(mdp.R, mdp.P, H)[1][0] @ mdp.start)
    T_ref = task.ledger_temperature
    uniform = np.full((S, A), 1.0 / A)
    f_star = -float(native.backward_induction(mdp.R, mdp.P, H, T_ref, uniform)[1][0] @ mdp.start)
    data = Posterior(S, A, task.prior_mass)
    K = task.episodes
    out = {k: np.zeros(K) for k in ("regret", "return", "bad", *(LEDGER_KEYS if task.ledger else ()))}
    for k in range(K):
        policy = agent.plan()
        out["regret"][k] = v_star - native.policy_evaluation(mdp.R, mdp.P, policy)[0] @ mdp.start
        episode = sample_episode(mdp, policy, env_rng)
        out["return"][k] = episode["rewards"].sum()
        if mdp.right_action is not None:
            out["bad"][k] = deepsea_bad_episode(mdp, episode)
        agent.observe(episode)
        if task.ledger:
            data.update(episode["states"], episode["actions"], episode["rewards"], episode["next_states"])
            ledger = data.ledger()
            out["epistemic_total"][k] = ledger["epistemic"].sum()
            out["reward_epistemic_total"][k] = ledger["reward_epistemic"].sum()
            out["aleatoric_mean"][k] = ledger["aleatoric"].mean()
            out["predictive_mean"][k] = ledger["predictive"].mean()
            out["policy_entropy"][k] = policy_entropy(policy[np.arange(H), episode["states"]]).mean()
            work = -native.policy_evaluation(mdp.R, mdp.P, policy, T_ref, uniform)[0] @ mdp.start
            out["second_law_gap"][k] = work - f_star
    result = {"env": task.env, "agent": task.agent, "seed": task.seed, "v_star": v_star, "free_energy": f_star,
              **out}
    if task.ledger:
        result["ledger_map"] = {k: v for k, v in data.ledger().items()}
        result["visits"] = data.visits
    return result


def mean_ci(x: np.ndarray, axis: int = 0, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Mean and half-width of the Student-t confidence interval across `axis` (0 when there is one sample)."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[axis]
    mean = x.mean(axis)
    if n < 2:
        return mean, np.zeros_like(mean)
    half = stats.t.ppf(0.5 + level / 2, n - 1) * x.std(axis, ddof=1) / np.sqrt(n)
    return mean, half


def deepsea_solution(bad: np.ndarray, size: int, thresh: float = 0.8, forgiveness: float = 100.0) -> dict:
    """bsuite's deep_sea analysis on one run: the first episode (1-based) where the running share of bad episodes
    falls below thresh (solved), and whether that episode is < 2^N + forgiveness (beats dithering: the score)."""
    episode = np.arange(1, len(bad) + 1)
    below = np.flatnonzero(np.cumsum(bad) / episode < thresh)
    first = int(episode[below[0]]) if below.size else None
    return {"size": size, "first_episode": first, "episodes_run": int(len(bad)),
            "final_bad_share": float(np.mean(bad)) if len(bad) else None,
            "solved": first is not None, "beats_dithering": first is not None and first < 2 ** size + forgiveness}


def deepsea_episodes(size: int, cap: int, forgiveness: int = 100) -> int:
    """Episodes needed to decide the score for one size: the 2^N + forgiveness deadline (at most cap)."""
    return int(min(cap, 2 ** size + forgiveness))
