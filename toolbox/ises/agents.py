"""Agents for deduction games: ISES (exact, depth d), sampled / anytime ISES, SO-ISMCTS, minimax (Knuth),
random-consistent and the exact optimal solver.

Every agent sees a `State` (game, information set, history, legal actions, step, seed) and returns a `Decision`:
the action, its score, the best alternatives with their expected gain, and how many states and actions it
evaluated. Ties are broken as in note section 1.3: higher score, then an action that can win now (the guess of a
secret still in I), then the lowest action index.
"""
from __future__ import annotations

import bisect
import math
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from toolbox.core import native, rng
from toolbox.core.config import Count, NonNegFloat, PosInt, check_params, parse_spec
from toolbox.core.dispatch import use_native
from toolbox.core.errors import UserInputError
from toolbox.ises import engine
from toolbox.ises.games import Game, Wordle

TIE_TOL = 1e-9


@dataclass
class State:
    game: Game
    cand: np.ndarray                       # int32 secret indices consistent with the history
    history: list = field(default_factory=list)  # [(action, outcome), ...]
    step: int = 0
    seed: int = 0                          # per-episode seed (Philox key for sampling)

    @property
    def legal(self) -> np.ndarray:
        legal = self.game.legal_actions(self.history)
        return np.arange(self.game.n_actions, dtype=np.int32) if legal is None else legal


@dataclass
class Decision:
    action: int
    score: float = float("nan")           # E[dH] in bits (ISES) or the agent's own value
    alternatives: list = field(default_factory=list)  # [(action, E[dH]), ...] best first
    states_evaluated: int = 0
    actions_evaluated: int = 0
    info: dict = field(default_factory=dict)


def scores(game: Game, cand: np.ndarray, actions: np.ndarray, weighted: bool = True):
    """(E[dH], largest class, classes) of `actions` over `cand`: the tabulated fast path, or the game's
    vectorised feedback when the table is too large. Weighted by the game's prior (note section 1.1: P(o|a) =
    p(I_o) / p(I)) unless `weighted` is False (`cand` is then a sample already drawn from the prior)."""
    table, prior = game.table, game.prior if weighted else None
    if table is not None:
        return engine.partition_scores(table, cand, actions, game.n_outcomes, prior)
    sub = np.ascontiguousarray(game.feedback(actions, cand), np.uint8)
    weights = None if prior is None else np.ascontiguousarray(prior[cand])
    return engine.partition_scores(sub, np.arange(len(cand)), np.arange(len(actions)), game.n_outcomes, weights)


def split(game: Game, cand: np.ndarray, action: int, outcome: int) -> np.ndarray:
    if game.table is not None:
        return engine.filter_set(game.table, cand, action, outcome)
    codes = game.feedback(np.array([action]), cand)[0]
    return cand[codes == outcome]


def winning_mask(game: Game, cand: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Which of `actions` guess a secret still in I (guess games; all False in query games)."""
    if game.secret_action is None:
        return np.zeros(len(actions), bool)
    mark = np.zeros(game.n_actions, bool)
    mark[game.secret_action[cand]] = True
    return mark[actions]


def pick(values: np.ndarray, actions: np.ndarray, winning: np.ndarray) -> int:
    """Position of the best action: the largest value (within TIE_TOL), then winning now, then lowest index."""
    best = values.max()
    tied = np.flatnonzero(values >= best - TIE_TOL)
    won = tied[winning[tied]]
    pool = won if len(won) else tied
    return int(pool[np.argmin(actions[pool])])


def top_alternatives(gains: np.ndarray, actions: np.ndarray, winning: np.ndarray | None = None, k: int = 5) -> list:
    """The k best (action, value) pairs in the order of the tie-break rule."""
    rounded = np.round(gains / TIE_TOL) * TIE_TOL  # values within the tolerance count as tied
    wins = np.zeros(len(actions), bool) if winning is None else winning
    order = np.lexsort((actions, ~wins, -rounded))[:k]
    return [(int(actions[i]), float(gains[i])) for i in order]


# --- ISES -----------------------------------------------------------------------------------------------------

class ISES:
    """Information Set Entropy Search: play argmax_a E[dH](a) (eqs. 1-4 of note section 1.2). With depth d > 1,
    Q_d(a, I) = E[dH](a) + sum_o P(o|a) V_{d-1}(I_o) with V_d(I) = max_a Q_d(a, I) (section 1.3, reconstructed),
    evaluated for the `beam` best actions by E[dH] at every level."""

    name = "ises"
    deterministic = True

    def __init__(self, depth: PosInt = 1, beam: PosInt = 8):
        self.depth, self.beam = depth, beam

    def decide(self, state: State) -> Decision:
        game, cand, legal = state.game, state.cand, state.legal
        gains, _, _ = scores(game, cand, legal)
        winning = winning_mask(game, cand, legal)
        values = gains
        evaluated, evaluations = len(legal), len(legal) * len(cand)
        if self.depth > 1 and len(cand) > 2:
            top = np.lexsort((legal, -gains))[:self.beam]
            values = np.full(len(legal), -np.inf)
            for i in top:
                q, n, e = self._q(game, cand, int(legal[i]), float(gains[i]), self.depth, state.history)
                values[i] = q
                evaluated, evaluations = evaluated + n, evaluations + e
        i = pick(values, legal, winning)
        return Decision(int(legal[i]), float(values[i]), top_alternatives(values, legal, winning), len(cand), evaluated,
                        {"evaluations": evaluations})

    def _q(self, game, cand, action, gain, depth, history) -> tuple[float, int, int]:
        """Q_depth(action, I), the number of actions it scored and of feedback values f(a, s) it computed."""
        if depth <= 1:
            return gain, 0, 0
        codes = game.table[action, cand] if game.table is not None else game.feedback(np.array([action]), cand)[0]
        total, evaluated, evaluations = gain, 0, len(cand)
        for o in np.unique(codes):
            sub = cand[codes == o]
            if len(sub) <= 1:
                continue
            legal = game.legal_actions(history + [(action, int(o))])
            legal = np.arange(game.n_actions, dtype=np.int32) if legal is None else legal
            g, _, _ = scores(game, sub, legal)
            evaluated, evaluations = evaluated + len(legal), evaluations + len(legal) * len(sub)
            best = -np.inf
            for j in np.lexsort((legal, -g))[:self.beam if depth > 2 else 1]:
                q, n, e = self._q(game, sub, int(legal[j]), float(g[j]), depth - 1, history + [(action, int(o))])
                best, evaluated, evaluations = max(best, q), evaluated + n, evaluations + e
            total += game.mass(sub) / game.mass(cand) * best  # P(o|a)
        return total, evaluated, evaluations


class SampledISES:
    """Sampled, anytime ISES (note section 1.3): estimate P(o|a) from m secrets drawn from I with Philox (exact
    when |I| <= m), score at most k actions (those that can win now first, then a Philox-shuffled order),
    stop at the wall-clock budget and play the best so far. Miller-Madow correction (K-1)/(2m ln 2) optional.
    With a prior the m secrets are drawn from p(s | I) and the sample is scored unweighted."""

    name = "ises-sampled"
    deterministic = False

    def __init__(self, states: PosInt = 256, actions: Count = 0, budget_ms: NonNegFloat = 0.0,
                 miller_madow: bool = True, chunk: PosInt = 128):
        self.m, self.k, self.budget_ms, self.mm, self.chunk = states, actions, budget_ms, miller_madow, chunk

    def decide(self, state: State) -> Decision:
        start = time.perf_counter()
        game, cand, legal = state.game, state.cand, state.legal
        sampled = len(cand) > self.m
        if not sampled:
            sample = cand
        elif game.prior is None:
            sample = engine.sample_states(cand, self.m, state.seed, 1, state.step)
        else:
            sample = engine.sample_states_weighted(cand, game.prior, self.m, state.seed, 1, state.step)
        winning = winning_mask(game, cand, legal)
        shuffled = np.argsort(rng.philox_uniform(state.seed, 2, len(legal), b=state.step), kind="stable")
        order = np.concatenate([np.flatnonzero(winning)[:max(1, self.chunk // 2)], shuffled])
        order = order[np.sort(np.unique(order, return_index=True)[1])]  # first occurrence only
        if self.k:
            order = order[:self.k]
        gains = np.full(len(legal), -np.inf)
        done = 0
        while done < len(order):
            block = order[done:done + self.chunk]
            g, _, classes = scores(game, sample, legal[block], weighted=not sampled)
            if sampled and self.mm:
                g = g + (classes - 1) / (2 * len(sample) * math.log(2))
            gains[block] = g
            done += len(block)
            if self.budget_ms and (time.perf_counter() - start) * 1e3 >= self.budget_ms:
                break
        i = pick(gains, legal, winning)
        seen = order[:done]
        return Decision(int(legal[i]), float(gains[i]), top_alternatives(gains[seen], legal[seen], winning[seen]),
                        len(sample), done, {"sampled": sampled, "evaluations": done * len(sample)})


class Minimax:
    """Knuth's worst-case rule: minimise the largest class of the partition (same tie-break)."""

    name = "minimax"
    deterministic = True

    def decide(self, state: State) -> Decision:
        game, cand, legal = state.game, state.cand, state.legal
        gains, biggest, _ = scores(game, cand, legal)
        winning = winning_mask(game, cand, legal)
        i = pick(-biggest.astype(np.float64), legal, winning)
        return Decision(int(legal[i]), float(gains[i]), top_alternatives(gains, legal, winning), len(cand), len(legal),
                        {"largest_class": int(biggest[i])})


class RandomConsistent:
    """Guess a uniformly random secret still in I (guess games) or a random action that splits I (query games)."""

    name = "random"
    deterministic = False

    def decide(self, state: State) -> Decision:
        game, cand, legal = state.game, state.cand, state.legal
        gen = rng.numpy_generator(state.seed, 3, state.step)
        if game.is_guess_game:
            options = legal[winning_mask(game, cand, legal)]
            if len(options):
                return Decision(int(gen.choice(options)), states_evaluated=len(cand), actions_evaluated=1)
            return Decision(int(gen.choice(legal)), actions_evaluated=1)  # hard mode may exclude every candidate
        _, biggest, _ = scores(game, cand, legal)
        useful = legal[biggest < len(cand)]
        return Decision(int(gen.choice(useful if len(useful) else legal)), states_evaluated=len(cand),
                        actions_evaluated=len(legal))


class ExactSolver:
    """Minimum expected number of actions under the game's prior, by exhaustive search over the information sets
    with a memo: the solver for query games and for games with a prior (the C++ one covers uniform guess games).

    With T(I) = sum_{s in I} p(s) * actions(s): guess games T({s}) = p(s) and T(I) = min_a p(I) + sum_{o != win}
    T(I_o(a)); query games T(I) = 0 when no action splits I (declare), else min_a p(I) + sum_o T(I_o(a)). The
    expected number of actions from I is T(I) / p(I). Actions that split I the same way are one option (the lowest
    index); `beam` > 0 keeps the beam best by E[dH] at every node. Refused beyond `limit` information sets."""

    def __init__(self, game: Game, beam: int = 0, limit: int = 200_000):
        if game.table is None:
            raise UserInputError("the exact solver needs a tabulated game")
        self.game, self.beam, self.limit = game, beam, limit
        self.w = np.ones(game.n_secrets) if game.prior is None else np.asarray(game.prior, np.float64)
        self.memo: dict[bytes, float] = {}
        # K: the most classes one action makes (guess games: besides the win), so that at most K^(d-1) secrets are
        # won by the d-th guess and at most K^d twin classes are told apart by d queries (the counting bound)
        table = game.table
        k = max(len(np.unique(row)) - (game.is_guess_game and game.win in row) for row in table)
        k = max(k, 1 if game.is_guess_game else 2)  # a larger K only weakens the bound
        levels, d = [], 1
        while len(levels) < game.n_secrets:
            levels += [d] * (k ** (d - 1) if game.is_guess_game else k ** d - len(levels))
            d += 1
        self.depths = np.maximum(np.array(levels[:game.n_secrets], np.float64), 1)
        self.log_outcomes = math.log2(max(2, game.n_outcomes))

    def options(self, cand: np.ndarray) -> np.ndarray:
        """The actions worth trying at I, best E[dH] first (ties: winning now, lowest index)."""
        game = self.game
        sub = game.table[:, cand]
        useful = (sub != sub[:, :1]).any(1) | winning_mask(game, cand, np.arange(game.n_actions))
        idx = np.flatnonzero(useful)
        idx = np.sort(idx[np.unique(sub[idx], axis=0, return_index=True)[1]])  # one action per partition
        gains = scores(game, cand, idx)[0]
        wins = winning_mask(game, cand, idx)
        order = np.lexsort((idx, ~wins, -np.round(gains / TIE_TOL)))
        return idx[order[:self.beam] if self.beam else order]

    def _lower(self, cand: np.ndarray) -> float:
        """A lower bound on T(I): the exact value when known; else the best of (a) the counting bound, the heaviest
        secrets (twin classes) placed on the shallowest levels the K-ary tree has room for, and (b) the prefix-code
        bound p(I) H(I) / log2 |O| (a strategy's outcome sequences are a prefix code that identifies each twin
        class). A finished query set costs 0."""
        known = self.memo.get(cand.tobytes())
        if known is not None:
            return known
        w = self.w[cand]
        if not self.game.is_guess_game:
            if self.game.finished(cand):
                return 0.0
            w = np.bincount(self.game.twin_class[cand], weights=w)
            w = w[w > 0]
        m = float(w.sum())
        q = w / m
        counting = float(np.sort(w)[::-1] @ self.depths[:len(w)])
        return max(counting, -m * float((q * np.log2(q)).sum()) / self.log_outcomes)

    def _children(self, cand: np.ndarray, action: int) -> list[np.ndarray]:
        row = self.game.table[action, cand]
        return [cand[row == o] for o in np.unique(row) if not (self.game.is_guess_game and o == self.game.win)]

    def total(self, cand: np.ndarray) -> float:
        """T(I), memoised (terminal sets included)."""
        key = cand.tobytes()
        known = self.memo.get(key)
        if known is not None:
            return known
        game, m = self.game, float(self.w[cand].sum())
        if game.is_guess_game and len(cand) == 1:
            best = m
        elif not game.is_guess_game and game.finished(cand):
            best = 0.0
        else:
            if len(self.memo) >= self.limit:
                raise UserInputError(f"the exact optimal search of {game.name} needs more than {self.limit} "
                                     "information sets; use --agent optimal:beam=K (e.g. 4) or a smaller game")
            best = math.inf
            for a in self.options(cand):
                children = self._children(cand, int(a))
                if m + sum(self._lower(c) for c in children) >= best:
                    continue
                t = m
                for c in children:
                    t += self.total(c)
                    if t >= best:
                        break
                best = min(best, t)
        self.memo[key] = best
        return best

    def best_action(self, cand: np.ndarray) -> tuple[int, float]:
        """An optimal action at I and its expected number of actions to go; among the optimal actions, one that
        wins now, then the lowest index (as `pick`)."""
        target, m = self.total(cand), float(self.w[cand].sum())
        tol = 1e-9 * max(1.0, target)
        best = []
        for a in self.options(cand):
            children = self._children(cand, int(a))
            if m + sum(self._lower(c) for c in children) > target + tol:
                continue
            t = m
            for c in children:
                t += self.total(c)
                if t > target + tol:
                    break
            if t <= target + tol:
                best.append(int(a))
        actions = np.array(best)
        i = pick(np.zeros(len(actions)), actions, winning_mask(self.game, cand, actions))
        return int(actions[i]), target / m


class Optimal:
    """Minimum expected number of actions. Uniform guess games: exact branch and bound in C++ (`beam` > 0
    restricts every node to its most promising actions); only the native engine runs it at game scale, and code
    games (`Game.code_symmetry`) get the exact symmetry reduction, for which the history is passed along. Query
    games and games with a prior: `ExactSolver` (Python, small games)."""

    name = "optimal"
    deterministic = True

    def __init__(self, beam: Count = 0):
        self.beam = beam
        self._solvers: dict = {}

    def solver(self, game: Game):
        key = game.name
        if key in self._solvers:
            return self._solvers[key]
        if game.table is None:
            raise UserInputError("the optimal solver needs a tabulated game")
        if not game.is_guess_game or game.prior is not None:
            self._solvers[key] = ExactSolver(game, self.beam)
            return self._solvers[key]
        if not native.available():
            raise UserInputError("the optimal solver needs the native extension (scripts/dev_build.sh)")
        codes, colors = game.code_symmetry or (None, 0)
        self._solvers[key] = native.module().IsesOptimalSolver(game.table, game.n_outcomes, game.win,
                                                               game.secret_action, self.beam, codes, colors)
        return self._solvers[key]

    def prepare(self, game: Game, first: int | None = None) -> None:
        """Check that the game can be solved and, on the Python path, solve it from the start (after `first`), so
        that a search too large fails before a run begins."""
        solver = self.solver(game)
        if isinstance(solver, ExactSolver):
            if game.legal_actions([]) is not None:
                raise UserInputError("the optimal solver does not support hard mode")
            cand = game.support
            for c in ([cand] if first is None else solver._children(cand, first)):
                solver.total(c)

    def decide(self, state: State) -> Decision:
        if state.game.legal_actions(state.history) is not None:
            raise UserInputError("the optimal solver does not support hard mode")
        solver = self.solver(state.game)
        if isinstance(solver, ExactSolver):
            action, to_go = solver.best_action(np.ascontiguousarray(state.cand, np.int32))
            return Decision(action, states_evaluated=len(state.cand), info={"expected_to_go": to_go})
        history = np.array([a for a, _ in state.history], np.int32)
        action = solver.best_action(np.ascontiguousarray(state.cand, np.int32), history)
        return Decision(int(action), states_evaluated=len(state.cand))


def optimal_total_reference(game: Game, cand: np.ndarray, first: int | None = None) -> int:
    """Pure-Python exact minimum total guesses (the oracle for the C++ solver on small games)."""
    table, win, memo = game.table, game.win, {}

    def after(c, a):
        codes = table[a, c]
        return len(c) + sum(solve(c[codes == o]) for o in np.unique(codes) if o != win)

    def solve(c):
        if len(c) <= 2:
            return 2 * len(c) - 1
        key = c.tobytes()
        if key not in memo:
            best = math.inf
            for a in range(game.n_actions):
                codes = table[a, c]
                if (codes == codes[0]).all() and codes[0] != win and a not in game.secret_action[c]:
                    continue
                best = min(best, after(c, a))
            memo[key] = best
        return memo[key]

    cand = np.asarray(cand, np.int32)
    return after(cand, first) if first is not None else solve(cand)


# --- SO-ISMCTS ----------------------------------------------------------------------------------------------------

class _Node:
    __slots__ = ("avail", "children", "legal", "moved", "reward", "untried", "visits")  # one information set

    def __init__(self):
        self.visits: dict[int, int] = {}      # action -> n(a), in expansion order
        self.avail: dict[int, int] = {}       # action -> availability count n'(a)
        self.reward: dict[int, float] = {}    # action -> total reward
        self.children: dict[tuple[int, int], _Node] = {}  # (action, observation) -> node
        # untried actions as a lazy Fisher-Yates shuffle of `legal`: position i holds legal[moved.get(i, i)],
        # the first `untried` positions are untried (-1: not visited yet)
        self.legal: np.ndarray | None = None
        self.untried = -1
        self.moved: dict[int, int] = {}

    def draw(self, gen: engine.SplitMix64) -> tuple[int, int]:
        """Draw an untried position j uniformly (one step of the shuffle, applied by `open`): (j, its action)."""
        j = gen.below(self.untried)
        return j, int(self.legal[self.moved.get(j, j)])

    def open(self, j: int, action: int) -> None:
        """Apply the shuffle step that drew position j and open the action's statistics (n'(a) = 1)."""
        self.untried -= 1
        last = self.untried
        self.moved[j] = self.moved.pop(last, last)
        self.visits[action], self.reward[action], self.avail[action] = 0, 0.0, 1


class SOISMCTS:
    """Single-observer ISMCTS (Cowling, Powley & Whitehouse 2012): every iteration draws a determinisation s ~ I,
    descends one shared tree of information-set nodes with UCB1 over the actions available in that
    determinisation (availability counts), expands one untried action (uniformly, without replacement), finishes
    with a random rollout, and backs up the reward (horizon - actions used + 1) / horizon for solving, 0 otherwise.
    Budget: milliseconds, iterations or feedback evaluations (the most whole iterations that fit, at least one: an
    iteration is simulated first and backed up only if its evaluations fit). Final move: the most visited root action.

    This is the reference: `NativeSOISMCTS` runs the same search in C++. Both draw from `engine.SplitMix64` seeded
    with (seed, 4, step) in the same order (determinisation: `below(|I|)`, or under a prior the CDF of p(s | I) at
    `uniform()`; expansion: `below(untried)`; rollout: `below(options)`), so they build the same tree.
    `Decision.info`: iterations and evaluations (feedback values f(a, s) computed: |I| per simulated action)."""

    name = "so-ismcts"
    deterministic = False

    def __init__(self, budget_ms: NonNegFloat = 0.0, iterations: Count = 0, evaluations: Count = 0,
                 c: NonNegFloat = 0.7, rollout: Literal["random", "consistent"] = "random", max_actions: Count = 0):
        if not budget_ms and not iterations and not evaluations:
            raise UserInputError("so-ismcts needs a budget: budget_ms, iterations or evaluations")
        self.budget_ms, self.iterations, self.evaluations, self.c, self.rollout, self.max_actions = \
            budget_ms, iterations, evaluations, c, rollout, max_actions

    def horizon(self, game: Game) -> int:
        return self.max_actions or 2 * game.turn_limit

    def decide(self, state: State) -> Decision:
        actions, visits, reward, it, evaluations, fallback = self.search(state)
        if not len(actions):  # no iteration fitted in the budget
            return Decision(int(fallback), info={"iterations": int(it), "evaluations": 0})
        actions, visits, reward = np.asarray(actions).tolist(), np.asarray(visits).tolist(), np.asarray(reward).tolist()
        mean = [r / n for r, n in zip(reward, visits)]
        best = max(range(len(actions)), key=lambda i: (visits[i], mean[i], -actions[i]))
        ranked = sorted(range(len(actions)), key=lambda i: -visits[i])[:5]  # stable: expansion order on ties
        return Decision(actions[best], mean[best], [(actions[i], mean[i]) for i in ranked], int(it), len(actions),
                        {"iterations": int(it), "evaluations": int(evaluations)})

    def search(self, state: State) -> tuple:
        """(root actions in expansion order, their visits, total rewards, iterations, evaluations, fallback move
        or -1): the move is the most visited root action (ties: higher mean reward, then lower index); the fallback,
        when no iteration fitted in the budget, a consistent guess."""
        game = state.game
        horizon = self.horizon(game)
        gen = engine.SplitMix64(state.seed, 4, state.step)
        root = _Node()
        start, it, evaluations = time.perf_counter(), 0, 0
        cand = state.cand
        cdf = None if game.prior is None else np.cumsum(np.asarray(game.prior, np.float64)[cand]).tolist()
        while True:
            if self.iterations and it >= self.iterations:
                break
            if self.evaluations and it and evaluations >= self.evaluations:
                break
            if self.budget_ms and (time.perf_counter() - start) * 1e3 >= self.budget_ms:
                break
            # determinisation s ~ p(s | I)
            i = gen.below(len(cand)) if cdf is None else \
                min(len(cand) - 1, bisect.bisect_right(cdf, gen.uniform() * cdf[-1]))
            # under an evaluation cap, every iteration after the first must fit in what is left of it
            allowance = self.evaluations - evaluations if self.evaluations and it else None
            spent = self._iterate(root, state, int(cand[i]), horizon, gen, allowance)
            if spent is None:
                break
            evaluations += spent
            it += 1
        fallback = -1 if root.visits else _consistent_choice(game, cand, state.legal, gen)
        return list(root.visits), list(root.visits.values()), list(root.reward.values()), it, evaluations, fallback

    def _step(self, game, cand, secret, action):
        """Apply `action` in the determinised world: (observation, new I, game over)."""
        outcome = int(game.table[action, secret]) if game.table is not None else \
            int(game.feedback(np.array([action]), np.array([secret]))[0, 0])
        new = split(game, cand, action, outcome)
        return outcome, new, outcome == game.win if game.is_guess_game else game.finished(new)

    def _iterate(self, root, state, secret, horizon, gen, allowance=None) -> int | None:
        """One iteration: a simulation that leaves the tree's statistics alone, then, if its feedback evaluations
        fit in `allowance` (None: no limit), the backup. Returns the evaluations, or None when it did not fit."""
        game, node, cand, history = state.game, root, state.cand, list(state.history)
        path, used, over, evaluations, drawn = [], 0, False, 0, None
        while not over and used < horizon:  # selection and expansion in the shared tree
            if node.legal is None:
                node.legal = _legal(game, history)
                node.untried = len(node.legal)
            # the actions here depend on the history only: all available every time, n'(a) + 1 (added in the backup)
            if node.untried > 0:
                drawn, action = node.draw(gen)
            else:  # UCB1 with availability counts
                action = max(node.visits, key=lambda a: node.reward[a] / max(1, node.visits[a]) +
                             self.c * math.sqrt(math.log(node.avail[a] + 1) / max(1, node.visits[a])))
            evaluations += len(cand)
            outcome, cand, over = self._step(game, cand, secret, action)
            history.append((action, outcome))
            used += 1
            path.append((node, action))
            if drawn is not None:
                break
            node = node.children.setdefault((action, outcome), _Node())
        while not over and used < horizon:  # rollout
            legal = _legal(game, history)
            if self.rollout == "consistent" and game.is_guess_game:
                action = _consistent_choice(game, cand, legal, gen)
            else:
                action = int(legal[gen.below(len(legal))])
            evaluations += len(cand)
            outcome, cand, over = self._step(game, cand, secret, action)
            history.append((action, outcome))
            used += 1
        if allowance is not None and evaluations > allowance:
            return None
        solved = over and (game.is_guess_game or int(cand[0]) == secret)  # query games: declare min(I)
        reward = (horizon - used + 1) / horizon if solved else 0.0
        for node, action in path:
            for a in node.visits:
                node.avail[a] += 1
            if action not in node.visits:  # the expanded action
                node.open(drawn, action)
            node.visits[action] += 1
            node.reward[action] += reward
        return evaluations


class NativeSOISMCTS(SOISMCTS):
    """SO-ISMCTS in C++ (csrc/cpu/ises_ismcts.cpp): the search of `SOISMCTS`, draw for draw, for games with a
    feedback table and no history-dependent legal actions; other games (a feedback too large to tabulate, Wordle
    hard mode, Python games with their own `legal_actions`) run the Python reference. The default `so-ismcts`
    unless TOOLBOX_KERNELS=reference."""

    def search(self, state: State) -> tuple:
        game = state.game
        if not native_search(game):
            return super().search(state)
        guess = game.is_guess_game
        return engine.so_ismcts_native(
            game.table, state.cand, game.win if guess else -1,
            np.ascontiguousarray(game.secret_action, np.int32) if guess else None,
            None if guess else np.ascontiguousarray(game.twin_class, np.int64),
            None if game.prior is None else np.ascontiguousarray(game.prior, np.float64),
            state.seed, 4, state.step, self.budget_ms, self.iterations, self.c, self.rollout == "consistent",
            self.horizon(game), self.evaluations)


def native_search(game: Game) -> bool:
    """Whether the C++ SO-ISMCTS can play `game`: a feedback table and every action legal after every history."""
    static = type(game).legal_actions is Game.legal_actions or (isinstance(game, Wordle) and not game.hard)
    return static and game.table is not None


def _consistent_choice(game: Game, cand: np.ndarray, legal: np.ndarray, gen: engine.SplitMix64) -> int:
    """A uniform legal action guessing a secret of I (ascending order), or a uniform legal action if none does."""
    options = legal[winning_mask(game, cand, legal)]
    pool = options if len(options) else legal
    return int(pool[gen.below(len(pool))])


def _legal(game: Game, history) -> np.ndarray:
    legal = game.legal_actions(history)
    return np.arange(game.n_actions, dtype=np.int32) if legal is None else legal


AGENTS = {
    "ises": "ISES: maximise expected entropy reduction (depth=1, beam=8)",
    "ises-sampled": "sampled, anytime ISES (states=256, actions=0 (all), budget_ms)",
    "so-ismcts": "SO-ISMCTS baseline, C++ on tabulated games (budget_ms, iterations or evaluations, c=0.7, "
                 "rollout=random|consistent)",
    "minimax": "Knuth's minimax: minimise the largest class",
    "random": "random consistent guess / random informative query",
    "optimal": "exact minimum expected actions (C++ branch and bound; query games / priors: Python; beam=0 is exact)",
}


def make_agent(spec: str, budget_ms: float = 0.0):
    """An agent from `name[:key=value,...]`, its options checked against the agent's signature; `budget_ms` sets
    the per-move budget of budgeted agents."""
    name, kwargs = parse_spec(spec)
    classes = {"ises": ISES, "ises-sampled": SampledISES, "so-ismcts": SOISMCTS, "minimax": Minimax,
               "random": RandomConsistent, "optimal": Optimal}
    if name not in classes:
        raise UserInputError(f"unknown agent {name!r}; known: {', '.join(classes)}")
    if name == "so-ismcts" and use_native() and hasattr(native.module(), "ises_so_ismcts"):
        classes[name] = NativeSOISMCTS  # the C++ search (same parameters); TOOLBOX_KERNELS=reference: Python
    kwargs = check_params(classes[name], kwargs, f"agent {spec!r}")
    if budget_ms and name in ("ises-sampled", "so-ismcts") and not {"iterations", "evaluations"} & set(kwargs):
        kwargs.setdefault("budget_ms", float(budget_ms))  # a count budget keeps runs reproducible
    return classes[name](**kwargs)
