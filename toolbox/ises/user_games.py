"""User-defined deduction games and priors, without touching the package (docs/ises.md, "Your own games").

* `file:PATH.toml` - a table game: secrets, actions, and the feedback as an explicit table or one of the built-in
  `RULES`; optional win outcome, turn limit and prior (see `load_toml_game` for the keys).
* `py:MODULE:FACTORY[,key=value,...]` - a factory (MODULE dotted or a path to a .py file) returning a `Game`,
  usually a `TableGame`; the options are checked against the factory's annotated keyword signature.
* `prior=FILE` on any game spec: CSV rows `secret,weight` (a row `*,w` gives every unlisted secret the weight w).

Every spec is validated in full when the game is made, so a bad one fails before a run folder exists.
"""
from __future__ import annotations

import csv
import hashlib
import importlib
import importlib.util
import math
import sys
import tomllib
from pathlib import Path

import numpy as np

from toolbox.core.config import check_params, parse_spec
from toolbox.core.errors import UserInputError
from toolbox.ises import engine
from toolbox.ises.game_api import Game, TableGame

MAX_SECRETS = 200_000
MAX_TABLE = 50_000_000  # entries (bytes) of a TOML game's feedback table
TOML_KEYS = {"name", "secrets", "actions", "win", "turn_limit", "prior", "feedback"}
FEEDBACK_KEYS = {"rule", "table", "rows", "outcomes"}


# --- specs --------------------------------------------------------------------------------------------------------

def split_spec(spec: str) -> tuple[str, str, dict]:
    """(kind, target, options): ('file', PATH, ...), ('py', 'MODULE:FACTORY', ...) or ('builtin', NAME, ...).
    In file: and py: specs the first comma ends the path; key=value options follow."""
    s = spec.strip()
    for kind in ("file", "py"):
        if s[:len(kind) + 1].lower() == kind + ":":
            target, _, opts = s[len(kind) + 1:].partition(",")
            params = parse_spec(f"{kind}:{opts}", "options of game")[1] if opts.strip() else {}
            if not target.strip():
                raise UserInputError(f"game {spec!r}: expected {'file:PATH.toml' if kind == 'file' else 'py:MODULE:FACTORY'}")
            if kind == "file" and set(params) - {"prior"}:
                raise UserInputError(f"game {spec!r}: a file game takes only the option prior=FILE")
            return kind, target.strip(), params
    name, params = parse_spec(s, "game")
    return "builtin", name, params


def files_stamp(spec: str) -> tuple:
    """(path, mtime, size) of the files a spec reads, so that a cached game is rebuilt when one changes."""
    kind, target, params = split_spec(spec)
    paths = [target] if kind == "file" else [target.rpartition(":")[0]] if kind == "py" and \
        target.rpartition(":")[0].endswith(".py") else []
    if isinstance(params.get("prior"), str):
        paths.append(params["prior"])
    out = []
    for p in paths:
        try:
            st = Path(p).stat()
            out.append((str(Path(p).resolve()), st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((p, None, None))
    return tuple(out)


# --- validation ----------------------------------------------------------------------------------------------------

def _unique_labels(labels: list, what: str, where: str) -> list[str]:
    out = []
    for x in labels:
        if isinstance(x, bool) or not isinstance(x, (str, int, float)) or not str(x).strip():
            raise UserInputError(f"{where}: {what} must be non-empty strings or numbers, got {x!r}")
        out.append(str(x).strip())
    seen: dict[str, str] = {}
    for label in out:
        if label.upper() in seen:
            raise UserInputError(f"{where}: duplicate {what[:-1]} {label!r} (names are case-insensitive)")
        seen[label.upper()] = label
    if not out:
        raise UserInputError(f"{where}: no {what}")
    return out


def validate_game(game, spec: str, deep: bool = True) -> Game:
    """Check a game's fields and table (deep: user games) and its prior; every problem is one UserInputError."""
    where = f"game {spec!r}"
    if not isinstance(game, Game):
        raise UserInputError(f"{where}: the factory must return a toolbox.ises.game_api.Game, got {type(game).__name__}")
    if deep:
        _unique_labels(list(game.secret_labels), "secrets", where)
        _unique_labels(list(game.action_labels), "actions", where)
        if not 1 <= game.n_outcomes <= 256 or not isinstance(game.turn_limit, int) or game.turn_limit < 1:
            raise UserInputError(f"{where}: needs 1 <= n_outcomes <= 256 and an integer turn_limit >= 1")
        try:
            table = game.table
        except (ValueError, IndexError) as exc:
            raise UserInputError(f"{where}: bad feedback table: {exc}") from None
        if game.is_guess_game:
            sa = game.secret_action
            if not 0 <= game.win < game.n_outcomes or sa is None or np.shape(sa) != (game.n_secrets,) or \
                    not ((0 <= np.asarray(sa)) & (np.asarray(sa) < game.n_actions)).all():
                raise UserInputError(f"{where}: a guess game needs win < n_outcomes and secret_action, one action "
                                     "index per secret")
            if table is not None:
                own = table[sa, np.arange(game.n_secrets)] == game.win
                if not own.all() or int((table == game.win).sum()) != game.n_secrets:
                    bad = game.secret_labels[int(np.flatnonzero(~own)[0])] if not own.all() else "some secret"
                    raise UserInputError(f"{where}: the win outcome {game.outcome_label(game.win)!r} must be the "
                                         f"feedback of guessing the secret and of nothing else (check {bad})")
    if game.prior is not None:
        p = np.asarray(game.prior, np.float64)
        if p.shape != (game.n_secrets,) or not np.isfinite(p).all() or (p < 0).any() or p.sum() <= 0:
            raise UserInputError(f"{where}: the prior needs one finite weight >= 0 per secret with a positive total")
    return game


# --- priors --------------------------------------------------------------------------------------------------------

def prior_from_mapping(weights: dict, labels: list[str], where: str) -> np.ndarray:
    """Weights per secret label (case-insensitive; the key '*' is the weight of every secret not named)."""
    index = {s.upper(): i for i, s in enumerate(labels)}
    out = np.full(len(labels), np.nan)
    default = None
    for key, value in weights.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise UserInputError(f"{where}: the weight of {key!r} must be a finite number >= 0, got {value!r}")
        if str(key).strip() == "*":
            default = float(value)
            continue
        i = index.get(str(key).strip().upper())
        if i is None:
            raise UserInputError(f"{where}: {key!r} is not a secret (e.g. {labels[0]!r})")
        if not np.isnan(out[i]):
            raise UserInputError(f"{where}: secret {key!r} is given twice")
        out[i] = float(value)
    missing = np.flatnonzero(np.isnan(out))
    if len(missing):
        if default is None:
            raise UserInputError(f"{where}: no weight for {labels[missing[0]]!r} ({len(missing)} secrets missing; "
                                 "add a row '*,WEIGHT' for all the others)")
        out[missing] = default
    if out.sum() <= 0:
        raise UserInputError(f"{where}: the prior weights sum to 0")
    return out


def _read_text(path: str, what: str) -> str:
    p = Path(path)
    if not p.is_file():
        raise UserInputError(f"{what} not found: {path}")
    try:
        return p.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise UserInputError(f"{what} {path} is not a UTF-8 text file") from None


def read_prior(path, labels: list[str]) -> np.ndarray:
    """A prior file: CSV rows `secret,weight` (an optional header row `secret,weight`, '#' comments; a row `*,w`
    gives every secret not listed the weight w)."""
    if not isinstance(path, str):
        raise UserInputError(f"prior={path!r}: expected a file name")
    rows = [r for r in csv.reader(_read_text(path, "prior file").splitlines())
            if r and r[0].strip() and not r[0].lstrip().startswith("#")]
    if rows and [x.strip().lower() for x in rows[0]] == ["secret", "weight"]:
        rows = rows[1:]
    weights: dict = {}
    for row in rows:
        if len(row) != 2:
            raise UserInputError(f"{path}: expected rows 'secret,weight', got {','.join(row)!r}")
        try:
            value = float(row[1])
        except ValueError:
            raise UserInputError(f"{path}: weight {row[1]!r} of {row[0]!r} is not a number") from None
        if row[0].strip() in weights:
            raise UserInputError(f"{path}: secret {row[0].strip()!r} is given twice")
        weights[row[0].strip()] = value
    return prior_from_mapping(weights, labels, path)


def set_prior(game: Game, weights: np.ndarray, source: str) -> None:
    game.prior = weights
    game.name += ("," if ":" in game.name else ":") + f"prior={source}"
    game.__dict__.pop("support", None)


# --- TOML table games ------------------------------------------------------------------------------------------------

def _numbers(labels: list[str], rule: str, where: str) -> np.ndarray:
    try:
        return np.array([float(x) for x in labels])
    except ValueError:
        raise UserInputError(f"{where}: rule {rule!r} needs numeric secrets and actions") from None


def _rule_equality(secrets, actions, where):
    s = np.array([x.upper() for x in secrets])
    a = np.array([x.upper() for x in actions])
    return ["correct", "wrong"], np.where(a[:, None] == s[None, :], 0, 1), "correct"


def _rule_higher_lower(secrets, actions, where):
    a = _numbers(actions, "higher-lower", where)[:, None]
    s = _numbers(secrets, "higher-lower", where)[None, :]
    return ["correct", "higher", "lower"], np.select([a == s, s > a], [0, 1], 2), "correct"


def _rule_greater_than(secrets, actions, where):
    a = _numbers(actions, "greater-than", where)[:, None]
    s = _numbers(secrets, "greater-than", where)[None, :]
    return ["yes", "no"], np.where(s > a, 0, 1), None


def _rule_mastermind(secrets, actions, where):
    lengths = {len(x) for x in secrets + actions}
    if len(lengths) != 1:
        raise UserInputError(f"{where}: rule 'mastermind' needs codes of one length, got lengths {sorted(lengths)}")
    pegs = lengths.pop()
    symbols = sorted(set("".join(secrets + actions)))
    if len(symbols) > 255:
        raise UserInputError(f"{where}: rule 'mastermind' allows at most 255 symbols")
    code = {c: i for i, c in enumerate(symbols)}

    def codes(labels):
        return np.array([[code[c] for c in x] for x in labels], np.uint8)

    table = engine.mastermind_table(codes(actions), codes(secrets), len(symbols))
    outcomes = [f"{b}B{w}W" for b in range(pegs + 1) for w in range(pegs + 1)]
    return outcomes, table, f"{pegs}B0W"


# rule -> (feedback function of (secrets, actions, where) -> (outcomes, codes, win), what it means)
RULES = {
    "equality": (_rule_equality, "the secrets; feedback 'correct' / 'wrong'; win 'correct'"),
    "higher-lower": (_rule_higher_lower, ("the secrets (numbers); feedback 'correct' / 'higher' (the secret is "
                                          "larger) / 'lower'; win 'correct'")),
    "greater-than": (_rule_greater_than, ("the secrets but the largest (numbers); action k asks 'is the secret "
                                          "> k?', feedback 'yes' / 'no'; a query game")),
    "mastermind": (_rule_mastermind, ("the secrets (equal-length codes); feedback black/white pegs 'bBwW'; "
                                      "win 'LB0W' for codes of length L")),
}


def _labels_value(value, what: str, where: str) -> list[str]:
    """A list of names, or {from = a, to = b}: the integers a..b."""
    if isinstance(value, dict):
        if set(value) != {"from", "to"} or not all(isinstance(value[k], int) and not isinstance(value[k], bool)
                                                   for k in value):
            raise UserInputError(f"{where}: {what} must be a list or {{from = INT, to = INT}}")
        if not 0 < value["to"] - value["from"] + 1 <= MAX_SECRETS:
            raise UserInputError(f"{where}: {what} range must hold 1 to {MAX_SECRETS} integers")
        value = list(range(value["from"], value["to"] + 1))
    if not isinstance(value, list):
        raise UserInputError(f"{where}: {what} must be a list or {{from = INT, to = INT}}")
    if len(value) > MAX_SECRETS:
        raise UserInputError(f"{where}: at most {MAX_SECRETS} {what}")
    return _unique_labels(value, what, where)


def _explicit_table(fb: dict, secrets: list[str], actions: list[str], where: str):
    """(outcome labels, codes [A, S]) from feedback.table {action: {secret: outcome}} or feedback.rows."""
    if ("table" in fb) == ("rows" in fb):
        raise UserInputError(f"{where}: [feedback] needs exactly one of rule, table, rows")
    if "table" in fb:
        table = fb["table"]
        if not isinstance(table, dict):
            raise UserInputError(f"{where}: feedback.table must map each action to {{secret = outcome, ...}}")
        a_index = {a.upper(): i for i, a in enumerate(actions)}
        s_index = {s.upper(): i for i, s in enumerate(secrets)}
        grid = [[None] * len(secrets) for _ in actions]
        for a, row in table.items():
            i = a_index.get(str(a).strip().upper())
            if i is None:
                raise UserInputError(f"{where}: feedback.table: {a!r} is not an action")
            if not isinstance(row, dict):
                raise UserInputError(f"{where}: feedback.table.{a} must map secrets to outcomes")
            for s, o in row.items():
                j = s_index.get(str(s).strip().upper())
                if j is None:
                    raise UserInputError(f"{where}: feedback.table.{a}: {s!r} is not a secret")
                grid[i][j] = o
    else:
        grid = fb["rows"]
        if not isinstance(grid, list) or len(grid) != len(actions) or \
                any(not isinstance(r, list) or len(r) != len(secrets) for r in grid):
            raise UserInputError(f"{where}: feedback.rows must hold one row per action ({len(actions)}), each with "
                                 f"one outcome per secret ({len(secrets)})")
    for i, row in enumerate(grid):
        for j, o in enumerate(row):
            if o is None:
                raise UserInputError(f"{where}: feedback.table: no outcome for action {actions[i]!r} and secret "
                                     f"{secrets[j]!r}")
            if isinstance(o, bool) or not isinstance(o, (str, int)):
                raise UserInputError(f"{where}: outcome {o!r} (action {actions[i]!r}) must be a name")
    outcomes = fb.get("outcomes")
    if outcomes is None:
        outcomes = list(dict.fromkeys(str(o).strip() for row in grid for o in row))
    elif not isinstance(outcomes, list):
        raise UserInputError(f"{where}: feedback.outcomes must be a list of names")
    outcomes = _unique_labels(outcomes, "outcomes", where)
    index = {o.upper(): k for k, o in enumerate(outcomes)}
    codes = np.empty((len(actions), len(secrets)), np.int64)
    for i, row in enumerate(grid):
        for j, o in enumerate(row):
            k = index.get(str(o).strip().upper())
            if k is None:
                raise UserInputError(f"{where}: outcome {o!r} is not in feedback.outcomes")
            codes[i, j] = k
    return outcomes, codes


def load_toml_game(path: str) -> TableGame:
    """A table game from TOML. Keys: name (default: the file's stem), secrets (list, or {from, to} integers),
    actions (default: derived from the rule, or the secrets), [feedback] with rule = one of RULES, or table =
    {action = {secret = outcome}} / rows = [[outcome per secret] per action] and optional outcomes = [...],
    win (the outcome meaning solved; a rule sets its own; without one an explicit table is a query game),
    turn_limit (default: TableGame.default_turn_limit), prior (a file name relative to this file, or a table
    {secret = weight, '*' = weight})."""
    where = path
    try:
        doc = tomllib.loads(_read_text(path, "game file"))
    except tomllib.TOMLDecodeError as exc:
        raise UserInputError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(doc) - TOML_KEYS)
    if unknown:
        raise UserInputError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(TOML_KEYS))})")
    if "secrets" not in doc or not isinstance(doc.get("feedback"), dict):
        raise UserInputError(f"{where}: a game needs secrets and a [feedback] table")
    fb = doc["feedback"]
    unknown = sorted(set(fb) - FEEDBACK_KEYS)
    if unknown:
        raise UserInputError(f"{where}: unknown [feedback] key(s) {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(FEEDBACK_KEYS))})")
    secrets = _labels_value(doc["secrets"], "secrets", where)
    rule = fb.get("rule")
    if rule is not None:
        if rule not in RULES or set(fb) != {"rule"}:
            raise UserInputError(f"{where}: feedback.rule must be one of {', '.join(RULES)}, alone in [feedback]")
        default = secrets
        if rule == "greater-than":  # a threshold at the largest secret splits nothing
            default = [secrets[i] for i in np.argsort(_numbers(secrets, rule, where), kind="stable")[:-1]]
    else:
        default = secrets
    actions = _labels_value(doc["actions"], "actions", where) if "actions" in doc else default
    if len(actions) * len(secrets) > MAX_TABLE:
        raise UserInputError(f"{where}: {len(actions)} x {len(secrets)} feedback entries is too many "
                             f"(max {MAX_TABLE:.0e}); write a py: factory instead")
    win = doc.get("win")
    if win is not None and not isinstance(win, (str, int)):
        raise UserInputError(f"{where}: win must be an outcome name")
    if rule is not None:
        outcomes, codes, rule_win = RULES[rule][0](secrets, actions, where)
        if win is not None and str(win).upper() != str(rule_win).upper():
            raise UserInputError(f"{where}: rule {rule!r} sets win = {rule_win!r}; remove the win key")
        win = rule_win
    else:
        outcomes, codes = _explicit_table(fb, secrets, actions, where)
        if win is not None:
            match = [o for o in outcomes if o.upper() == str(win).strip().upper()]
            if not match:
                raise UserInputError(f"{where}: win = {win!r} is not an outcome ({', '.join(outcomes[:8])})")
            win = match[0]
    limit = doc.get("turn_limit", 0)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise UserInputError(f"{where}: turn_limit must be an integer >= 1")
    prior = doc.get("prior")
    if isinstance(prior, str):
        prior = read_prior(str(Path(path).parent / prior), secrets)
    elif isinstance(prior, dict):
        prior = prior_from_mapping(prior, secrets, f"{where}: prior")
    elif prior is not None:
        raise UserInputError(f"{where}: prior must be a file name or a table {{secret = weight}}")
    name = doc.get("name", Path(path).stem)
    if not isinstance(name, str) or not name.strip():
        raise UserInputError(f"{where}: name must be a non-empty string")
    return TableGame(name.strip(), secrets, actions, outcomes, codes, win=win, turn_limit=limit, prior=prior)


# --- Python factories ------------------------------------------------------------------------------------------------

def _import(module: str):
    if module.endswith(".py"):
        p = Path(module)
        if not p.is_file():
            raise UserInputError(f"game module not found: {module}")
        name = "toolbox_user_game_" + hashlib.sha1(str(p.resolve()).encode()).hexdigest()[:12]
        spec = importlib.util.spec_from_file_location(name, p)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod  # dataclasses and pickling look the module up here
        spec.loader.exec_module(mod)
        return mod
    return importlib.import_module(module)


def load_py_game(target: str, params: dict, spec: str) -> Game:
    """`MODULE:FACTORY` -> FACTORY(**params), the options checked against its annotated keyword signature."""
    module, _, factory = target.rpartition(":")
    if not module or not factory:
        raise UserInputError(f"game {spec!r}: expected py:MODULE:FACTORY (MODULE dotted or a .py file)")
    try:
        mod = _import(module)
    except UserInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's module: report it in one line
        raise UserInputError(f"game {spec!r}: importing {module} failed: {type(exc).__name__}: {exc}") from None
    fn = getattr(mod, factory, None)
    if not callable(fn):
        raise UserInputError(f"game {spec!r}: {module} has no callable {factory!r}")
    kwargs = check_params(fn, params, f"game {spec!r}")
    try:
        return fn(**kwargs)
    except UserInputError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise UserInputError(f"game {spec!r}: {factory} failed: {type(exc).__name__}: {exc}") from None
