"""Exact values of the ISES agents' scoring (toolbox/ises/agents.py) where mutation testing found them unchecked
(scripts/mutation.sh; docs/developing.md#mutation-testing): the tie-break rule, the ranking of alternatives, the
expected entropy reduction on the tabulated and the feedback path, depth-2 look-ahead and the sampled agent's
Miller-Madow correction, on number guessing where every partition is known by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from toolbox.core import rng
from toolbox.core.errors import UserInputError
from toolbox.ises.agents import (
    ISES,
    SOISMCTS,
    TIE_TOL,
    ExactSolver,
    Minimax,
    Optimal,
    RandomConsistent,
    SampledISES,
    State,
    pick,
    scores,
    split,
    top_alternatives,
    winning_mask,
)
from toolbox.ises.game_api import TableGame
from toolbox.ises.games import CounterfeitCoin, NumberGuess


def _gain(sizes) -> float:
    """E[dH] in bits of a uniform partition with these class sizes: log2 n - sum c log2 c / n."""
    n = sum(sizes)
    return math.log2(n) - sum(c * math.log2(c) for c in sizes if c) / n


def _number(n: int, tabulated: bool = True) -> NumberGuess:
    """A fresh game object (make_game caches its games, so none of them is modified here)."""
    game = NumberGuess(n=n)
    if not tabulated:
        game.__dict__["table"] = None   # the cached table: force the on-the-fly feedback path
    return game


def test_pick_tie_break_order():
    actions = np.array([3, 1, 2, 0])
    none = np.zeros(4, bool)
    # within TIE_TOL: tied, lowest action index wins
    assert pick(np.array([1.0, 1.0 + 0.5 * TIE_TOL, 0.5, -1.0]), actions, none) == 1
    # beyond the tolerance: the larger value
    assert pick(np.array([1.0 + 3 * TIE_TOL, 1.0, 0.5, -1.0]), actions, none) == 0
    # among the tied, an action that wins now comes first
    assert pick(np.array([1.0, 1.0, 1.0, 0.0]), actions, np.array([True, False, True, True])) == 2
    # a winning action that is not tied does not count
    assert pick(np.array([1.0, 1.0, 0.0, 0.0]), actions, np.array([False, False, True, True])) == 1
    assert pick(np.array([-np.inf, 2.0, -np.inf, 2.0]), actions, none) == 3


def test_top_alternatives_order_and_length():
    gains = np.array([0.5, 1.0, 1.0 + 0.1 * TIE_TOL, 0.2, 1.0, 0.7, 0.1])
    actions = np.array([6, 5, 4, 3, 2, 1, 0])
    wins = np.array([False, False, True, False, False, False, False])
    got = top_alternatives(gains, actions, wins)
    assert [a for a, _ in got] == [4, 2, 5, 1, 6]
    assert got[0] == (4, float(gains[2]))
    assert [a for a, _ in top_alternatives(gains, actions)] == [2, 4, 5, 1, 6]
    assert [a for a, _ in top_alternatives(gains, actions, wins, k=2)] == [4, 2]
    assert len(top_alternatives(gains, actions, k=10)) == 7


def test_winning_mask_guess_and_query_games():
    game = _number(7)
    cand = np.array([1, 4], np.int32)
    np.testing.assert_array_equal(winning_mask(game, cand, np.array([0, 1, 4, 6])), [False, True, True, False])
    coin = CounterfeitCoin(coins=3)
    assert not winning_mask(coin, np.arange(6, dtype=np.int32), np.arange(coin.n_actions)).any()


@pytest.mark.parametrize("tabulated", [True, False])
def test_scores_and_split_exact(tabulated):
    game = _number(7, tabulated)
    cand = np.arange(7, dtype=np.int32)
    gains, biggest, classes = scores(game, cand, np.arange(7))
    # guessing number k + 1 splits 1..7 into k lower, 1 correct, 6 - k higher
    np.testing.assert_allclose(gains, [_gain((k, 1, 6 - k)) for k in range(7)], atol=1e-12)
    np.testing.assert_array_equal(biggest, [6, 5, 4, 3, 4, 5, 6])
    np.testing.assert_array_equal(classes, [2, 3, 3, 3, 3, 3, 2])
    np.testing.assert_array_equal(split(game, cand, 3, 1), [4, 5, 6])
    np.testing.assert_array_equal(split(game, cand, 3, 2), [0, 1, 2])
    np.testing.assert_array_equal(split(game, cand[2:], 3, 0), [3])


@pytest.mark.parametrize("tabulated", [True, False])
def test_scores_weighted_by_the_prior(tabulated):
    game = _number(4, tabulated)
    game.prior = np.array([0.5, 0.25, 0.125, 0.125])
    cand = np.array([0, 1, 2, 3], np.int32)
    gains = scores(game, cand, np.array([0, 1]))[0]
    # guess 1: {1} 0.5 | {2, 3, 4} 0.5 -> 1 bit; guess 2: {1} 0.5, {2} 0.25, {3, 4} 0.25 -> 1.5 bits
    np.testing.assert_allclose(gains, [1.0, 1.5], atol=1e-12)
    # unweighted (a sample already drawn from the prior): class sizes 1 | 3 and 1, 1, 2
    np.testing.assert_allclose(scores(game, cand, np.array([0, 1]), weighted=False)[0],
                               [_gain((1, 3)), _gain((1, 1, 2))], atol=1e-12)


def test_ises_depth1_decision_exact():
    game = _number(7)
    d = ISES().decide(State(game, np.arange(7, dtype=np.int32)))
    assert d.action == 3 and d.score == pytest.approx(_gain((3, 1, 3)), abs=1e-12)
    # every action wins now; equal gains: the lower action first
    assert [a for a, _ in d.alternatives] == [3, 2, 4, 1, 5]
    assert d.states_evaluated == 7 and d.actions_evaluated == 7


@pytest.mark.parametrize("tabulated", [True, False])
def test_ises_depth2_q_values_exact(tabulated):
    game = _number(7, tabulated)
    cand = np.arange(7, dtype=np.int32)
    d = ISES(depth=2).decide(State(game, cand))
    # Q_2(a) = E[dH](a) + sum_o P(o|a) max_a' E[dH](a' | I_o); the best next split of m numbers is their middle
    best = {0: 0.0, 1: 0.0, 2: 1.0, 3: _gain((1, 1, 1)), 4: _gain((1, 1, 2)), 5: _gain((2, 1, 2)),
            6: _gain((2, 1, 3))}
    q = [_gain((k, 1, 6 - k)) + k / 7 * best[k] + (6 - k) / 7 * best[6 - k] for k in range(7)]
    assert d.action == int(np.argmax(np.round(q, 9)))
    assert d.score == pytest.approx(max(q), abs=1e-12)
    np.testing.assert_allclose(sorted((v for _, v in d.alternatives), reverse=True), sorted(q, reverse=True)[:5],
                               atol=1e-12)
    # 7 actions at the root, and 7 more for every class of two or more secrets under each of the 7
    classes = sum((k > 1) + (6 - k > 1) for k in range(7))
    assert d.actions_evaluated == 7 + 7 * classes
    # a beam of 1: only the best root action gets its look-ahead, the rest stay at -inf
    narrow = ISES(depth=2, beam=1).decide(State(game, cand))
    assert narrow.action == 3 and narrow.score == pytest.approx(q[3], abs=1e-12)
    assert [v for _, v in narrow.alternatives][1:] == [-np.inf] * 4
    assert narrow.actions_evaluated == 7 + 14


def test_ises_depth2_with_two_candidates_is_depth1():
    game = _number(7)
    d = ISES(depth=3).decide(State(game, np.array([2, 5], np.int32)))
    # |I| = 2: no look-ahead; guessing either candidate (a win now, lowest index) splits 1 | 1
    assert d.action == 2 and d.score == pytest.approx(1.0, abs=1e-12) and d.actions_evaluated == 7


def test_ises_depth3_recursion_exact():
    game = _number(7)
    d = ISES(depth=3).decide(State(game, np.arange(7, dtype=np.int32)))
    # with two more guesses after any first guess every number is identified: all first guesses tie at
    # H = log2 7 bits, and the lowest index wins (every guess can win now)
    assert d.action == 0 and d.score == pytest.approx(math.log2(7), abs=1e-12)
    np.testing.assert_allclose([v for _, v in d.alternatives], [math.log2(7)] * 5, atol=1e-12)
    assert [a for a, _ in d.alternatives] == [0, 1, 2, 3, 4]


def test_sampled_ises_miller_madow_and_exact_subset():
    from toolbox.ises import engine

    game = _number(7)
    cand = np.arange(7, dtype=np.int32)
    exact = SampledISES(states=7).decide(State(game, cand))
    assert exact.action == 3 and exact.score == pytest.approx(_gain((3, 1, 3)), abs=1e-12)
    # evaluations: 7 actions x 7 secrets feedback values
    assert exact.info == {"sampled": False, "evaluations": 49} and exact.states_evaluated == 7 and \
        exact.actions_evaluated == 7
    # 4 of 7 sampled (Philox stream 1 of the episode seed, at this step): unweighted scores of the sample plus
    # (K - 1) / (2 m ln 2), K the classes the sample shows
    state = State(game, cand, seed=11, step=2)
    sample = engine.sample_states(cand, 4, 11, 1, 2)
    g, _, classes = scores(game, sample, np.arange(7), weighted=False)
    for mm, want in ((True, g + (classes - 1) / (2 * 4 * math.log(2))), (False, g)):
        d = SampledISES(states=4, miller_madow=mm).decide(state)
        assert d.info == {"sampled": True, "evaluations": 28} and d.states_evaluated == 4 and \
            d.actions_evaluated == 7
        for a, v in d.alternatives:
            assert v == pytest.approx(want[a], abs=1e-12)
        assert d.score == pytest.approx(want.max(), abs=1e-12)
    # an action cap: only k actions are scored, the winning ones first (here actions 0 and 1)
    capped = SampledISES(states=7, actions=2).decide(State(game, cand))
    assert capped.actions_evaluated == 2 and sorted(a for a, _ in capped.alternatives) == [0, 1]
    assert capped.action == 1 and capped.score == pytest.approx(_gain((1, 1, 5)), abs=1e-12)


def test_minimax_exact():
    game = _number(7)
    d = Minimax().decide(State(game, np.arange(7, dtype=np.int32)))
    assert d.action == 3 and d.info == {"largest_class": 3}
    assert d.score == pytest.approx(_gain((3, 1, 3)), abs=1e-12) and d.actions_evaluated == 7


def test_sampled_ises_order_winning_first_then_shuffled_without_repeats():
    game = _number(7)
    d = SampledISES(states=7).decide(State(game, np.array([2, 5], np.int32)))
    # numbers 3 and 6 left: guessing either (a win now) or 4 / 5 splits them (1 bit); the other guesses do not
    assert d.actions_evaluated == 7
    assert d.alternatives == [(2, 1.0), (5, 1.0), (3, 1.0), (4, 1.0), (0, 0.0)]
    # a query game with an action cap: the first k of the Philox shuffle (stream 2, counter b = step)
    coin = CounterfeitCoin(coins=4)    # 9 weighings
    cand = np.arange(8, dtype=np.int32)
    capped = SampledISES(states=8, actions=3).decide(State(coin, cand, seed=5, step=1))
    want = np.argsort(rng.philox_uniform(5, 2, coin.n_actions, b=1), kind="stable")[:3]
    assert sorted(a for a, _ in capped.alternatives) == sorted(want.tolist())


def test_sampled_ises_budget_is_in_milliseconds():
    game = _number(7)
    d = SampledISES(states=7, budget_ms=60_000, chunk=2).decide(State(game, np.arange(7, dtype=np.int32)))
    assert d.actions_evaluated == 7     # a minute is plenty for 4 chunks


def test_random_consistent_draws_from_its_stream():
    game = _number(7)
    cand = np.array([1, 4, 6], np.int32)
    for seed in range(5):
        d = RandomConsistent().decide(State(game, cand, seed=seed, step=3))
        assert d.action == int(rng.numpy_generator(seed, 3, 3).choice(np.array([1, 4, 6])))
        assert d.states_evaluated == 3 and d.actions_evaluated == 1
    # query game: only weighings that split I are drawn (here: those with coin 1 on a pan)
    coin = CounterfeitCoin(coins=3)
    for seed in range(12):
        a = RandomConsistent().decide(State(coin, np.array([0, 1], np.int32), seed=seed)).action
        assert coin.pans[a, 0] != 0


def test_exact_solver_on_number_guessing():
    game = _number(7)
    cand = np.arange(7, dtype=np.int32)
    solver = ExactSolver(game)
    # K = 2 classes besides the win: at most 1, 2, 4 numbers are won by the 1st, 2nd, 3rd guess
    np.testing.assert_array_equal(solver.depths, [1, 2, 2, 3, 3, 3, 3])
    assert solver._lower(cand) == 17.0
    assert solver.total(cand) == 17.0                       # 1 + 2 * 2 + 4 * 3 guesses in all
    assert solver.best_action(cand) == (3, pytest.approx(17 / 7))
    assert solver.total(np.array([2], np.int32)) == 1.0
    np.testing.assert_array_equal(solver.options(cand), [3, 2, 4, 1, 5, 0, 6])
    # one action per partition, those that win now first: guesses 3 and 6, then 4 (5 splits the same way)
    np.testing.assert_array_equal(solver.options(np.array([2, 5], np.int32)), [2, 5, 3])
    assert solver.best_action(np.array([2, 5], np.int32)) == (2, pytest.approx(1.5))
    np.testing.assert_array_equal(ExactSolver(game, beam=1).options(cand), [3])
    with pytest.raises(UserInputError, match="more than 0 information sets"):
        ExactSolver(_number(7), limit=0).total(cand)


def test_exact_solver_on_a_query_game():
    coin = CounterfeitCoin(coins=3)
    solver = ExactSolver(coin)
    cand = np.arange(6, dtype=np.int32)
    # 6 twin classes, 3 outcomes: two weighings always; T = p(I) * 2 = 12 with unit weights
    assert solver.total(cand) == 12.0
    assert solver.total(np.array([0], np.int32)) == 0.0     # finished: declare
    assert solver._lower(np.array([0], np.int32)) == 0.0
    # the prefix-code bound: 6 log2 6 / log2 3 > the counting bound 2 * 3 + ... of K = 3
    fresh = ExactSolver(coin)   # (the memo of `solver` now holds the exact value)
    assert fresh._lower(cand) == pytest.approx(max(float(np.sort(np.ones(6)) @ fresh.depths[:6]),
                                                   6 * math.log2(6) / math.log2(3)), abs=1e-12)
    assert isinstance(Optimal().solver(coin), ExactSolver)
    assert Optimal().decide(State(coin, cand)).info == {"expected_to_go": pytest.approx(2.0)}


def test_so_ismcts_rewards_and_budget():
    game = _number(7)
    one = State(game, np.array([4], np.int32), seed=2)
    # 7 iterations expand the 7 root actions once each; the consistent rollout then guesses 5 at once: reward
    # (horizon - used + 1) / horizon with horizon 2 * turn_limit = 6: 1 for guessing 5 first, 5/6 otherwise
    d = SOISMCTS(iterations=7, rollout="consistent").decide(one)
    assert d.action == 4 and d.score == 1.0 and d.states_evaluated == 7 and d.actions_evaluated == 7
    assert len(d.alternatives) == 5
    for a, v in d.alternatives:
        assert v == (1.0 if a == 4 else pytest.approx(5 / 6, abs=1e-15))
    # evaluations, |I| = 1 per simulated action: 1 for guessing 5 first, 2 for each of the other 6 iterations
    assert d.info == {"iterations": 7, "evaluations": 13}
    # a budget in milliseconds: stops after about 30 ms, with iterations done
    timed = SOISMCTS(budget_ms=30).decide(State(game, np.arange(7, dtype=np.int32), seed=1))
    assert timed.info["iterations"] > 0 and timed.states_evaluated == timed.info["iterations"]


def _gain_of(codes: np.ndarray) -> float:
    """E[dH] in bits of the partition of a uniform I by these feedback codes."""
    _, counts = np.unique(codes, return_counts=True)
    return _gain(counts.tolist())


def _lookahead_q(game, cand, action, depth, beam) -> float:
    """Q_depth(action, I) written out (docs/ises.md, section 1.3 of the note): E[dH] plus, over the classes I_o of
    two or more secrets, P(o|a) times the best Q_{depth-1} among the `beam` actions of highest E[dH] on I_o (the
    single best at depth - 1 = 1), ties to the lower index."""
    codes = game.table[action, cand]
    total = _gain_of(codes)
    if depth <= 1:
        return total
    for o in np.unique(codes):
        sub = cand[codes == o]
        if len(sub) > 1:
            gains = np.array([_gain_of(game.table[a, sub]) for a in range(game.n_actions)])
            top = np.lexsort((np.arange(game.n_actions), -gains))[:beam if depth > 2 else 1]
            total += len(sub) / len(cand) * max(_lookahead_q(game, sub, int(a), depth - 1, beam) for a in top)
    return total


def _lookahead_work(game, cand, action, depth, beam) -> tuple[int, int]:
    """(actions scored, feedback values computed) below one root action of the look-ahead: splitting I costs |I|
    values, and scoring all |A| actions on a class I_o of two or more secrets |A| actions and |A| |I_o| values,
    plus the work below the actions kept there."""
    if depth <= 1:
        return 0, 0
    codes = game.table[action, cand]
    scored, values = 0, len(cand)
    for o in np.unique(codes):
        sub = cand[codes == o]
        if len(sub) > 1:
            scored, values = scored + game.n_actions, values + game.n_actions * len(sub)
            gains = np.array([_gain_of(game.table[a, sub]) for a in range(game.n_actions)])
            for a in np.lexsort((np.arange(game.n_actions), -gains))[:beam if depth > 2 else 1]:
                n, e = _lookahead_work(game, sub, int(a), depth - 1, beam)
                scored, values = scored + n, values + e
    return scored, values


def _random_query_game(seed: int) -> TableGame:
    table = np.random.default_rng(seed).integers(0, 2, size=(8, 40)).astype(np.uint8)
    return TableGame(f"random-{seed}", [f"s{i}" for i in range(40)], [f"a{i}" for i in range(8)], ["no", "yes"],
                     table)


@pytest.mark.parametrize("seed", [21, 22, 26, 30, 36])
def test_ises_depth3_beam_against_the_written_out_recursion(seed):
    # random yes/no query games (40 secrets, 8 questions) where the beam below the root matters: on these seeds
    # the best depth-2 question on some class is not the greedy one, so a look-ahead that kept only the greedy
    # question below the root (beam 1) would score the root's beam actions differently
    game, beam = _random_query_game(seed), 2
    cand = game.support
    d = ISES(depth=3, beam=beam).decide(State(game, cand))
    gains = np.array([_gain_of(game.table[a, cand]) for a in range(game.n_actions)])
    top = [int(a) for a in np.lexsort((np.arange(game.n_actions), -gains))[:beam]]
    want = {a: _lookahead_q(game, cand, a, 3, beam) for a in top}
    greedy_below = {a: _lookahead_q(game, cand, a, 3, 1) for a in top}
    assert any(abs(want[a] - greedy_below[a]) > 1e-3 for a in top)
    got = dict(d.alternatives)
    for a in top:
        assert got[a] == pytest.approx(want[a], abs=1e-12)
    best = max(want.values())
    assert d.score == pytest.approx(best, abs=1e-12)
    assert d.action == min(a for a in top if want[a] >= best - TIE_TOL)
    # the work: all |A| actions on I at the root, then the look-ahead below each root beam action
    work = [_lookahead_work(game, cand, a, 3, beam) for a in top]
    assert d.actions_evaluated == game.n_actions + sum(n for n, _ in work)
    assert d.info["evaluations"] == game.n_actions * len(cand) + sum(e for _, e in work)


def test_random_agent_when_no_legal_action_guesses_a_candidate():
    # a hard-mode rule that excludes every secret still in I: a uniform legal action, one action scored, no state
    class Excluding(TableGame):
        def legal_actions(self, history):
            return np.array([0, 5], np.int32)

    num = _number(6)
    game = Excluding("excluding", num.secret_labels, num.action_labels, [str(o) for o in range(num.n_outcomes)],
                     num.table, win=str(num.win))
    for seed in range(6):
        d = RandomConsistent().decide(State(game, np.array([2, 3], np.int32), seed=seed, step=1))
        assert d.action == int(rng.numpy_generator(seed, 3, 1).choice(np.array([0, 5])))
        assert (d.states_evaluated, d.actions_evaluated) == (0, 1)


def test_exact_solver_breaks_near_ties_relative_to_the_total():
    # number guessing 1..3 with weights (2000 - delta, 1000, 1000): guessing 2 first costs b + 2a + 2c = 7000 -
    # 2 delta, guessing 1 first a + 2b + 3c = 7000 - delta. With delta = 3e-6 the two are within the relative
    # tolerance 1e-9 x 7000 = 7e-6 (not within 1e-9 absolute): both count as optimal and the lower index, 1, is
    # played; a delta of 3e-5 separates them
    num = _number(3)
    for delta, action in ((3e-6, 0), (3e-5, 1)):
        game = TableGame("weighted", num.secret_labels, num.action_labels, [str(o) for o in range(num.n_outcomes)],
                         num.table, win=str(num.win), prior=np.array([2000 - delta, 1000, 1000]))
        solver = ExactSolver(game)
        cand = np.arange(3, dtype=np.int32)
        assert solver.total(cand) == pytest.approx(7000 - 2 * delta, abs=1e-9)
        assert solver.best_action(cand) == (action, pytest.approx((7000 - 2 * delta) / (4000 - delta)))


def test_sampled_ises_checks_its_budget_after_each_chunk_of_128_actions():
    # a budget already spent when the first chunk is scored: the anytime loop stops after exactly one chunk (the
    # default 128 actions, or the chunk asked for), and plays the best action scored so far
    from toolbox.ises.games import make_game

    game = make_game("mastermind")  # 1,296 actions
    state = State(game, game.support, seed=3)
    for kwargs, done in (({}, 128), ({"chunk": 50}, 50)):
        d = SampledISES(states=64, budget_ms=1e-9, **kwargs).decide(state)
        assert d.actions_evaluated == done and d.info["evaluations"] == done * 64
    assert SampledISES(states=64, budget_ms=60_000).decide(state).actions_evaluated == game.n_actions
    # the budget is in milliseconds: 0.01 ms is over once a chunk of 128 actions x 1,296 states is scored (about
    # 0.2 ms), although 0.01 s is not
    assert SampledISES(states=1296, budget_ms=0.01).decide(state).actions_evaluated == 128
    # and it is measured from the start of the decision: half a second is far more than scoring 1,296 x 64 takes
    assert SampledISES(states=64, budget_ms=500).decide(state).actions_evaluated == game.n_actions


def test_so_ismcts_time_budget_is_in_milliseconds_from_the_start_of_the_search():
    from toolbox.ises.games import make_game

    game = make_game("mastermind")
    state = State(game, game.support, seed=3)
    # 0.05 ms is over after the first iteration (one Python iteration over 1,296 secrets takes longer), 0.05 s is not
    assert SOISMCTS(budget_ms=0.05).decide(state).info["iterations"] <= 2
    # half a second is far more than 20 iterations take: the iteration cap binds
    assert SOISMCTS(budget_ms=500, iterations=20).decide(state).info["iterations"] == 20


def test_optimal_prepare_solves_from_the_start_on_both_solvers():
    # the Python solver (query games, priors) solves the root in prepare, so a search too large fails before a run;
    # the C++ solver (uniform guess games) has nothing to prepare
    coin = CounterfeitCoin(coins=3)
    agent = Optimal()
    agent.prepare(coin)
    solver = agent.solver(coin)
    assert isinstance(solver, ExactSolver) and solver.memo[coin.support.tobytes()] == 12.0
    number = _number(7)
    Optimal().prepare(number, first=3)
    assert Optimal().decide(State(number, np.arange(7, dtype=np.int32))).action == 3


def test_so_ismcts_scores_are_mean_rewards_of_the_root_actions():
    from toolbox.ises.games import make_game

    game = make_game("mastermind:pegs=2,colors=4")
    state = State(game, game.support, seed=5)
    agent = SOISMCTS(iterations=300, rollout="consistent")
    actions, visits, reward, *_ = agent.search(state)
    mean = {a: r / n for a, r, n in zip(actions, reward, visits)}
    d = agent.decide(state)
    assert max(visits) > 1
    assert d.score == mean[d.action] and all(v == mean[a] for a, v in d.alternatives)
    assert visits[actions.index(d.action)] == max(visits)
    # the alternatives: the five most visited root actions, ties in expansion order (not the expansion order)
    ranked = sorted(range(len(actions)), key=lambda i: -visits[i])[:5]
    assert [a for a, _ in d.alternatives] == [actions[i] for i in ranked] != actions[:5]


def test_sampled_ises_puts_at_most_half_a_chunk_of_winning_actions_first():
    # all 20 numbers still possible, so every guess can win now: the order starts with the first chunk // 2 = 2
    # winning actions by index, then follows the Philox shuffle (stream 2, counter = step); actions=5 keeps 5
    game = _number(20)
    state = State(game, np.arange(20, dtype=np.int32), seed=7, step=2)
    d = SampledISES(states=20, actions=5, chunk=4).decide(state)
    shuffled = np.argsort(rng.philox_uniform(7, 2, 20, b=2), kind="stable")
    want = [0, 1] + [int(a) for a in shuffled if a not in (0, 1)][:3]
    assert sorted(a for a, _ in d.alternatives) == sorted(want)
    # seed 5 (the shuffle starts 13, 18, 10): chunk 1 still puts one winning action first, chunk 5 two
    state = State(game, np.arange(20, dtype=np.int32), seed=5, step=2)
    shuffled = np.argsort(rng.philox_uniform(5, 2, 20, b=2), kind="stable")
    for chunk, first, kept in ((1, [0], 3), (5, [0, 1], 4)):
        d = SampledISES(states=20, actions=kept, chunk=chunk).decide(state)
        want = first + [int(a) for a in shuffled if a not in first][:kept - len(first)]
        assert sorted(a for a, _ in d.alternatives) == sorted(want)


def test_sampled_ises_with_a_prior_scores_an_unweighted_sample_drawn_from_it():
    # with a prior and |I| > states, the states are drawn from p(s | I) (stream 1, counter = step) and the sample is
    # scored unweighted (weighting it again would count the prior twice), with the Miller-Madow term
    from toolbox.ises import engine
    from toolbox.ises.games import make_game

    mm = make_game("mastermind:pegs=2,colors=4")
    prior = 1.0 + np.arange(mm.n_secrets) % 4
    game = TableGame("mm-prior", mm.secret_labels, mm.action_labels, [str(o) for o in range(mm.n_outcomes)],
                     mm.table, win=str(mm.win), prior=prior)
    cand = game.support
    state = State(game, cand, seed=9, step=1)
    d = SampledISES(states=10).decide(state)
    sample = engine.sample_states_weighted(cand, prior, 10, 9, 1, 1)
    g, _, classes = scores(game, sample, np.arange(game.n_actions, dtype=np.int32), weighted=False)
    g = g + (classes - 1) / (2 * 10 * math.log(2))
    assert d.info["sampled"] and d.score == pytest.approx(float(g.max()), abs=1e-12)
    assert [v for _, v in d.alternatives] == pytest.approx(sorted(g, reverse=True)[:5], abs=1e-12)


def test_exact_solver_tolerance_has_a_floor_of_1e9_below_a_total_of_one():
    # weights (0.2 - delta, 0.1, 0.1) on numbers 1..3: guessing 2 first costs 0.7 - 2 delta, guessing 1 first
    # 0.7 - delta; below a total of 1 the tolerance is 1e-9 (absolute): a gap of 0.8e-9 ties, 1.5e-9 does not
    num = _number(3)
    for delta, action in ((0.8e-9, 0), (1.5e-9, 1)):
        game = TableGame("light", num.secret_labels, num.action_labels, [str(o) for o in range(num.n_outcomes)],
                         num.table, win=str(num.win), prior=np.array([0.2 - delta, 0.1, 0.1]))
        assert ExactSolver(game).best_action(np.arange(3, dtype=np.int32))[0] == action
        d = Optimal().decide(State(game, np.arange(3, dtype=np.int32)))
        assert d.action == action and (d.states_evaluated, d.actions_evaluated) == (3, 0)


def test_reference_optimal_total_uses_actions_that_cannot_win():
    # four secrets; guessing one wins or says "miss"; "ask" can never win but names the secret. Optimal: ask, then
    # guess: 2 actions per secret, 8 in all; guessing alone would need 1 + 2 + 3 + 4 = 10
    from toolbox.ises.agents import optimal_total_reference

    table = np.array([[0 if a == s else 1 for s in range(4)] for a in range(4)] + [[5, 4, 3, 2]], np.uint8)
    game = TableGame("ask", ["A", "B", "C", "D"], ["A", "B", "C", "D", "ASK"],
                     ["win", "miss", "2", "3", "4", "5"], table, win="win")
    assert optimal_total_reference(game, game.support) == 8
    assert optimal_total_reference(game, game.support, first=0) == 10


def test_so_ismcts_breaks_ties_of_visits_and_reward_by_the_lower_action():
    # a horizon of one action on Mastermind: two iterations expand two root actions once each, and both miss
    # (reward 0): the tie goes to the lower action index, whatever the expansion order
    from toolbox.ises.games import make_game

    game = make_game("mastermind")
    reversed_order = 0
    for seed in range(12):
        state = State(game, game.support, seed=seed)
        agent = SOISMCTS(iterations=2, max_actions=1)
        actions, visits, reward, *_ = agent.search(state)
        if list(visits) == [1, 1] and list(reward) == [0.0, 0.0]:
            assert agent.decide(state).action == min(actions)
            reversed_order += actions[0] > actions[1] and min(actions) > 0
    assert reversed_order > 0


def test_ises_depth2_default_beam_keeps_eight_root_actions():
    # 7 copies of the most informative question and 3 others on 12 secrets (3 answers): the 8th question by E[dH]
    # has the best two-step value, so the default beam (8) plays it and a beam of 7 would not see it
    rows = [[2, 1, 1, 0, 0, 0, 0, 0, 0, 2, 1, 2], [1, 1, 2, 2, 1, 1, 1, 2, 0, 2, 2, 0],
            [1, 2, 1, 0, 2, 2, 2, 0, 0, 2, 0, 1], [0, 0, 1, 1, 1, 0, 0, 0, 0, 2, 1, 1]]
    table = np.array([rows[2]] * 7 + [rows[0], rows[1], rows[3]], np.uint8)
    game = TableGame("copies", [f"s{i}" for i in range(12)], [f"q{i}" for i in range(10)], ["x", "y", "z"], table)
    cand = game.support
    gains = np.array([_gain_of(table[a, cand]) for a in range(10)])
    order = [int(a) for a in np.lexsort((np.arange(10), -gains))]
    assert order[:7] == list(range(7))
    q = {a: _lookahead_q(game, cand, a, 2, 8) for a in order[:8]}
    d = ISES(depth=2).decide(State(game, cand))
    assert d.action == order[7] and d.score == pytest.approx(q[order[7]], abs=1e-12)
    assert q[order[7]] > max(q[a] for a in order[:7]) + 0.1
    # with 8 copies that question is 9th: the default beam does not reach it and plays the first copy
    table9 = np.array([rows[2]] * 8 + [rows[0], rows[1], rows[3]], np.uint8)
    game9 = TableGame("copies9", [f"s{i}" for i in range(12)], [f"q{i}" for i in range(11)], ["x", "y", "z"], table9)
    d9 = ISES(depth=2).decide(State(game9, cand))
    assert d9.action == 0 and d9.score == pytest.approx(_lookahead_q(game9, cand, 0, 2, 8), abs=1e-12)


def test_cached_play_of_a_seeded_agent_equals_independent_episodes():
    # only deterministic agents share decisions across secrets: sampled ISES, the random agent and SO-ISMCTS draw
    # from each secret's own seed, so every episode of play_secrets is the episode played alone
    from toolbox.ises.games import make_game
    from toolbox.ises.play import play_episode, play_secrets

    game = make_game("mastermind:pegs=3,colors=4")
    secrets = [3, 17, 40, 58]
    for make in (lambda: SampledISES(states=8), RandomConsistent, lambda: SOISMCTS(iterations=30)):
        together = play_secrets(game, make(), secrets, seed=2)
        alone = [play_episode(game, make(), s, seed=2 * 1_000_003 + s, details=False) for s in secrets]
        assert [e["entropies"] for e in together] == [e["entropies"] for e in alone]
        firsts = {make().decide(State(game, game.support, seed=2 * 1_000_003 + s)).action for s in secrets}
        assert len(firsts) > 1  # the first moves differ by seed, so a shared cache would change the episodes


def _brute_query_total(game, cand) -> float:
    """T(I) of a uniform query game by exhaustive search: 0 once I is one twin class, else |I| + min over the
    actions that split I of the children's T."""
    import functools

    @functools.lru_cache(None)
    def total(c):
        c = np.array(c, np.int32)
        if game.finished(c):
            return 0.0
        best = math.inf
        for a in range(game.n_actions):
            row = game.table[a, c]
            if (row != row[0]).any():
                best = min(best, len(c) + sum(total(tuple(c[row == o])) for o in np.unique(row)))
        return best

    return total(tuple(int(s) for s in cand))


@pytest.mark.parametrize("rows,want", [
    ([[2, 2, 2, 2, 2, 1, 1], [0, 1, 1, 2, 2, 2, 2], [1, 1, 2, 1, 1, 2, 2], [2, 0, 2, 0, 0, 1, 1],
      [2, 0, 2, 2, 2, 1, 1]], 11.0),
    ([[2, 1, 1, 0, 0, 0, 0], [1, 0, 1, 0, 0, 0, 0], [0, 2, 0, 0, 0, 1, 1], [1, 1, 0, 1, 1, 2, 2],
      [0, 0, 1, 2, 2, 1, 1]], None),
])
def test_exact_solver_on_a_query_game_with_twins(rows, want):
    # 7 secrets, 5 three-answer questions; secrets 3 = 4 and 5 = 6 answer every question alike (twin classes): the
    # bound must count twin classes, not secrets, or it overestimates a set holding twins and prunes the optimum
    game = TableGame("twins", [f"s{i}" for i in range(7)], [f"q{i}" for i in range(5)], ["a", "b", "c"],
                     np.array(rows, np.uint8))
    assert len(np.unique(game.twin_class)) == 5
    brute = _brute_query_total(game, game.support)
    assert want is None or brute == want
    assert ExactSolver(game).total(game.support) == brute
    assert ExactSolver(game)._lower(np.array([3, 4], np.int32)) == 0.0  # one twin class: nothing left to ask


def test_exact_solver_counting_levels():
    # guess game: K = the most classes one action makes besides the win; an action that cannot win counts all its
    # classes. "ask" tells 5 secrets apart in 4 classes (K = 4): at most 1 secret is won by the 1st action and 4 by
    # the 2nd, so the levels are 1, 2, 2, 2, 2 (with K = 3 the fifth would sit at 3)
    table = np.array([[0 if a == s else 1 for s in range(5)] for a in range(5)] + [[2, 3, 4, 5, 5]], np.uint8)
    game = TableGame("ask5", list("ABCDE"), [*"ABCDE", "ASK"], ["win", "miss", "2", "3", "4", "5"], table, win="win")
    assert ExactSolver(game).depths.tolist() == [1, 2, 2, 2, 2]
    # query game: at most K^d twin classes are told apart by d queries; the counterfeit coin among 4 (8 secrets,
    # K = 3 pan outcomes): 3 at depth 1, the other 5 at depth 2
    assert ExactSolver(CounterfeitCoin(coins=4)).depths.tolist() == [1, 1, 1, 2, 2, 2, 2, 2]


def test_agent_defaults_without_a_budget():
    # make_agent without a budget: sampled ISES scores every action (no time limit), and SO-ISMCTS's default
    # exploration constant is the documented c = 0.7
    from toolbox.ises.agents import make_agent
    from toolbox.ises.games import make_game

    game = make_game("mastermind")
    state = State(game, game.support, seed=1)
    assert make_agent("ises-sampled:states=8").decide(state).actions_evaluated == game.n_actions
    assert SampledISES().decide(state).states_evaluated == 256  # the default sample of the 1,296 codes
    small = make_game("mastermind:pegs=2,colors=4")
    one = State(small, small.support, seed=4)
    assert SOISMCTS(iterations=200).search(one) == SOISMCTS(iterations=200, c=0.7).search(one)
    assert SOISMCTS(iterations=200).search(one) != SOISMCTS(iterations=200, c=1.7).search(one)


def test_so_ismcts_selection_stops_at_the_horizon():
    # a horizon of 2 actions and enough iterations to grow the tree past it: the reference and the C++ search
    # still build the same tree (selection never takes a third action)
    from toolbox.core import native
    from toolbox.ises.agents import NativeSOISMCTS
    from toolbox.ises.games import make_game

    if not hasattr(native.module(), "ises_so_ismcts"):
        pytest.skip("toolbox._core has no ises_so_ismcts")
    game = make_game("number:n=7")
    state = State(game, game.support, seed=6)
    ref = SOISMCTS(iterations=400, max_actions=2, rollout="consistent").search(state)
    fast = NativeSOISMCTS(iterations=400, max_actions=2, rollout="consistent").search(state)
    assert list(fast[0]) == ref[0] and list(fast[1]) == ref[1] and ref[3:] == tuple(fast[3:])
    np.testing.assert_allclose(fast[2], ref[2], rtol=1e-12, atol=0)


def test_state_defaults_and_the_inclusive_tie_edge():
    # a State without seed and step is move 0 of seed 0: the random agent draws from Philox (0, stream 3, 0)
    game = _number(100)
    cand = np.arange(100, dtype=np.int32)
    assert RandomConsistent().decide(State(game, cand)).action == int(rng.numpy_generator(0, 3, 0).choice(cand)) == 50
    # two values exactly TIE_TOL apart are tied: the lower action index wins
    low = 1.0 - TIE_TOL
    assert pick(np.array([low, 1.0]), np.array([0, 1]), np.zeros(2, bool)) == 0


def test_so_ismcts_on_a_query_game_with_twins_declares_the_first_secret():
    # query games end when I is one twin class; the player declares min(I). Here 3 = 4 and 5 = 6 are twins, so
    # which member is declared decides the reward: the reference and the C++ search build the same tree
    from toolbox.core import native
    from toolbox.ises.agents import NativeSOISMCTS

    if not hasattr(native.module(), "ises_so_ismcts"):
        pytest.skip("toolbox._core has no ises_so_ismcts")
    rows = [[2, 2, 2, 2, 2, 1, 1], [0, 1, 1, 2, 2, 2, 2], [1, 1, 2, 1, 1, 2, 2], [2, 0, 2, 0, 0, 1, 1],
            [2, 0, 2, 2, 2, 1, 1]]
    game = TableGame("twins", [f"s{i}" for i in range(7)], [f"q{i}" for i in range(5)], ["a", "b", "c"],
                     np.array(rows, np.uint8))
    for seed in range(4):
        state = State(game, game.support, seed=seed)
        ref = SOISMCTS(iterations=200).search(state)
        fast = NativeSOISMCTS(iterations=200).search(state)
        assert list(fast[0]) == ref[0] and list(fast[1]) == ref[1] and ref[3:] == tuple(fast[3:])
        np.testing.assert_allclose(fast[2], ref[2], rtol=1e-12, atol=0)


def test_make_agent_gives_the_time_budget_only_to_budgeted_agents():
    from toolbox.ises.agents import make_agent

    assert isinstance(make_agent("ises", budget_ms=10), ISES) and isinstance(make_agent("minimax", 10), Minimax)
    assert make_agent("ises-sampled", budget_ms=10).budget_ms == 10.0
    assert make_agent("so-ismcts:iterations=5", budget_ms=10).budget_ms == 0.0  # a count budget stays exact


def test_exact_solver_with_a_win_code_that_is_not_the_first_outcome():
    # the "ask" game again, its outcomes in another order (win = code 5, miss = 4) and "ask" answering 0..3 in
    # ascending order: ask, then guess is optimal (8), guessing alone costs 10
    table = np.array([[5 if a == s else 4 for s in range(4)] for a in range(4)] + [[0, 1, 2, 3]], np.uint8)
    game = TableGame("ask", list("ABCD"), [*"ABCD", "ASK"], ["0", "1", "2", "3", "miss", "win"], table, win="win")
    cand = game.support
    assert ExactSolver(game).total(cand) == 8.0
    assert ExactSolver(game).best_action(cand) == (4, pytest.approx(2.0))
    from toolbox.ises.agents import optimal_total_reference

    assert optimal_total_reference(game, cand) == 8


def test_optimal_is_exact_by_default():
    # a query game with twins where keeping only the best question by E[dH] (beam 1) costs 13 instead of 11
    rows = [[0, 0, 2, 1, 1, 1, 1], [0, 1, 0, 1, 1, 1, 1], [1, 0, 2, 2, 2, 1, 1], [1, 0, 1, 1, 1, 2, 2],
            [2, 0, 1, 2, 2, 2, 2]]
    game = TableGame("twins-11", [f"s{i}" for i in range(7)], [f"q{i}" for i in range(5)], ["a", "b", "c"],
                     np.array(rows, np.uint8))
    assert _brute_query_total(game, game.support) == 11.0
    assert ExactSolver(game, beam=1).total(game.support) == 13.0
    assert Optimal().solver(game).total(game.support) == 11.0


def test_exact_solver_best_action_checks_every_child():
    # a 6-secret guess game where guessing S1 starts with a cheap class but costs more in all (14 > 13): only S2
    # is optimal, so an action must be judged on the sum over all its classes, not on the first ones
    from toolbox.ises.agents import optimal_total_reference

    rows = [[0, 3, 3, 3, 3, 2], [1, 0, 3, 1, 1, 2], [3, 1, 0, 2, 1, 2], [2, 1, 3, 0, 2, 2], [1, 1, 2, 1, 0, 1],
            [1, 3, 2, 2, 2, 0]]
    labels = [f"S{i}" for i in range(6)]
    game = TableGame("six", labels, labels, ["win", "a", "b", "c"], np.array(rows, np.uint8), win="win")
    cand = game.support
    assert optimal_total_reference(game, cand) == 13 and optimal_total_reference(game, cand, first=1) > 13
    assert ExactSolver(game).best_action(cand) == (2, pytest.approx(13 / 6))


def test_exact_solver_with_a_skewed_prior_against_exhaustive_search():
    # the counting bound pairs the heaviest secrets with the shallowest levels (a valid lower bound); pairing them
    # the other way overestimates and prunes the optimum on this prior-weighted guess game
    import functools

    rows = [[0, 2, 2, 2, 2, 2], [2, 0, 1, 2, 1, 1], [2, 2, 0, 1, 2, 2], [1, 2, 1, 0, 1, 1], [2, 1, 1, 2, 0, 2],
            [2, 1, 2, 2, 2, 0]]
    prior = np.array([0.010475851424879234, 0.24815741904554323, 0.3726596790658627, 0.8456874266621811,
                      0.3177374862402523, 0.00551951737843981])
    labels = [f"S{i}" for i in range(6)]
    table = np.array(rows, np.uint8)
    game = TableGame("skewed", labels, labels, ["win", "a", "b"], table, win="win", prior=prior)

    @functools.lru_cache(None)
    def total(c):  # sum of p(s) x guesses over I: each guess costs p(I) and splits I by its feedback
        c = np.array(c)
        if len(c) == 1:
            return float(prior[c].sum())
        return float(prior[c].sum()) + min(sum(total(tuple(c[table[a, c] == o])) for o in np.unique(table[a, c])
                                               if o != 0)
                                           for a in range(6) if (table[a, c] != table[a, c][0]).any() or a in c)

    best = total(tuple(range(6)))
    assert ExactSolver(game).total(game.support) == pytest.approx(best, rel=1e-12)
    assert ExactSolver(game).best_action(game.support) == (3, pytest.approx(best / prior.sum(), rel=1e-12))
