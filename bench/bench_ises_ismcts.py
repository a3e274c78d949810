"""SO-ISMCTS iterations per ms: the Python reference against the C++ search, side by side (printed table, optional
JSON).

  .venv/bin/python bench/bench_ises_ismcts.py [--games wordle,mastermind] [--budget-ms 100] [--repeats 5] [--json F]

Each repeat plays one move from the first position (seed = repeat) with each implementation in turn, under the same
wall-clock budget; the table gives the medians of iterations and feedback evaluations per ms and their ratio, with
the load average before and after (the machine is shared: only the side-by-side ratio is meaningful).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

from toolbox.core.io import write_json


def main() -> None:
    from toolbox.ises.agents import SOISMCTS, NativeSOISMCTS, State
    from toolbox.ises.games import make_game

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", default="wordle,mastermind")
    parser.add_argument("--budget-ms", type=float, default=100.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    rows, load = [], [os.getloadavg()[0]]
    for spec in args.games.split(","):
        game = make_game(spec)
        _ = game.table  # built once, outside the timings
        rates = {"python": [], "c++": []}
        evals = {"python": [], "c++": []}
        for rep in range(args.repeats):
            for name, cls in (("python", SOISMCTS), ("c++", NativeSOISMCTS)):
                state = State(game, game.support, seed=rep)
                start = time.perf_counter()
                d = cls(budget_ms=args.budget_ms).decide(state)
                ms = (time.perf_counter() - start) * 1e3
                rates[name].append(d.info["iterations"] / ms)
                evals[name].append(d.info["evaluations"] / ms)
        row = {"game": game.name, "budget_ms": args.budget_ms, "repeats": args.repeats}
        for name, rate in rates.items():
            row[f"{name}_iterations_per_ms"] = statistics.median(rate)
            row[f"{name}_evaluations_per_ms"] = statistics.median(evals[name])
        row["speedup"] = row["c++_iterations_per_ms"] / row["python_iterations_per_ms"]
        rows.append(row)
        print(f"{game.name}: Python {row['python_iterations_per_ms']:.2f} it/ms "
              f"({row['python_evaluations_per_ms']:.0f} evaluations/ms), C++ {row['c++_iterations_per_ms']:.1f} "
              f"it/ms ({row['c++_evaluations_per_ms']:.0f} evaluations/ms): {row['speedup']:.0f}x", flush=True)
    load.append(os.getloadavg()[0])
    print(f"load average (1 min) before / after: {load[0]:.1f} / {load[1]:.1f} on {os.cpu_count()} cores")
    if args.json:
        write_json(args.json, {"rows": rows, "load_average": load, "cores": os.cpu_count()})


if __name__ == "__main__":
    main()
