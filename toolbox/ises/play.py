"""Playing one deduction game: the Oracle answers f(a, s*) and the information set shrinks (note section 1.1).

`play_episode` records, move by move, the action, the feedback, |I| and H before and after, the information
gained dH_t = H_{t-1} - H_t, the agent's expected gain and alternatives, and the decision time. `Assistant` keeps
the history of a game played elsewhere (the user types the feedback) and never loses it on bad input.
`play_secrets` and `group_secrets` play many secrets, in one process or split into tasks for worker processes
with the same episodes.
"""
from __future__ import annotations

import time

import numpy as np

from toolbox.core import rng
from toolbox.core.errors import UserInputError
from toolbox.ises import engine
from toolbox.ises.agents import Decision, State, split
from toolbox.ises.games import Game


class FixedFirst:
    """Plays a given first action, then defers to the wrapped agent."""

    def __init__(self, agent, action: int):
        self.agent, self.action = agent, action
        self.name, self.deterministic = agent.name, getattr(agent, "deterministic", False)

    def decide(self, state: State) -> Decision:
        if not state.history:
            return Decision(self.action)
        return self.agent.decide(state)


COUNTED_BY_PARTITIONS = ("ises", "ises-sampled", "minimax")


def feedback_evaluations(agent, decision: Decision) -> int | None:
    """The feedback evaluations f(a, s) behind a decision: Decision.info["evaluations"] when the agent reports it;
    otherwise, for the agents that score partitions (ISES, sampled ISES, minimax), the states x actions they
    scored (exact at depth 1, an upper bound for deeper ISES); None when unknown."""
    if "evaluations" in decision.info:
        return int(decision.info["evaluations"])
    if getattr(agent, "name", "") in COUNTED_BY_PARTITIONS:
        return int(decision.states_evaluated) * int(decision.actions_evaluated)
    return None


def decide_cached(agent, state: State, cache: dict | None) -> tuple[Decision, float]:
    """The agent's decision and its wall time; deterministic agents reuse decisions for the same (I, history
    constraints), which makes runs over all secrets cheap (their decision tree is shared)."""
    key = None
    if cache is not None and getattr(agent, "deterministic", False):
        key = state.cand.tobytes() + (repr(state.history).encode() if state.game.legal_actions(state.history)
                                      is not None else b"")
        if key in cache:
            return cache[key], 0.0
    start = time.perf_counter()
    decision = agent.decide(state)
    seconds = time.perf_counter() - start
    if key is not None:
        cache[key] = decision
    return decision, seconds


def draw_secret(game: Game, seed: int) -> int:
    """The hidden secret of a game played from `seed`: uniform, or drawn from the prior."""
    gen = rng.numpy_generator(seed, 5)
    if game.prior is None:
        return int(gen.integers(game.n_secrets))
    return int(gen.choice(game.n_secrets, p=game.prior / game.prior.sum()))


def check_secret(game: Game, label: str) -> int:
    """The index of a secret given by name, refused when the prior gives it weight 0."""
    s = game.secret_index(label)
    if game.prior is not None and game.prior[s] <= 0:
        raise UserInputError(f"secret {label!r} has prior weight 0 in {game.name}")
    return s


def play_episode(game: Game, agent, secret: int, seed: int = 0, max_actions: int = 0,
                 cache: dict | None = None, details: bool = True) -> dict:
    """Play until the secret is guessed (guess games) or the information set cannot be split (query games,
    then min(I) is declared). `win` = solved within the game's turn limit."""
    max_actions = max_actions or 4 * game.turn_limit + 10
    _ = game.table  # build the feedback table before any decision is timed
    cand = game.support
    history, steps = [], []
    entropies = [engine.entropy_bits(cand, game.prior)]
    seconds, evaluations = [], []
    solved = False
    for t in range(max_actions):
        if game.finished(cand):
            break
        state = State(game, cand, list(history), t, seed)
        decision, dt = decide_cached(agent, state, cache)
        action = decision.action
        outcome = int(game.table[action, secret]) if game.table is not None else \
            int(game.feedback(np.array([action]), np.array([secret]))[0, 0])
        new = split(game, cand, action, outcome)
        h_after = engine.entropy_bits(new, game.prior)
        seconds.append(dt)
        evaluations.append(feedback_evaluations(agent, decision))
        if details:
            steps.append({
                "step": t + 1, "action": game.action_labels[action], "feedback": game.outcome_label(outcome),
                "size_before": len(cand), "size_after": len(new), "H_before": entropies[-1], "H_after": h_after,
                "info_gained": entropies[-1] - h_after, "expected_gain": decision.score,
                "alternatives": [(game.action_labels[a], g) for a, g in decision.alternatives],
                "states_evaluated": decision.states_evaluated, "actions_evaluated": decision.actions_evaluated,
                "seconds": dt, **decision.info})
        entropies.append(h_after)
        history.append((action, outcome))
        cand = new
        if game.is_guess_game and outcome == game.win:
            solved = True
            break
    if not game.is_guess_game:
        solved = game.finished(cand) and int(cand[0]) == secret
    n = len(history)
    return {"secret": game.secret_labels[secret], "secret_index": int(secret), "actions": n, "solved": solved,
            "win": solved and n <= game.turn_limit, "entropies": entropies, "move_seconds": seconds,
            "move_evaluations": evaluations,
            "declared": None if game.is_guess_game else game.secret_labels[int(cand[0])], "steps": steps}


def play_secrets(game: Game, agent, secrets, seed: int = 0, max_actions: int = 0, progress=None) -> list[dict]:
    """Play every secret in `secrets` with one decision cache. Secret s is played from seed * 1_000_003 + s, and
    the cache only reuses decisions of deterministic agents, so an episode does not depend on the other secrets of
    its task: every split over worker processes gives the same episodes as one serial pass."""
    cache: dict = {}
    out = []
    for i, s in enumerate(secrets):
        out.append(play_episode(game, agent, int(s), seed=seed * 1_000_003 + int(s), max_actions=max_actions,
                                cache=cache, details=False))
        if progress:
            progress(i + 1, len(secrets))
    return out


def group_secrets(game: Game, agent, secrets, n_tasks: int, seed: int = 0) -> list[list[int]]:
    """Split `secrets` into at most `n_tasks` tasks for worker processes. A deterministic agent plays the same
    first action a_1 on every secret, and the secrets with the same feedback f(a_1, s) share one subtree of
    decisions: each such class goes whole to one task (largest class first, onto the lightest task), so the
    workers' decision caches only overlap at the root. Other agents: contiguous chunks of equal size."""
    secrets = [int(s) for s in secrets]
    n_tasks = max(1, min(n_tasks, len(secrets)))
    if not getattr(agent, "deterministic", False) or game.table is None:
        size = -(-len(secrets) // n_tasks)
        return [secrets[i:i + size] for i in range(0, len(secrets), size)]
    first = agent.decide(State(game, game.support, [], 0, seed)).action
    classes: dict[int, list[int]] = {}
    for s in secrets:
        classes.setdefault(int(game.table[first, s]), []).append(s)
    tasks: list[list[int]] = [[] for _ in range(n_tasks)]
    for group in sorted(classes.values(), key=lambda g: (-len(g), g[0])):
        min(tasks, key=len).extend(group)
    return [sorted(t) for t in tasks if t]


class Assistant:
    """A game played elsewhere: the user reports each action and its feedback, the assistant keeps the
    information set and suggests the next action with its reasons."""

    def __init__(self, game: Game, agent, seed: int = 0):
        self.game, self.agent, self.seed = game, agent, seed
        self.history: list[tuple[int, int]] = []

    def cand(self) -> np.ndarray:
        cand = self.game.support
        for action, outcome in self.history:
            cand = split(self.game, cand, action, outcome)
        return cand

    def suggest(self) -> tuple[Decision, np.ndarray]:
        cand = self.cand()
        return self.agent.decide(State(self.game, cand, list(self.history), len(self.history), self.seed)), cand

    def record(self, action_label: str, feedback: str) -> np.ndarray:
        """Add one (action, feedback); bad input or a contradiction raises UserInputError and changes nothing."""
        action = self.game.action_index(action_label)
        outcome = self.game.parse_outcome(feedback)
        legal = self.game.legal_actions(self.history)
        if legal is not None and action not in set(legal.tolist()):
            raise UserInputError(f"{self.game.action_labels[action]} is not allowed here (hard mode)")
        new = split(self.game, self.cand(), action, outcome)
        if len(new) == 0:
            raise UserInputError(f"no secret is consistent with {self.game.action_labels[action]} -> "
                                 f"{self.game.outcome_label(outcome)}; check the feedback (history kept)")
        self.history.append((action, outcome))
        return new

    def undo(self) -> None:
        if self.history:
            self.history.pop()
