"""Benchmarks of the ISES information-set engine (printed table, optional JSON).

  .venv/bin/python bench/bench_ises.py [--json out.json] [--parts table,wordle,mastermind,optimal] [--beam K]

- table: the Wordle feedback table (12,972 guesses x 2,315 answers) with the C++ kernel on 1 thread and on all
  threads, against the numpy reference (measured on a slice and scaled, it is ~100x slower).
- wordle: depth-1 ISES over all 2,315 answers (all guesses allowed) as `play-ises wordle --all` plays them: serial,
  and on two worker processes (tasks = classes of the first feedback).
- mastermind: ISES over all 1,296 Mastermind secrets with the native engine and with TOOLBOX_KERNELS=reference.
- optimal: the branch-and-bound solver, exact with the symmetry reduction on Mastermind (first guess 1123) and
  Bulls and Cows (0123), beam 8 on Wordle (SALET first); then Mastermind exact with and without symmetry.
The doddle comparison (bench/bench_ises_doddle.py) runs doddle in its own virtual environment (numpy < 2).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

from toolbox.core.io import write_json


def timed(fn, repeat: int = 1):
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def bench_table() -> list[dict]:
    from toolbox.ises import engine
    from toolbox.ises.games import make_game

    game = make_game("wordle")
    guesses, answers = game.words, game.words[game.secret_action]
    rows = []
    for threads in ("1", ""):
        code = ("import time, os; from toolbox.ises.games import make_game; from toolbox.ises import engine; "
                "g = make_game('wordle'); w, a = g.words, g.words[g.secret_action]; engine.wordle_table(w[:10], a); "
                "t, c = time.perf_counter(), time.process_time(); engine.wordle_table(w, a); "
                "print(time.perf_counter() - t, time.process_time() - c)")
        env = {**os.environ, "TOOLBOX_NUM_THREADS": threads} if threads else dict(os.environ)
        runs = [tuple(map(float, subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                                check=True).stdout.split())) for _ in range(3)]
        wall, cpu = min(runs)
        rows.append({"bench": "wordle table 12972x2315", "impl": f"C++ {'1 thread' if threads else 'all threads'}",
                     "seconds": wall, "cpu_seconds": cpu})
    part = 400
    cpu = time.process_time()
    seconds, _ = timed(lambda: engine.wordle_table_reference(guesses[:part], answers))
    rows.append({"bench": "wordle table 12972x2315", "impl": f"numpy reference (scaled from {part} rows)",
                 "seconds": seconds * len(guesses) / part,
                 "cpu_seconds": (time.process_time() - cpu) * len(guesses) / part})
    return rows


def bench_wordle() -> list[dict]:
    """`play-ises wordle --all` (depth-1 ISES, its decision cache), serial and on two worker processes."""
    from toolbox.ises.games import make_game
    from toolbox.ises.pipeline import PlayConfig, build_agent, play_all_episodes

    game = make_game("wordle")
    game.table
    rows = []
    for backend, workers in (("serial", 1), ("process", 2)):
        cfg = PlayConfig(game="wordle", agent="ises", all_secrets=True, backend=backend, workers=workers)
        seconds, eps = timed(lambda: play_all_episodes(game, build_agent(game, cfg), cfg))
        a = np.array([e["actions"] for e in eps])
        rows.append({"bench": "wordle ISES depth 1, all 2315 answers", "impl": f"{backend} x{workers}",
                     "seconds": seconds, "total": int(a.sum()), "mean": float(a.mean()), "max": int(a.max()),
                     "win_rate": float(np.mean([e["win"] for e in eps]))})
    return rows


def bench_mastermind() -> list[dict]:
    rows = []
    for kernels in ("native", "reference"):
        code = ("import time, numpy as np; from toolbox.ises.games import make_game; from toolbox.ises.agents "
                "import ISES; from toolbox.ises.play import play_episode; g = make_game('mastermind'); g.table; "
                "t = time.perf_counter(); c = {}; a = [play_episode(g, ISES(), s, cache=c, details=False)['actions'] "
                "for s in range(1296)]; print(time.perf_counter() - t, sum(a))")
        out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "TOOLBOX_KERNELS": kernels},
                             capture_output=True, text=True, check=True).stdout.split()
        rows.append({"bench": "mastermind ISES, all 1296 secrets", "impl": kernels, "seconds": float(out[0]),
                     "total": int(out[1])})
    return rows


def bench_optimal(beam: int | None) -> list[dict]:
    from toolbox.core import native
    from toolbox.ises.games import make_game

    def solver(game, width, symmetric=True):
        codes, colors = (game.code_symmetry or (None, 0)) if symmetric else (None, 0)
        return native.module().IsesOptimalSolver(game.table, game.n_outcomes, game.win, game.secret_action, width,
                                                 codes, colors)

    rows = []
    for spec, first, reference, default_beam in (("mastermind", "1123", 5625, 0), ("wordle", "SALET", 7920, 8),
                                                 ("bulls-cows", "0123", 26274, 0)):
        width = default_beam if beam is None else beam
        game = make_game(spec)
        s = solver(game, width)
        cand = np.arange(game.n_secrets, dtype=np.int32)
        seconds, total = timed(lambda: s.solve(cand, game.action_index(first), np.zeros(0, np.int32)))
        rows.append({"bench": f"optimal {spec} first {first}", "impl": f"C++ B&B {'beam %d' % width if width else 'exact'}"
                     f"{' + symmetry' if game.code_symmetry else ''}", "seconds": seconds, "total": int(total),
                     "mean": total / game.n_secrets, "reference": reference, "nodes": s.nodes})
        print(rows[-1], flush=True)
    # the symmetry reduction against the same exact search without it, on a game both finish
    game = make_game("mastermind")
    cand = np.arange(game.n_secrets, dtype=np.int32)
    for symmetric in (False, True):
        s = solver(game, 0, symmetric)
        seconds, total = timed(lambda: s.solve(cand, game.action_index("1123"), np.zeros(0, np.int32)))
        rows.append({"bench": "optimal mastermind first 1123 (ablation)", "seconds": seconds, "total": int(total),
                     "impl": "C++ B&B exact" + (" + symmetry" if symmetric else ""), "nodes": s.nodes})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json")
    parser.add_argument("--parts", default="table,wordle,mastermind,optimal")
    parser.add_argument("--beam", type=int, default=None, help="solver beam for all games (default: exact for "
                        "Mastermind and Bulls and Cows, 8 for Wordle)")
    args = parser.parse_args()
    parts = {"table": bench_table, "wordle": bench_wordle, "mastermind": bench_mastermind,
             "optimal": lambda: bench_optimal(args.beam)}
    rows = []
    for name in args.parts.split(","):
        rows += parts[name]()
    print(f"{'bench':45s} {'impl':38s} {'seconds':>9s}  result")
    for r in rows:
        extra = {k: v for k, v in r.items() if k not in ("bench", "impl", "seconds")}
        print(f"{r['bench']:45s} {r['impl']:38s} {r['seconds']:9.3f}  {extra}")
    if args.json:
        write_json(args.json, rows)


if __name__ == "__main__":
    main()
