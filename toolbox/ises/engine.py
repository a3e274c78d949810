"""The ISES information-set engine: native C++ kernels (toolbox._core) with a pure numpy reference for each.

A feedback table is uint8 [actions, secrets] with entry f(a, s) < n_outcomes. An information set is an int32 array
of secret indices. `partition_scores` splits it by every candidate action's feedback and returns the expected
entropy reduction E[dH](a) = H(I) - sum_o P(o|a) H(I_o) = -sum_o P(o|a) log2 P(o|a) (note section 1.2, eqs. 1-3),
the largest class (Knuth's minimax score) and the number of classes. `TOOLBOX_KERNELS=reference` forces numpy.
"""
from __future__ import annotations

import numpy as np

from toolbox.core import native, rng
from toolbox.core.dispatch import use_native

_CHUNK = 1 << 22  # table entries per numpy chunk in the references


def _core():
    return native.module() if use_native() else None


def _as_i32(x) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.int32)


# --- feedback tables -----------------------------------------------------------------------------------------

def mastermind_table(guesses: np.ndarray, secrets: np.ndarray, colors: int) -> np.ndarray:
    """Mastermind feedback black * (pegs + 1) + white, uint8 [G, S] (Bulls and Cows: bulls and cows)."""
    core = _core()
    g, s = np.ascontiguousarray(guesses, np.uint8), np.ascontiguousarray(secrets, np.uint8)
    if core is not None:
        return core.ises_mastermind_table(g, s, int(colors))
    return mastermind_table_reference(g, s, colors)


def mastermind_table_reference(guesses: np.ndarray, secrets: np.ndarray, colors: int) -> np.ndarray:
    pegs = guesses.shape[1]
    sc = np.stack([(secrets == c).sum(1) for c in range(colors)], 1)
    gc = np.stack([(guesses == c).sum(1) for c in range(colors)], 1)
    out = np.empty((len(guesses), len(secrets)), np.uint8)
    step = max(1, _CHUNK // max(1, len(secrets) * colors))
    for i in range(0, len(guesses), step):
        g = guesses[i:i + step]
        black = (g[:, None, :] == secrets[None, :, :]).sum(-1)
        common = np.minimum(gc[i:i + step, None, :], sc[None, :, :]).sum(-1)
        out[i:i + step] = black * (pegs + 1) + common - black
    return out


def wordle_table(guesses: np.ndarray, secrets: np.ndarray) -> np.ndarray:
    """Wordle feedback, uint8 [G, S]: base-3 digits (2 green, 1 yellow, 0 grey), first letter most significant."""
    core = _core()
    g, s = np.ascontiguousarray(guesses, np.uint8), np.ascontiguousarray(secrets, np.uint8)
    if core is not None:
        return core.ises_wordle_table(g, s)
    return wordle_table_reference(g, s)


def wordle_table_reference(guesses: np.ndarray, secrets: np.ndarray) -> np.ndarray:
    length = guesses.shape[1]
    out = np.empty((len(guesses), len(secrets)), np.uint8)
    onehot = np.eye(26, dtype=np.int8)[secrets]  # [S, L, 26]
    step = max(1, _CHUNK // max(1, len(secrets) * 26))
    for i in range(0, len(guesses), step):
        g = guesses[i:i + step]
        k, n = len(g), len(secrets)
        green = g[:, None, :] == secrets[None, :, :]  # [k, S, L]
        left = (onehot[None] * ~green[..., None]).sum(2).astype(np.int8)  # unmatched answer letters [k, S, 26]
        digits = np.where(green, 2, 0)
        rows, cols = np.arange(k)[:, None], np.arange(n)[None, :]
        for p in range(length):  # yellows left to right, each consuming one unmatched letter
            letter = np.broadcast_to(g[:, p][:, None], (k, n))
            yellow = ~green[:, :, p] & (left[rows, cols, letter] > 0)
            digits[:, :, p] = np.where(yellow, 1, digits[:, :, p])
            left[rows, cols, letter] -= yellow.astype(np.int8)
        out[i:i + step] = (digits * 3 ** np.arange(length - 1, -1, -1)).sum(-1)
    return out


# --- information-set kernels ---------------------------------------------------------------------------------

def partition_scores(table: np.ndarray, cand, actions, n_outcomes: int, weights: np.ndarray | None = None):
    """(E[dH] in bits, largest class, number of classes) of each action over the information set `cand`."""
    core = _core()
    cand, actions = _as_i32(cand), _as_i32(actions)
    if core is not None:
        w = None if weights is None else np.ascontiguousarray(weights, np.float64)
        return core.ises_partition_scores(table, cand, actions, int(n_outcomes), w)
    return partition_scores_reference(table, cand, actions, n_outcomes, weights)


def partition_scores_reference(table, cand, actions, n_outcomes, weights=None):
    cand, actions = np.asarray(cand, np.int64), np.asarray(actions, np.int64)
    n, k = len(cand), len(actions)
    if weights is not None:
        w = np.asarray(weights, np.float64)
        if not (np.isfinite(w).all() and (w >= 0).all()) or (n and w[cand].sum() <= 0):
            raise ValueError("weights must be finite, >= 0 and give the information set positive mass")
    gain, biggest, classes = np.zeros(k), np.zeros(k, np.int64), np.zeros(k, np.int32)
    step = max(1, _CHUNK // max(1, n))
    for i in range(0, k, step):
        sub = table[actions[i:i + step]][:, cand].astype(np.int64)  # [chunk, n] outcome codes
        if (sub >= n_outcomes).any():
            raise ValueError("table: an outcome code >= n_outcomes")
        rows = len(sub)
        flat = (sub + n_outcomes * np.arange(rows)[:, None]).ravel()
        counts = np.bincount(flat, minlength=rows * n_outcomes).reshape(rows, n_outcomes)
        biggest[i:i + rows] = counts.max(1)
        classes[i:i + rows] = (counts > 0).sum(1)
        if weights is None:
            c = counts.astype(np.float64)
            xlogx = np.where(c > 1, c * np.log2(np.maximum(c, 1)), 0.0)
            gain[i:i + rows] = np.log2(n) - xlogx.sum(1) / n if n else 0.0
        else:
            w = np.broadcast_to(np.asarray(weights, np.float64)[cand], sub.shape).ravel()
            mass = np.bincount(flat, weights=w, minlength=rows * n_outcomes).reshape(rows, n_outcomes)
            p = mass / mass.sum(1, keepdims=True)
            gain[i:i + rows] = -np.where(p > 0, p * np.log2(np.where(p > 0, p, 1)), 0.0).sum(1)
    return gain, biggest, classes


def filter_set(table: np.ndarray, cand, action: int, outcome: int) -> np.ndarray:
    """I_o(a): the secrets of `cand` whose feedback to `action` is `outcome`."""
    core = _core()
    cand = _as_i32(cand)
    if core is not None:
        return core.ises_filter(table, cand, int(action), int(outcome))
    return filter_set_reference(table, cand, action, outcome)


def filter_set_reference(table, cand, action, outcome) -> np.ndarray:
    if not 0 <= outcome <= 255:
        raise ValueError("outcome must be a uint8 code in [0, 255]")
    cand = _as_i32(cand)
    return cand[table[action, cand] == outcome]


def sample_states(cand, m: int, seed: int, stream: int, counter: int) -> np.ndarray:
    """m secrets drawn uniformly with replacement from `cand` by Philox (sampled ISES, note section 1.3)."""
    core = _core()
    cand = _as_i32(cand)
    if core is not None:
        return core.ises_sample_states(cand, int(m), int(seed), int(stream), int(counter))
    return sample_states_reference(cand, m, seed, stream, counter)


def sample_states_reference(cand, m, seed, stream, counter) -> np.ndarray:
    cand = _as_i32(cand)
    u = rng.philox_uniform(seed, stream, int(m), a0=0, b=int(counter))
    return cand[np.minimum(len(cand) - 1, (u * len(cand)).astype(np.int64))]


def sample_states_weighted(cand, weights: np.ndarray, m: int, seed: int, stream: int, counter: int) -> np.ndarray:
    """m secrets drawn with replacement from `cand` with probability p(s | I) (the prior restricted to I and
    renormalised), by inverting its CDF at Philox uniforms."""
    cand = _as_i32(cand)
    cdf = np.cumsum(np.asarray(weights, np.float64)[cand])
    u = rng.philox_uniform(seed, stream, int(m), a0=0, b=int(counter))
    return cand[np.minimum(len(cand) - 1, np.searchsorted(cdf, u * cdf[-1], side="right"))]


def entropy_bits(cand, weights: np.ndarray | None = None) -> float:
    """H(I): log2 |I| under a uniform prior, else the Shannon entropy of the renormalised prior on I."""
    if weights is None:
        return float(np.log2(len(cand))) if len(cand) else 0.0
    p = np.asarray(weights, np.float64)[np.asarray(cand)]
    p = p[p > 0] / p.sum()
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0: no -0.0 for a single secret


# --- the generator SO-ISMCTS shares with its C++ twin ----------------------------------------------------------

_MASK64 = (1 << 64) - 1


def _mix64(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


class SplitMix64:
    """SplitMix64 (Steele, Lea & Flood 2014), bit for bit the generator of csrc/include/toolbox/ises_ismcts.h, so
    that SO-ISMCTS in Python and in C++ make the same draws: the state advances by 0x9E3779B97F4A7C15 and each
    output is mix(state); seeded from (seed, stream, counter) as mix(mix(mix(seed) ^ stream) ^ counter).
    `below(n)` is exact (outputs under 2^64 mod n are rejected, the rest reduced mod n); `uniform()` takes the top
    53 bits."""

    __slots__ = ("state",)

    def __init__(self, seed: int, stream: int, counter: int):
        self.state = _mix64(_mix64(_mix64(int(seed) & _MASK64) ^ (int(stream) & _MASK64)) ^ (int(counter) & _MASK64))

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK64
        return _mix64(self.state)

    def below(self, n: int) -> int:
        threshold = (1 << 64) % n
        while True:
            x = self.next()
            if x >= threshold:
                return x % n

    def uniform(self) -> float:
        return (self.next() >> 11) * 2.0 ** -53


def so_ismcts_native(table: np.ndarray, cand, win: int, secret_action, twin_class, prior, seed: int, stream: int,
                     counter: int, budget_ms: float, iterations: int, c: float, consistent: bool, horizon: int,
                     evaluations: int = 0):
    """SO-ISMCTS in C++ (toolbox.ises.agents.SOISMCTS is its reference): (root actions in expansion order, visits,
    total rewards, iterations, feedback evaluations, fallback move or -1). `win` = -1 marks a query game;
    `evaluations` > 0 caps the feedback evaluations (the most whole iterations that fit, at least one)."""
    core = native.module()
    if core is None or not hasattr(core, "ises_so_ismcts"):
        raise RuntimeError("toolbox._core lacks ises_so_ismcts: rebuild the extension (scripts/dev_build.sh)")
    return core.ises_so_ismcts(table, _as_i32(cand), int(win), secret_action, twin_class, prior, int(seed),
                               int(stream), int(counter), float(budget_ms), int(iterations), float(c),
                               bool(consistent), int(horizon), int(evaluations))
