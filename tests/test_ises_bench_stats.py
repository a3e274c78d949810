"""bench-ises statistics and design: Holm's correction, the paired effect sizes and intervals against closed forms,
the exact signed-rank test, the paired design (same secrets and seeds for every agent), equal evaluation budgets,
and the serial / process executors giving the same episodes for `play-ises --all` and `bench-ises`."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from scipy import stats
from toolbox.cli.main import app
from typer.testing import CliRunner

from toolbox.core.errors import UserInputError
from toolbox.ises import bench
from toolbox.ises.agents import RandomConsistent, State, make_agent
from toolbox.ises.games import make_game
from toolbox.ises.play import group_secrets, play_episode

runner = CliRunner()


def run_json(args):
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_holm_matches_a_hand_computed_example():
    # sorted: 0.005, 0.01, 0.03, 0.04 -> 4 x 0.005 = 0.02, 3 x 0.01 = 0.03, 2 x 0.03 = 0.06, max(0.06, 1 x 0.04)
    assert bench.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert bench.holm([0.5, 0.6]) == [1.0, 1.0]  # 2 x 0.5 = 1, then the running maximum
    assert bench.holm([0.2]) == [0.2]


def test_paired_effect_closed_forms():
    r = bench.paired_effect([1, 2, 3, 4, 5])
    sd = math.sqrt(2.5)
    half = stats.t.ppf(0.975, 4) * sd / math.sqrt(5)
    assert r["mean_diff"] == 3 and r["sd_diff"] == pytest.approx(sd)
    assert r["d_z"] == pytest.approx(3 / sd) and r["d_z"] == pytest.approx(1.8973666)
    assert (r["ci95_low"], r["ci95_high"]) == pytest.approx((3 - half, 3 + half))
    assert half == pytest.approx(1.9632432, abs=1e-6)
    assert r["rank_biserial"] == 1.0 and r["wilcoxon_t_plus"] == 15
    assert r["p_value"] == pytest.approx(2 / 32) and r["p_method"] == "exact"  # only all + or all - are as extreme
    assert r["p_value"] == pytest.approx(stats.wilcoxon([1, 2, 3, 4, 5], method="exact").pvalue)
    constant = bench.paired_effect([2, 2, 2])
    assert constant["d_z"] is None and constant["ci95_low"] == constant["ci95_high"] == 2


def test_signed_rank_exact_with_ties_and_zeros():
    # |d| = 2, 2, 2, 1: mid-ranks 3, 3, 3 and 1; T+ = 9 of 10; the null sums of subsets of {1, 3, 3, 3} are
    # 0, 1, 3 (x3), 4 (x3), 6 (x3), 7 (x3), 9, 10: |T - 5| >= 4 for 4 of 16 patterns
    t_plus, p, method = bench.wilcoxon_signed_rank([2, 2, 2, -1, 0, 0])
    assert (t_plus, p, method) == (9, 0.25, "exact")
    assert bench.paired_effect([2, 2, 2, -1])["rank_biserial"] == pytest.approx((9 - 1) / 10)
    assert bench.wilcoxon_signed_rank([0, 0]) == (0.0, 1.0, "all zero")
    big = np.random.default_rng(0).integers(-3, 6, 40)
    t_plus, p, method = bench.wilcoxon_signed_rank(big)
    ref = stats.wilcoxon(big[big != 0], correction=False, method="asymptotic").pvalue
    assert method == "normal" and p == pytest.approx(ref)


def test_paired_tests_pair_by_secret_and_correct_across_games():
    eps = []
    for g, shift in (("g1", 1), ("g2", 0)):
        for s in range(7):
            eps.append({"game": g, "agent": "a", "budget_ms": 0.0, "secret_index": s, "actions": 3 + s + shift})
            eps.append({"game": g, "agent": "b", "budget_ms": 0.0, "secret_index": 6 - s, "actions": 3 + (6 - s)})
    rows = {r["game"]: r for r in bench.paired_tests(eps[::-1])}  # the order of the episodes does not matter
    assert rows["g1"]["mean_diff"] == 1 and rows["g1"]["p_value"] == pytest.approx(2 / 128)
    assert rows["g2"]["mean_diff"] == 0 and rows["g2"]["p_value"] == 1.0
    assert rows["g1"]["p_holm"] == pytest.approx(2 * 2 / 128) and rows["g1"]["reject_05"]
    assert rows["g2"]["p_holm"] == 1.0 and not rows["g2"]["reject_05"]
    assert rows["g1"]["holm_family"] == "a vs b, 2 games"


def test_paired_design_same_secrets_and_seeds_for_every_agent():
    cfg = bench.BenchConfig(games=["mastermind:pegs=3,colors=4", "number:n=30"], agents=["ises", "random"],
                            n_games=7, backend="serial", chunk=3)
    eps = bench.run_bench(cfg, seed=11)
    for game in cfg.games:
        by_agent = {a: sorted(e["secret_index"] for e in eps if e["game"] == game and e["agent"] == a)
                    for a in cfg.agents}
        assert by_agent["ises"] == by_agent["random"] and len(by_agent["ises"]) == 7
        g = make_game(game)
        for e in (e for e in eps if e["game"] == game and e["agent"] == "random"):  # seed of secret s, any chunk
            s = e["secret_index"]
            assert e["actions"] == play_episode(g, RandomConsistent(), s, seed=11 * 1_000_003 + s)["actions"]
    rechunked = bench.run_bench(bench.BenchConfig(**{**cfg.__dict__, "chunk": 1}), seed=11)
    assert [e["actions"] for e in rechunked] == [e["actions"] for e in eps]


def test_equal_evaluation_budgets_follow_the_reference_move_by_move():
    cfg = bench.BenchConfig(games=["mastermind:pegs=3,colors=4"], agents=["ises", "ises-sampled:states=8"],
                            n_games=6, backend="serial", budget="evaluations")
    assert bench.evaluation_budgeted(cfg) == ["ises-sampled:states=8"] and bench.reference_agent(cfg) == "ises"
    eps = bench.run_bench(cfg, seed=3)
    ref = {e["secret_index"]: e["move_evaluations"] for e in eps if e["agent"] == "ises"}
    game = make_game(cfg.games[0])
    assert all(r == [game.n_actions * n for n in _sizes(game, e)] for e in eps if e["agent"] == "ises"
               for r in [e["move_evaluations"]])  # depth-1 ISES scores every action on every secret of I
    for e in (e for e in eps if e["agent"] != "ises"):
        budget = ref[e["secret_index"]]
        for t, used in enumerate(e["move_evaluations"]):
            cap = budget[t] if t < len(budget) else round(np.mean(budget))
            assert 0 < used <= max(cap, 8)
    fixed = bench.BenchConfig(**{**cfg.__dict__, "evaluations": 40})
    eps = bench.run_bench(fixed, seed=3)
    assert all(n <= 40 for e in eps if e["agent"] != "ises" for n in e["move_evaluations"])


def test_so_ismcts_is_held_to_evaluations_by_its_own_option():
    """SO-ISMCTS under budget=evaluations gets the count as its `evaluations` option (one search per move, the
    stopping rule inside it: tests/test_ises_ismcts_native.py); an agent without that option is refused."""
    cfg = bench.BenchConfig(games=["mastermind:pegs=3,colors=4"], agents=["ises", "so-ismcts:rollout=consistent"],
                            n_games=4, backend="serial", budget="evaluations")
    eps = bench.run_bench(cfg, seed=5)
    ref = {e["secret_index"]: e["move_evaluations"] for e in eps if e["agent"] == "ises"}
    game = make_game(cfg.games[0])
    for e in (e for e in eps if e["agent"] != "ises"):
        budget = ref[e["secret_index"]]
        for t, used in enumerate(e["move_evaluations"]):
            cap = budget[t] if t < len(budget) else round(np.mean(budget))
            # the most whole iterations that fit: within the cap, and above it only by a single iteration, which
            # costs at most horizon (2 x turn limit) x |I| evaluations
            assert 0 < used <= max(cap, 2 * game.turn_limit * game.n_secrets)
    state = State(game, game.support, seed=2)
    assert bench.decide_within("so-ismcts", 900, state).info == \
        make_agent("so-ismcts:evaluations=900").decide(state).info
    with pytest.raises(UserInputError, match="takes no evaluation budget"):
        bench.check_evaluation_budget("random")


def _sizes(game, episode):
    """|I| before each move of an episode, replayed from its entropies (uniform games: |I| = 2^H)."""
    return [round(2 ** h) for h in episode["entropies"][:-1]]


def test_group_secrets_keeps_first_feedback_classes_whole():
    game = make_game("mastermind:pegs=3,colors=4")
    agent = make_agent("ises")
    tasks = group_secrets(game, agent, game.support.tolist(), 4)
    assert sorted(s for t in tasks for s in t) == game.support.tolist() and len(tasks) <= 4
    first = agent.decide(bench_state(game)).action
    for t in tasks:
        for other in tasks:
            if other is not t:
                assert not {int(game.table[first, s]) for s in t} & {int(game.table[first, s]) for s in other}


def bench_state(game):
    from toolbox.ises.agents import State

    return State(game, game.support, [], 0, 0)


def test_play_all_process_backend_equals_serial(tmp_path):
    """The per-secret action counts of `play-ises --all` on two worker processes equal the serial pass: for ISES
    (tasks = first-feedback classes) through the CLI, for sampled ISES (contiguous chunks) through the library."""
    from toolbox.ises.pipeline import PlayConfig, build_agent, play_all_episodes

    runs = {}
    for backend in ("serial", "process"):
        out = tmp_path / backend
        doc = run_json(["play-ises", "mastermind:pegs=3,colors=4", "--all", "--backend", backend, "--workers", "2",
                        "--out", str(out)])
        with open(out / "episodes.csv") as f:
            runs[backend] = [(r["secret"], r["actions"]) for r in csv.DictReader(f)]
        assert doc["backend"] == backend and doc["workers"] == (1 if backend == "serial" else 2)
    assert runs["serial"] == runs["process"] and len(runs["serial"]) == 64
    game = make_game("mastermind:pegs=3,colors=4")
    sampled = {}
    for backend in ("serial", "process"):
        cfg = PlayConfig(game="mastermind:pegs=3,colors=4", agent="ises-sampled:states=8", all_secrets=True,
                         backend=backend, workers=2, seed=5)
        sampled[backend] = [e["actions"] for e in play_all_episodes(game, build_agent(game, cfg), cfg)]
    assert sampled["serial"] == sampled["process"]


def test_bench_cli_reports_the_paired_statistics(tmp_path):
    doc = run_json(["bench-ises", "--game", "number:n=40", "--game", "mastermind:pegs=3,colors=4", "--agent",
                    "ises", "--agent", "ises-sampled:states=4", "--n", "10", "--budget", "evaluations",
                    "--backend", "serial", "--out", str(tmp_path)])
    assert doc["budget"].startswith("feedback evaluations per move: ises-sampled:states=4 get")
    with open(tmp_path / "paired_tests.csv") as f:
        rows = list(csv.DictReader(f))
    cols = {"mean_diff", "ci95_low", "ci95_high", "ci_method", "d_z", "rank_biserial", "p_value", "p_method",
            "p_holm", "reject_05", "holm_family"}
    assert len(rows) == 2 and cols <= set(rows[0])
    episodes = [json.loads(line) for line in (tmp_path / "episodes.jsonl").read_text().splitlines()]
    for t in doc["paired_tests"]:
        a = {e["secret_index"]: e["actions"] for e in episodes if e["game"] == t["game"] and e["agent"] == "ises"}
        b = {e["secret_index"]: e["actions"] for e in episodes if e["game"] == t["game"] and e["agent"] != "ises"}
        assert sorted(a) == sorted(b) and len(a) == 10
        d = np.array([a[s] - b[s] for s in a], float)
        assert t["mean_diff"] == pytest.approx(d.mean())
        assert t["d_z"] is None if d.std() == 0 else t["d_z"] == pytest.approx(d.mean() / d.std(ddof=1))
    assert [t["p_holm"] for t in doc["paired_tests"]] == pytest.approx(
        bench.holm([t["p_value"] for t in doc["paired_tests"]]))
