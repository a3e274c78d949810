"""Playing one deduction game: the Oracle answers f(a, s*) and the information set shrinks (note section 1.1).

`play_episode` records, move by move, the action, the feedback, |I| and H before and after, the information
gained dH_t = H_{t-1} - H_t, the agent's expected gain and alternatives, and the decision time. `Assistant` keeps
the history of a game played elsewhere (the user types the feedback) and never loses it on bad input.
"""
from __future__ import annotations

import time

import numpy as np

from toolbox.core import rng
from toolbox.core.errors import UserInputError
from toolbox.ises import engine
from toolbox.ises.agents import Decision, State, split
from toolbox.ises.games import Game


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
    seconds = []
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
            "declared": None if game.is_guess_game else game.secret_labels[int(cand[0])], "steps": steps}


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
