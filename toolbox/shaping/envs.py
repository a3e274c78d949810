"""Spec-pinned tabular environments (notes A3), built as exact TabularMDPs, and an episode sampler.

Names accepted by `make_env`: riverswim, sixarms, chain-L, deepsea-N, deepsea-stochastic-N, random-SxA.
All rewards lie in [0, 1] (SixArms is divided by its largest reward, 6000) so the optimism-based baselines apply.
"""
from __future__ import annotations

import re

import numpy as np

from toolbox.core.errors import UserInputError
from toolbox.core.rng import numpy_generator
from toolbox.shaping.mdp import TabularMDP

LEFT, RIGHT = 0, 1


def riverswim(n_states: int = 6, horizon: int = 20) -> TabularMDP:
    """RiverSwim (Strehl & Littman 2008) in the PSRL variant (Osband et al. 2013): r(0, left) = 0.005,
    r(N-1, right) = 1; swimming right moves right / stays / drifts left with (.6, .4, 0) at the bottom,
    (.35, .6, .05) in the middle and (0, .6, .4) at the top; left always moves left. Start in state 0."""
    S = n_states
    P = np.zeros((S, 2, S))
    R = np.zeros((S, 2))
    for s in range(S):
        P[s, LEFT, max(s - 1, 0)] = 1.0
        if s == 0:
            P[s, RIGHT, [0, 1]] = (0.4, 0.6)
        elif s == S - 1:
            P[s, RIGHT, [s - 1, s]] = (0.4, 0.6)
        else:
            P[s, RIGHT, [s - 1, s, s + 1]] = (0.05, 0.6, 0.35)
    R[0, LEFT] = 0.005
    R[S - 1, RIGHT] = 1.0
    return TabularMDP("riverswim", P, R, horizon, np.eye(S)[0]).validate()


def sixarms(horizon: int = 20) -> TabularMDP:
    """SixArms (Strehl & Littman 2008): from the hub (state 0) arm i reaches room i with probability
    (1, .15, .1, .05, .03, .01)[i-1], else stays; in room i one action keeps the agent there with reward
    (50, 133, 300, 800, 1660, 6000)[i-1] (room 1: every action but 4; room i >= 2: action i-1), the others
    return to the hub. Rewards divided by 6000."""
    success = np.array([1.0, 0.15, 0.1, 0.05, 0.03, 0.01])
    payoff = np.array([50, 133, 300, 800, 1660, 6000]) / 6000.0
    P = np.zeros((7, 6, 7))
    R = np.zeros((7, 6))
    for a in range(6):
        P[0, a, a + 1] += success[a]
        P[0, a, 0] += 1 - success[a]
    for room in range(1, 7):
        stays = [a for a in range(6) if a != 4] if room == 1 else [room - 1]
        for a in range(6):
            if a in stays:
                P[room, a, room] = 1.0
                R[room, a] = payoff[room - 1]
            else:
                P[room, a, 0] = 1.0
    return TabularMDP("sixarms", P, R, horizon, np.eye(7)[0]).validate()


def chain(length: int = 10, fail_prob: float = 0.1, horizon: int | None = None) -> TabularMDP:
    """Chain(L, fail_prob) after rlberry's finite Chain (reconstructed): action 1 moves right, 0 moves left, each
    does the opposite with probability fail_prob; reward 0.05 in state 0 and 1 in state L-1 (any action)."""
    L = length
    if L < 2 or not 0 <= fail_prob < 1:
        raise UserInputError("chain needs length >= 2 and 0 <= fail_prob < 1")
    P = np.zeros((L, 2, L))
    for s in range(L):
        left, right = max(s - 1, 0), min(s + 1, L - 1)
        P[s, RIGHT, right] += 1 - fail_prob
        P[s, RIGHT, left] += fail_prob
        P[s, LEFT, left] += 1 - fail_prob
        P[s, LEFT, right] += fail_prob
    R = np.zeros((L, 2))
    R[0] = 0.05
    R[L - 1] = 1.0
    return TabularMDP(f"chain-{L}", P, R, horizon or 2 * L, np.eye(L)[0]).validate()


def deepsea(size: int, deterministic: bool = True, move_cost: float = 0.01, mapping_seed: int = 0,
            randomize_actions: bool = True) -> TabularMDP:
    """bsuite DeepSea: an N x N grid, row += 1 each step (horizon N); 'right' costs move_cost/N and moves
    right (with probability 1 - 1/N when stochastic, else the column stays), 'left' moves left; 'right' in the
    last column pays +1; the stochastic version adds N(0, 1) noise at the two end cells of the last row. The
    action meaning 'right' is drawn per cell (Bernoulli(1/2), as bsuite). State row*N + col; N*N is the end."""
    N = size
    if N < 2:
        raise UserInputError("deepsea needs size >= 2")
    right = numpy_generator(mapping_seed, 7).integers(0, 2, (N, N)) if randomize_actions else np.ones((N, N), int)
    S = N * N + 1
    end = N * N
    P = np.zeros((S, 2, S))
    R = np.zeros((S, 2))
    noise = np.zeros((S, 2))
    p_right = 1.0 if deterministic else 1.0 - 1.0 / N
    for row in range(N):
        for col in range(N):
            s = row * N + col
            below = (row + 1) * N  # first cell of the next row
            r_a = right[row, col]
            l_a = 1 - r_a
            if row == N - 1:
                P[s, :, end] = 1.0
            else:
                P[s, r_a, below + min(col + 1, N - 1)] += p_right
                P[s, r_a, below + col] += 1.0 - p_right  # a failed 'right' keeps the column
                P[s, l_a, below + max(col - 1, 0)] += 1.0
            R[s, r_a] = (1.0 if col == N - 1 else 0.0) - move_cost / N
            if not deterministic and row == N - 1 and col in (0, N - 1):
                noise[s] = 1.0
    P[end, :, end] = 1.0
    name = f"deepsea-{N}" if deterministic else f"deepsea-stochastic-{N}"
    return TabularMDP(name, P, R, N, np.eye(S)[0], None if deterministic else noise,
                      right_action=right).validate()


def random_mdp(n_states: int = 10, n_actions: int = 3, horizon: int = 10, seed: int = 0) -> TabularMDP:
    """P(.|s,a) ~ Dirichlet(1, ..., 1), R ~ U[0, 1], start in state 0."""
    gen = numpy_generator(seed, 11)
    P = gen.dirichlet(np.ones(n_states), size=(n_states, n_actions))
    R = gen.random((n_states, n_actions))
    return TabularMDP(f"random-{n_states}x{n_actions}", P, R, horizon, np.eye(n_states)[0]).validate()


ENV_NAMES = "riverswim, sixarms, chain-L, deepsea-N, deepsea-stochastic-N, random-SxA"


def env_size(name: str) -> tuple[int, int, int]:
    """(states, actions, horizon) of an environment from its name alone, without building it (cost guards)."""
    fixed = {"riverswim": riverswim, "sixarms": sixarms}
    if name in fixed:
        mdp = fixed[name]()
        return mdp.n_states, mdp.n_actions, mdp.horizon
    if m := re.fullmatch(r"chain-(\d+)", name):
        return int(m[1]), 2, int(m[1]) + 9  # a generous horizon bound; the chain itself is tiny
    if m := re.fullmatch(r"deepsea-(stochastic-)?(\d+)", name):
        return int(m[2]) ** 2 + 1, 2, int(m[2])
    if m := re.fullmatch(r"random-(\d+)x(\d+)", name):
        return int(m[1]), int(m[2]), int(m[1])
    raise UserInputError(f"unknown environment {name!r}; known: {ENV_NAMES}")


def make_env(name: str, seed: int = 0) -> TabularMDP:
    """An environment by name; seed fixes DeepSea's action mapping and a random MDP's draw."""
    if name == "riverswim":
        return riverswim()
    if name == "sixarms":
        return sixarms()
    if m := re.fullmatch(r"chain-(\d+)", name):
        return chain(int(m[1]))
    if m := re.fullmatch(r"deepsea-(stochastic-)?(\d+)", name):
        return deepsea(int(m[2]), deterministic=m[1] is None, mapping_seed=seed)
    if m := re.fullmatch(r"random-(\d+)x(\d+)", name):
        return random_mdp(int(m[1]), int(m[2]), seed=seed)
    raise UserInputError(f"unknown environment {name!r}; known: {ENV_NAMES}")


def sample_episode(mdp: TabularMDP, policy: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One episode under a time-indexed policy [H, S, A]: states, actions, rewards, next_states (each [H])."""
    H = mdp.horizon
    cum_P = np.cumsum(mdp.P, axis=-1)
    cum_pi = np.cumsum(policy, axis=-1)
    u = rng.random((H, 3))
    states, actions, next_states = (np.empty(H, dtype=np.int64) for _ in range(3))
    s = int(np.cumsum(mdp.start).searchsorted(u[0, 0] * mdp.start.sum(), side="right"))
    for h in range(H):
        a = min(int(cum_pi[h, s].searchsorted(u[h, 1] * cum_pi[h, s, -1], side="right")), mdp.n_actions - 1)
        s2 = min(int(cum_P[s, a].searchsorted(u[h, 2] * cum_P[s, a, -1], side="right")), mdp.n_states - 1)
        states[h], actions[h], next_states[h] = s, a, s2
        s = s2
    rewards = mdp.R[states, actions]
    if mdp.reward_noise is not None:
        rewards = rewards + mdp.reward_noise[states, actions] * rng.standard_normal(H)
    return {"states": states, "actions": actions, "rewards": rewards, "next_states": next_states}


def deepsea_bad_episode(mdp: TabularMDP, episode: dict[str, np.ndarray]) -> bool:
    """bsuite's 'bad episode': a 'left' move taken while on the diagonal (row == column), i.e. off the optimum."""
    N = mdp.right_action.shape[0]
    row, col = np.divmod(episode["states"], N)
    on_diag = (row == col) & (episode["states"] < N * N)
    went_left = episode["actions"] != mdp.right_action[np.minimum(row, N - 1), np.minimum(col, N - 1)]
    return bool((on_diag & went_left).any())
