"""User-defined deduction games (issue 15, item 6): TOML table games, Python factories and priors.

A TOML copy of a built-in game must play exactly like it (every agent, every secret, the same seed); the number
query game against its closed form; a prior changes ISES's first move as the weighted entropy predicts; bad specs
are one line, exit 2, and leave no run folder.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from toolbox.cli.main import app
from typer.testing import CliRunner

from toolbox.core.errors import UserInputError
from toolbox.ises.agents import ExactSolver, Optimal, State, make_agent
from toolbox.ises.game_api import Game
from toolbox.ises.games import make_game
from toolbox.ises.play import play_episode

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples" / "ises"
AGENTS = ["ises", "ises:depth=2", "minimax", "random", "optimal", "so-ismcts:iterations=20", "ises-sampled:states=3"]
runner = CliRunner()


def per_secret(game, spec: str, seed: int = 3) -> list[tuple]:
    """(actions, win, declared) for every secret, seeded as `play-ises --all` seeds them."""
    agent = make_agent(spec)
    if isinstance(agent, Optimal):
        agent.prepare(game)
    cache: dict = {}
    out = []
    for s in game.support:
        e = play_episode(game, agent, int(s), seed=seed * 1_000_003 + int(s), cache=cache, details=False)
        out.append((e["actions"], e["win"], e["declared"]))
    return out


def toml_copy(game, path: Path, actions: list[str] | None = None) -> str:
    """The game as a TOML table game (explicit rows, the same outcome codes); returns its file: spec."""
    lines = ['name = "copy"', f"secrets = {json.dumps(game.secret_labels)}",
             f"actions = {json.dumps(actions or game.action_labels)}", f"turn_limit = {game.turn_limit}"]
    if game.is_guess_game:
        lines.append(f"win = {json.dumps(game.outcome_label(game.win))}")
    lines += ["[feedback]", f"outcomes = {json.dumps([game.outcome_label(o) for o in range(game.n_outcomes)])}",
              "rows = " + json.dumps([[game.outcome_label(c) for c in row] for row in game.table])]
    path.write_text("\n".join(lines) + "\n")
    return f"file:{path}"


def cli_json(args: list[str], cwd: Path) -> dict:
    old = os.getcwd()
    os.chdir(cwd)
    try:
        result = runner.invoke(app, [*args, "--json"])
    finally:
        os.chdir(old)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# --- a TOML game equivalent to a built-in one plays identically ------------------------------------------------------

def _rule_toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "game.toml"
    path.write_text(text)
    return f"file:{path}"


@pytest.mark.parametrize("builtin, toml", [
    ("number:n=20", 'secrets = {from = 1, to = 20}\nturn_limit = 5\n[feedback]\nrule = "higher-lower"\n'),
    ("number:n=24,queries=true", 'secrets = {from = 1, to = 24}\nturn_limit = 5\n[feedback]\nrule = "greater-than"\n'),
    ("mastermind:pegs=3,colors=3", None),
    ("coin:coins=4", None),
    ("guesswho", None),
])
def test_toml_copy_of_a_builtin_game_plays_identically(tmp_path, builtin, toml):
    game = make_game(builtin)
    if toml is not None:
        spec = _rule_toml(tmp_path, toml)
    elif builtin.startswith("mastermind"):  # the mastermind rule over the same 27 codes
        spec = _rule_toml(tmp_path, f"secrets = {json.dumps(game.secret_labels)}\nturn_limit = 10\n"
                                    '[feedback]\nrule = "mastermind"\n')
    else:  # an explicit table; Guess Who's guesses are named after the secrets, as a TOML guess game needs
        names = [a.removeprefix("is it ").removesuffix("?") if i in set(game.secret_action.tolist()) else a
                 for i, a in enumerate(game.action_labels)] if game.is_guess_game else None
        spec = toml_copy(game, tmp_path / "copy.toml", names)
    copy = make_game(spec)
    assert (copy.n_secrets, copy.n_actions, copy.n_outcomes, copy.win, copy.turn_limit) == \
        (game.n_secrets, game.n_actions, game.n_outcomes, game.win, game.turn_limit)
    assert np.array_equal(copy.table, game.table)
    agents = AGENTS if game.n_secrets <= 27 else ["ises", "minimax", "random", "optimal"]
    for agent in agents:
        assert per_secret(copy, agent) == per_secret(game, agent), agent


def test_cli_play_and_bench_on_a_toml_game_match_the_builtin(tmp_path):
    spec = f"file:{EXAMPLES / 'number20.toml'}"
    for agent, total in (("optimal", 1 + 2 * 2 + 4 * 3 + 8 * 4 + 5 * 5), ("ises", None)):  # optimal: 74
        docs = [cli_json(["play-ises", g, "--all", "--agent", agent, "--out", str(tmp_path / f"{agent}{i}")],
                         tmp_path) for i, g in enumerate((spec, "number:n=20"))]
        assert docs[0]["total_actions"] == docs[1]["total_actions"]
        assert docs[0]["histogram"] == docs[1]["histogram"] and docs[0]["win_rate"] == docs[1]["win_rate"] == 1.0
        if total:  # the optimal tree over 20 numbers: 1 + 2 + 4 + 8 nodes on levels 1-4, the other 5 on level 5
            assert docs[0]["total_actions"] == total
    doc = cli_json(["bench-ises", "--game", spec, "--game", "number:n=20", "--agent", "ises", "--agent",
                    "so-ismcts:iterations=30", "--agent", "optimal", "--n", "0", "--backend", "serial",
                    "--out", str(tmp_path / "bench")], tmp_path)
    rows = {(r["game"], r["agent"]): r for r in doc["summary"]}
    for agent in ("ises", "so-ismcts:iterations=30", "optimal"):
        a, b = rows[(spec, agent)], rows[("number:n=20", agent)]
        assert (a["n"], a["total_actions"], a["win_rate"]) == (b["n"], b["total_actions"], b["win_rate"]), agent
    assert rows[(spec, "optimal")]["total_actions"] == 74


# --- the higher/lower query game: binary search ------------------------------------------------------------------------

def binary_tree_total(n: int) -> int:
    """Fewest total questions over n equally likely secrets with yes/no questions: a complete binary tree with n
    leaves, n k + 2 (n - 2^k) with k = floor(log2 n)."""
    k = math.floor(math.log2(n))
    return n * k + 2 * (n - 2 ** k)


@pytest.mark.parametrize("n", [2, 3, 5, 12, 33, 64])
def test_query_number_game_is_binary_search(n):
    game = make_game(f"number:n={n},queries=true")
    assert game.action_labels[0] == ">1" and not game.is_guess_game and game.turn_limit == math.ceil(math.log2(n))
    assert [game.outcome_label(o) for o in game.feedback(np.array([0]), np.array([0, 1]))[0]] == ["no", "yes"]
    solver = ExactSolver(game)
    assert solver.total(game.support) == binary_tree_total(n)  # expected questions: binary_tree_total(n) / n
    for agent in ("ises", "optimal"):
        actions = [a for a, _, _ in per_secret(game, agent)]
        assert sum(actions) == binary_tree_total(n) and max(actions) == math.ceil(math.log2(n)), agent
    if n == 64:  # a power of two: the first question halves the interval
        decision = make_agent("ises").decide(State(game, game.support))
        assert game.action_labels[decision.action] == ">32" and decision.score == pytest.approx(1.0)


def test_query_number_game_cli_optimal_closed_form(tmp_path):
    doc = cli_json(["play-ises", "number:n=100,queries=true", "--all", "--agent", "optimal",
                    "--out", str(tmp_path / "run")], tmp_path)
    assert (doc["total_actions"], doc["max_actions"]) == (binary_tree_total(100), 7) == (672, 7)
    assert doc["expected_actions"] == pytest.approx(6.72)


def test_python_exact_solver_equals_the_cpp_solver_and_the_reference_with_equal_weights():
    """ExactSolver (weights, query games) with uniform weights on guess games: the C++ branch and bound's total and
    the pure-Python exhaustive reference."""
    from toolbox.ises.agents import optimal_total_reference

    for spec in ("number:n=12", "number:n=31", "mastermind:pegs=2,colors=3", "mastermind:pegs=3,colors=3"):
        game = make_game(spec)
        cpp = sum(a for a, _, _ in per_secret(game, "optimal"))
        assert ExactSolver(game).total(game.support) == cpp, spec
        if game.n_secrets <= 12:
            assert cpp == optimal_total_reference(game, game.support), spec


def test_assist_mode_on_a_toml_game(tmp_path):
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = runner.invoke(app, ["play-ises", f"file:{EXAMPLES / 'fruit.toml'}", "--assist", "--json"],
                               input="is it red? = maybe\nis it red? = no\nquit\n")
    finally:
        os.chdir(old)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["history"] == [["is it red?", "no"]] and doc["remaining"] == ["banana", "lemon"]
    assert "expected one of 'yes', 'no'" in result.stderr


# --- priors ------------------------------------------------------------------------------------------------------------

def H(*p) -> float:
    p = np.array(p, float) / sum(p)
    return float(-(p * np.log2(p)).sum())


def test_prior_changes_ises_first_move_as_weighted_entropy_predicts(tmp_path):
    """Fruit game: 'red?' splits {apple, cherry} | {banana, lemon}, 'apple?' {apple} | the rest. Uniform:
    E[dH](red?) = H(1/2) = 1 > E[dH](apple?) = H(1/4) = 0.811. With weights apple 3, others 1 (p = 1/2, 1/6, 1/6,
    1/6): E[dH](apple?) = H(1/2) = 1 > E[dH](red?) = H(2/3) = 0.918, so ISES asks 'apple?' first."""
    spec = f"file:{EXAMPLES / 'fruit.toml'}"
    uniform = cli_json(["play-ises", spec, "--secret", "apple", "--out", str(tmp_path / "u")], tmp_path)
    weighted = cli_json(["play-ises", f"{spec},prior={EXAMPLES / 'fruit_prior.csv'}", "--secret", "apple",
                         "--out", str(tmp_path / "w")], tmp_path)
    assert uniform["steps"][0]["action"] == "is it red?" and uniform["entropies"][0] == pytest.approx(2.0)
    alts = dict(uniform["steps"][0]["alternatives"])
    assert alts["is it red?"] == pytest.approx(1.0) and alts["is it an apple?"] == pytest.approx(H(1, 3))
    assert weighted["steps"][0]["action"] == "is it an apple?"
    alts = dict(weighted["steps"][0]["alternatives"])
    assert alts["is it an apple?"] == pytest.approx(1.0) and alts["is it red?"] == pytest.approx(H(2, 1))
    assert weighted["entropies"][0] == pytest.approx(H(3, 1, 1, 1)) and weighted["actions"] == 1
    # the same prior inline in the TOML gives the same game
    inline = tmp_path / "fruit.toml"
    inline.write_text((EXAMPLES / "fruit.toml").read_text() + '\n[prior]\napple = 3\n"*" = 1\n')
    assert np.array_equal(make_game(f"file:{inline}").prior,
                          make_game(f"{spec},prior={EXAMPLES / 'fruit_prior.csv'}").prior)


def test_prior_expected_actions_ises_and_optimal(tmp_path):
    """Fruit with the prior: after 'apple?' (1 question) the other three need 1 + 2/3 more, so the optimum is
    1/2 * 1 + 1/2 * (1 + 5/3) = 11/6 questions on average, which ISES also reaches; uniform: 2 for both."""
    spec = f"file:{EXAMPLES / 'fruit.toml'}"
    prior = f"{spec},prior={EXAMPLES / 'fruit_prior.csv'}"
    for agent in ("ises", "optimal"):
        doc = cli_json(["play-ises", prior, "--all", "--agent", agent, "--out", str(tmp_path / agent)], tmp_path)
        assert doc["expected_actions"] == pytest.approx(11 / 6) and doc["win_rate"] == 1.0, agent
        doc = cli_json(["play-ises", spec, "--all", "--agent", agent, "--out", str(tmp_path / f"u{agent}")],
                       tmp_path)
        assert doc["expected_actions"] == pytest.approx(2.0), agent


def test_prior_guess_game_optimal_differs_from_entropy_greedy(tmp_path):
    """Higher/lower over 1..3 with weights 3, 1, 1 (p = .6, .2, .2): guessing 1 first costs .6 + 2 * .2 + 3 * .2 =
    1.6 guesses on average (the optimum), guessing 2 first 1.8; but 2 splits the mass best (H(.2, .6, .2) = 1.371
    bits > H(.6, .4) = 0.971), so ISES opens with 2 and the optimal solver with 1."""
    (tmp_path / "w.csv").write_text("1,3\n2,1\n3,1\n")
    spec = _rule_toml(tmp_path, 'secrets = [1, 2, 3]\n[feedback]\nrule = "higher-lower"\n') + \
        f",prior={tmp_path / 'w.csv'}"
    game = make_game(spec)
    assert game.turn_limit == 3  # derived: |S| for a guess game
    firsts = {}
    for agent, expected in (("ises", 1.8), ("optimal", 1.6)):
        doc = cli_json(["play-ises", spec, "--all", "--agent", agent, "--out", str(tmp_path / agent)], tmp_path)
        assert doc["expected_actions"] == pytest.approx(expected), agent
        firsts[agent] = cli_json(["play-ises", spec, "--secret", "3", "--agent", agent, "--out",
                                  str(tmp_path / f"one-{agent}")], tmp_path)["steps"][0]
    assert firsts["ises"]["action"] == "2" and firsts["ises"]["expected_gain"] == pytest.approx(H(.2, .6, .2))
    assert firsts["optimal"]["action"] == "1" and firsts["optimal"]["expected_to_go"] == pytest.approx(1.6)


def test_prior_on_a_builtin_game_and_zero_weights(tmp_path):
    """prior=FILE on a built-in game; weight 0 removes a secret from the information set (and from --all)."""
    (tmp_path / "w.csv").write_text("secret,weight\n1,0\n2,0\n*,1\n")
    game = make_game(f"number:n=8,prior={tmp_path / 'w.csv'}")
    assert game.support.tolist() == list(range(2, 8)) and game.entropy0() == pytest.approx(math.log2(6))
    doc = cli_json(["play-ises", f"number:n=8,prior={tmp_path / 'w.csv'}", "--all", "--out", str(tmp_path / "r")],
                   tmp_path)
    assert doc["secrets"] == 6 and doc["win_rate"] == 1.0
    # uniform weights give the built-in game's results
    (tmp_path / "u.csv").write_text("*,5\n")
    assert per_secret(make_game(f"number:n=8,prior={tmp_path / 'u.csv'}"), "ises") == \
        per_secret(make_game("number:n=8"), "ises")


# --- the Python entry point ------------------------------------------------------------------------------------------

class HigherLower(Game):
    """Number guessing 1..n written against the public Game API (the same rules as the built-in `number`)."""

    def __init__(self, n: int):
        super().__init__()
        self.name = f"test-higher-lower:n={n}"
        self.secret_labels = self.action_labels = [str(i) for i in range(1, n + 1)]
        self.n_outcomes, self.win, self.turn_limit = 3, 0, math.ceil(math.log2(n + 1))
        self.secret_action = np.arange(n, dtype=np.int32)
        self.outcome_format = "correct, higher or lower"

    def feedback(self, actions, secrets):
        a, s = np.asarray(actions)[:, None], np.asarray(secrets)[None, :]
        return np.select([a == s, s > a], [0, 1], 2).astype(np.uint8)


def make_higher_lower(n: int = 10) -> Game:
    return HigherLower(n)


def not_a_game() -> str:
    return "nope"


def test_python_factory_game_matches_builtin_and_runs_everywhere(tmp_path):
    spec = f"py:{Path(__file__).resolve()}:make_higher_lower,n=15"
    game = make_game(spec)
    assert game.name == "test-higher-lower:n=15"
    for agent in ("ises", "minimax", "optimal", "so-ismcts:iterations=20"):
        assert per_secret(game, agent) == per_secret(make_game("number:n=15"), agent), agent
    doc = cli_json(["play-ises", spec, "--all", "--agent", "optimal", "--out", str(tmp_path / "p")], tmp_path)
    assert doc["total_actions"] == 1 + 2 * 2 + 4 * 3 + 8 * 4  # a complete tree of 15 nodes
    doc = cli_json(["bench-ises", "--game", spec, "--agent", "ises", "--n", "0", "--backend", "serial",
                    "--out", str(tmp_path / "b")], tmp_path)
    assert doc["summary"][0]["n"] == 15 and doc["summary"][0]["total_actions"] == 49


def test_python_factory_by_module_name_and_the_docs_example(tmp_path, monkeypatch):
    (tmp_path / "my_games_mod.py").write_text((EXAMPLES / "mygames.py").read_text())
    monkeypatch.syspath_prepend(str(tmp_path))
    game = make_game("py:my_games_mod:dice_sum,faces=3")
    assert (game.n_secrets, game.n_actions, game.is_guess_game) == (9, 3, False)
    # asking 1 then 2 identifies both dice (3 is what is left): at most 2 queries for every pair
    results = per_secret(game, "optimal")
    assert [r[2] for r in results] == game.secret_labels and max(r[0] for r in results) == 2
    assert per_secret(game, "ises") and all(r[1] for r in per_secret(game, "ises"))


# --- bad specs: one line, exit 2, no run folder ------------------------------------------------------------------

TABLE = '"a" = { x = "yes", y = "no" }\n"b" = { x = "no", y = "yes" }\n'
BAD_TOML = {
    "unknown secret": ('secrets = ["x", "y"]\nactions = ["a", "b"]\n[feedback.table]\n'
                       + '"a" = { x = "yes", y = "no", z = "no" }\n"b" = { x = "no", y = "yes" }\n',
                       "'z' is not a secret"),
    "missing entry": ('secrets = ["x", "y"]\nactions = ["a", "b"]\n[feedback.table]\n'
                      + '"a" = { x = "yes" }\n"b" = { x = "no", y = "yes" }\n',
                      "no outcome for action 'a' and secret 'y'"),
    "duplicate secret": ('secrets = ["x", "X"]\nactions = ["a", "b"]\n[feedback.table]\n' + TABLE, "duplicate secret"),
    "zero prior": ('secrets = ["x", "y"]\nactions = ["a", "b"]\n[prior]\n"*" = 0\n[feedback.table]\n' + TABLE,
                   "sum to 0"),
    "negative prior": ('secrets = ["x", "y"]\nactions = ["a", "b"]\n[prior]\nx = -1\ny = 2\n[feedback.table]\n'
                       + TABLE, ">= 0"),
    "prior misses a secret": ('secrets = ["x", "y"]\nactions = ["a", "b"]\n[prior]\nx = 1\n[feedback.table]\n'
                              + TABLE, "no weight for 'y'"),
    "unknown key": ('secrets = ["x"]\ncolour = 1\n[feedback]\nrule = "equality"\n', "unknown key(s) colour"),
    "unknown rule": ('secrets = ["x", "y"]\n[feedback]\nrule = "poker"\n', "rule must be one of"),
    "non-numeric higher-lower": ('secrets = ["x", "y"]\n[feedback]\nrule = "higher-lower"\n', "numeric secrets"),
    "win not an outcome": ('secrets = ["x", "y"]\nactions = ["a", "b"]\nwin = "bingo"\n[feedback.table]\n' + TABLE,
                           "not an outcome"),
    "guess without own action": ('secrets = ["x", "y"]\nactions = ["a", "b"]\nwin = "yes"\n[feedback.table]\n'
                                 + TABLE, "every secret must also be an action"),
    "win elsewhere": ('secrets = ["x", "y"]\nwin = "yes"\n[feedback.table]\n"x" = { x = "yes", y = "yes" }\n'
                      + '"y" = { x = "no", y = "yes" }\n', "and of nothing else"),
    "rows of the wrong size": ('secrets = ["x", "y"]\n[feedback]\nrows = [["yes"], ["no", "yes"]]\n', "one row per"),
    "not TOML": ("secrets = = 1\n", "not valid TOML"),
}


def _bad_cases():
    """(command, case, file text, needle): every case through play-ises, a sample through bench-ises (the same
    validation path)."""
    cases = [(kind, text, needle) for kind, (text, needle) in BAD_TOML.items()]
    cases += [("missing file", None, "game file not found"), ("binary file", b"\x00\xff" * 50, "not a UTF-8 text file")]
    for kind, text, needle in cases:
        yield "play-ises", kind, text, needle
        if kind in ("unknown secret", "zero prior", "win elsewhere", "missing file"):
            yield "bench-ises", kind, text, needle


@pytest.mark.parametrize("command, kind, text, needle", list(_bad_cases()), ids=[f"{c[0]}-{c[1]}" for c in _bad_cases()])
def test_bad_toml_spec_is_one_line_exit_2_no_run_folder(tmp_path, command, kind, text, needle):
    path = tmp_path / "game.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text)
    _assert_refused(tmp_path, command, f"file:{path}", needle)


def _assert_refused(tmp_path: Path, command: str, spec: str, needle: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    args = [command, spec] if command == "play-ises" else [command, "--game", spec, "--agent", "ises"]
    old = os.getcwd()
    os.chdir(work)
    try:
        result = runner.invoke(app, args)
    finally:
        os.chdir(old)
    output = result.output.strip()
    assert result.exit_code == 2, output
    assert needle in output and output.startswith("error:") and len(output.splitlines()) == 1, output
    assert list(work.iterdir()) == [], "a run folder was made"


@pytest.mark.parametrize("spec, needle", [
    ("py:no_such_module_xyz:make", "importing no_such_module_xyz failed"),
    (f"py:{Path(__file__).resolve()}:missing_factory", "has no callable 'missing_factory'"),
    (f"py:{Path(__file__).resolve()}:not_a_game", "must return a toolbox.ises.game_api.Game"),
    (f"py:{Path(__file__).resolve()}:make_higher_lower,m=3", "unknown parameter(s) m"),
    (f"py:{Path(__file__).resolve()}:make_higher_lower,n=many", "n"),
    ("py:nothing", "expected py:MODULE:FACTORY"),
    ("number:n=5,prior=/no/such/prior.csv", "prior file not found"),
    (f"file:{EXAMPLES / 'fruit.toml'},turns=3", "takes only the option prior=FILE"),
])
def test_bad_python_and_prior_specs(tmp_path, spec, needle):
    _assert_refused(tmp_path, "play-ises", spec, needle)


def test_weighted_state_sampling_follows_the_prior():
    """Sampled ISES draws from p(s | I): frequencies of 20,000 Philox draws match the renormalised prior."""
    from toolbox.ises.engine import sample_states_weighted

    weights = np.array([5.0, 0.0, 1.0, 2.0, 2.0])
    cand = np.array([0, 2, 3], np.int32)  # I without secret 4: p = 5/8, 1/8, 2/8
    draws = sample_states_weighted(cand, weights, 20_000, seed=7, stream=1, counter=0)
    freq = np.bincount(draws, minlength=5) / len(draws)
    assert freq[[1, 4]].sum() == 0 and np.allclose(freq[cand], [5 / 8, 1 / 8, 2 / 8], atol=0.012)


def test_bad_prior_files(tmp_path):
    cases = {"unknown": ("1,1\neleven,2\n*,1\n", "'eleven' is not a secret"),
             "twice": ("1,1\n1,2\n*,1\n", "given twice"), "nan": ("1,x\n2,1\n*,1\n", "is not a number"),
             "columns": ("1,1,1\n", "expected rows 'secret,weight'"), "zero": ("*,0\n", "sum to 0")}
    for name, (text, needle) in cases.items():
        (tmp_path / f"{name}.csv").write_text(text)
        with pytest.raises(UserInputError, match=needle.replace("(", r"\(")):
            make_game(f"number:n=11,prior={tmp_path / f'{name}.csv'}")
    (tmp_path / "zero3.csv").write_text("3,0\n*,1\n")
    work = tmp_path / "w2"
    work.mkdir()
    result = runner.invoke(app, ["play-ises", f"number:n=5,prior={tmp_path / 'zero3.csv'}", "--secret", "3",
                                 "--out", str(work / "run")])
    assert result.exit_code == 2 and "prior weight 0" in result.output and not (work / "run").exists()


def test_exact_solver_limit_and_beam():
    game = make_game("number:n=60,queries=true")
    with pytest.raises(UserInputError, match="more than 10 information sets"):
        ExactSolver(game, limit=10).total(game.support)
    assert ExactSolver(game, beam=2).total(game.support) >= binary_tree_total(60)
