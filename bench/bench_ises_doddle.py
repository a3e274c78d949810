"""Side-by-side Wordle entropy solving: toolbox ISES against doddle 1.6.0 on the same answers (CPU seconds).

doddle needs numpy < 2, so it runs in its own virtual environment:
  python -m venv /tmp/dvenv && /tmp/dvenv/bin/pip install doddle==1.6.0 "numpy<2"
  TOOLBOX_NUM_THREADS=1 .venv/bin/python bench/bench_ises_doddle.py --doddle-python /tmp/dvenv/bin/python --games 30
"""
from __future__ import annotations

import argparse
import json
import subprocess
import time

DODDLE = """
import json, sys, time
t0 = time.perf_counter()
from doddle import Doddle
d = Doddle(size=5, solver_type="ENTROPY")
answers, first = json.loads(sys.argv[1]), sys.argv[2]
d(answer=answers[0], guess=first)  # warm-up: dictionaries, numba compilation
t1, c1 = time.perf_counter(), time.process_time()
guesses = sum(len(d(answer=a, guess=first)) for a in answers)
print(json.dumps({"startup_s": t1 - t0, "wall_s": time.perf_counter() - t1, "cpu_s": time.process_time() - c1,
                  "guesses": guesses}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--doddle-python", required=True)
    parser.add_argument("--games", type=int, default=30)
    parser.add_argument("--first", default="SOARE")
    args = parser.parse_args()

    from toolbox.ises.agents import ISES
    from toolbox.ises.games import make_game
    from toolbox.ises.pipeline import FixedFirst
    from toolbox.ises.play import play_episode

    game = make_game("wordle")
    answers = game.secret_labels[:args.games]
    out = subprocess.run([args.doddle_python, "-c", DODDLE, json.dumps(answers), args.first], capture_output=True,
                         text=True, check=True)
    doddle = json.loads(out.stdout.strip().splitlines()[-1])
    _ = game.table
    agent = FixedFirst(ISES(), game.action_index(args.first))
    t, c = time.perf_counter(), time.process_time()
    guesses = sum(play_episode(game, agent, s, details=False)["actions"] for s in range(args.games))
    ours = {"wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c, "guesses": guesses}
    print(f"{'solver':12s} {'games':>5s} {'guesses':>7s} {'wall s':>8s} {'CPU s':>8s}")
    for name, r in (("toolbox", ours), ("doddle", doddle)):
        print(f"{name:12s} {args.games:5d} {r['guesses']:7d} {r['wall_s']:8.2f} {r['cpu_s']:8.2f}")
    print(f"CPU ratio doddle / toolbox: {doddle['cpu_s'] / ours['cpu_s']:.1f}x")


if __name__ == "__main__":
    main()
