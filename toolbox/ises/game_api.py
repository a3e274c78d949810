"""The public Game API of the deduction games (note section 1.1): subclass `Game`, or build a `TableGame` from
its feedback table. Built-in games are in toolbox.ises.games; user games load through toolbox.ises.user_games.

A game has secrets S (`secret_labels`), actions A (`action_labels`) and a deterministic feedback f(a, s) coded as
an integer < `n_outcomes`, given by its vectorised `feedback(actions, secrets)` (index arrays -> uint8
[len(a), len(s)]). A guess game sets `win` (the code of guessing the secret) and `secret_action` (the action that
guesses each secret); a query game leaves both None and ends when no action splits the information set. Optional:
`turn_limit`, `prior` (a weight >= 0 per secret), `legal_actions(history)`, `outcome_label`, `parse_outcome`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from toolbox.core.errors import UserInputError
from toolbox.ises import engine

TABLE_LIMIT = 400_000_000  # largest table (entries = bytes) built eagerly


@dataclass
class Game:
    """Base class: subclasses fill the fields (in __post_init__, or in __init__ after `super().__init__()`) and
    implement `feedback`."""

    name: str = field(init=False, default="")
    secret_labels: list = field(init=False, default_factory=list)
    action_labels: list = field(init=False, default_factory=list)
    n_outcomes: int = field(init=False, default=2)
    win: int | None = field(init=False, default=None)          # the outcome of guessing the secret (guess games)
    secret_action: np.ndarray | None = field(init=False, default=None)  # int32 [S]: the action guessing s
    turn_limit: int = field(init=False, default=10)
    outcome_format: str = field(init=False, default="")
    prior: np.ndarray | None = field(init=False, default=None)
    # (codes [actions, pegs] uint8, colours) when the feedback is invariant under permuting positions and colours
    # (actions = secrets); the exact solver then tries one guess per symmetry orbit.
    code_symmetry: tuple[np.ndarray, int] | None = field(init=False, default=None)

    # -- interface ------------------------------------------------------------------------------------------
    def feedback(self, actions: np.ndarray, secrets: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def outcome_label(self, code: int) -> str:
        return str(int(code))

    def parse_outcome(self, text: str) -> int:
        raise UserInputError(f"cannot parse feedback {text!r}; expected {self.outcome_format}")

    def legal_actions(self, history: list[tuple[int, int]]) -> np.ndarray | None:
        """Indices of the actions allowed after `history` [(action, outcome), ...]; None means all of them."""
        return None

    # -- derived --------------------------------------------------------------------------------------------
    @property
    def n_secrets(self) -> int:
        return len(self.secret_labels)

    @property
    def n_actions(self) -> int:
        return len(self.action_labels)

    @property
    def is_guess_game(self) -> bool:
        return self.win is not None

    @functools.cached_property
    def table(self) -> np.ndarray | None:
        """The full feedback table uint8 [A, S], or None when it is too large (then `feedback` is used)."""
        if self.n_actions * self.n_secrets > TABLE_LIMIT:
            return None
        t = np.ascontiguousarray(self.feedback(np.arange(self.n_actions), np.arange(self.n_secrets)), np.uint8)
        if t.size and int(t.max()) >= self.n_outcomes:
            raise ValueError(f"{self.name}: feedback code {int(t.max())} >= n_outcomes {self.n_outcomes}")
        return t

    @functools.cached_property
    def twin_class(self) -> np.ndarray:
        """Class id of each secret; secrets with the same id get the same feedback from every action."""
        table = self.table if self.table is not None else \
            self.feedback(np.arange(self.n_actions), np.arange(self.n_secrets))
        return np.unique(table.T, axis=0, return_inverse=True)[1].ravel().astype(np.int64)

    def finished(self, cand: np.ndarray) -> bool:
        """Query games end when no action can split the information set any more (then the player declares)."""
        if self.is_guess_game:
            return False
        return len(cand) <= 1 or bool((self.twin_class[cand] == self.twin_class[cand[0]]).all())

    @functools.cached_property
    def support(self) -> np.ndarray:
        """The secrets the prior allows (weight > 0): the information set before the first action."""
        if self.prior is None:
            return np.arange(self.n_secrets, dtype=np.int32)
        return np.flatnonzero(self.prior > 0).astype(np.int32)

    def mass(self, cand: np.ndarray) -> float:
        """Prior mass of a set of secrets (its size under the uniform prior)."""
        return float(len(cand)) if self.prior is None else float(self.prior[cand].sum())

    def entropy0(self) -> float:
        return engine.entropy_bits(self.support, self.prior)

    def action_index(self, label: str) -> int:
        index = self._action_lookup.get(label.strip().upper())
        if index is None:
            raise UserInputError(f"{label!r} is not an action of {self.name} (e.g. {self.action_labels[0]})")
        return index

    def secret_index(self, label: str) -> int:
        index = self._secret_lookup.get(label.strip().upper())
        if index is None:
            raise UserInputError(f"{label!r} is not a secret of {self.name} (e.g. {self.secret_labels[0]})")
        return index

    @functools.cached_property
    def _action_lookup(self) -> dict:
        return {str(x).upper(): i for i, x in enumerate(self.action_labels)}

    @functools.cached_property
    def _secret_lookup(self) -> dict:
        return {str(x).upper(): i for i, x in enumerate(self.secret_labels)}

    def describe(self) -> dict:
        return {"game": self.name, "secrets": self.n_secrets, "actions": self.n_actions,
                "outcomes": self.n_outcomes, "H0_bits": self.entropy0(), "kind": "guess" if self.win is not None
                else "query", "turn_limit": self.turn_limit, "feedback_format": self.outcome_format,
                "prior": "uniform" if self.prior is None else "weighted"}


class TableGame(Game):
    """A game given by its feedback table: the public way to define a game (TOML files and Python factories).

    table[a][s] is the index of the outcome label that action a gets when the secret is s. With `win` (an outcome
    label) it is a guess game: each secret needs an action of the same label, whose feedback is `win` for that
    secret only; without it a query game. `prior`: a weight >= 0 per secret (None: uniform)."""

    def __init__(self, name: str, secrets: list, actions: list, outcomes: list, table, win: str | None = None,
                 turn_limit: int = 0, prior=None):
        super().__init__()
        self.name = name
        self.secret_labels, self.action_labels = [str(x) for x in secrets], [str(x) for x in actions]
        self.outcomes = [str(o) for o in outcomes]
        self.n_outcomes = len(self.outcomes)
        if not 1 <= self.n_outcomes <= 256:
            raise UserInputError(f"{name}: a game needs 1 to 256 outcomes, got {self.n_outcomes}")
        self._codes = np.asarray(table)
        if self._codes.shape != (self.n_actions, self.n_secrets):
            raise UserInputError(f"{name}: the feedback table must be actions x secrets = "
                                 f"{self.n_actions} x {self.n_secrets}, got {self._codes.shape}")
        self._codes = self._codes.astype(np.uint8)
        self.outcome_format = "one of " + ", ".join(repr(o) for o in self.outcomes[:12])
        if win is not None:
            if str(win) not in self.outcomes:
                raise UserInputError(f"{name}: the win outcome {win!r} is not an outcome ({self.outcome_format})")
            self.win = self.outcomes.index(str(win))
            index = {label.upper(): i for i, label in enumerate(self.action_labels)}
            missing = [s for s in self.secret_labels if s.upper() not in index]
            if missing:
                raise UserInputError(f"{name}: in a guess game every secret must also be an action; missing "
                                     f"{', '.join(missing[:3])}")
            self.secret_action = np.array([index[s.upper()] for s in self.secret_labels], np.int32)
        self.turn_limit = int(turn_limit) or self.default_turn_limit()
        self.prior = None if prior is None else np.asarray(prior, np.float64)

    def default_turn_limit(self) -> int:
        """A bound every progressing agent meets: |S| guesses (a consistent guess wins or removes its secret), or
        one query fewer than the twin classes (a splitting query removes at least one class from each part)."""
        if self.is_guess_game:
            return self.n_secrets
        return max(1, len(np.unique(self.twin_class)) - 1)

    def feedback(self, actions, secrets):
        return self._codes[np.ix_(np.asarray(actions), np.asarray(secrets))]

    def outcome_label(self, code):
        return self.outcomes[int(code)]

    def parse_outcome(self, text):
        key = text.strip().upper()
        for i, o in enumerate(self.outcomes):
            if o.upper() == key:
                return i
        raise UserInputError(f"bad feedback {text!r}: expected {self.outcome_format}")
