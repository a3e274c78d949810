"""Side by side over the Wordle answers: toolbox ISES (depth 1, fixed first guess, secrets spread over worker
processes) against the doddle 1.6.0 entropy solver, in one invocation: wall and CPU seconds of both, their ratios,
and the total guesses (ISES after SOARE: 8,020 over all 2,315 answers).

doddle 1.6.0 needs numpy < 2, so it runs in its own virtual environment. Without --doddle-python the bench makes
one on first use (then reuses it) in --doddle-venv (default ~/.cache/toolbox/doddle-venv):
  python3 -m venv ~/.cache/toolbox/doddle-venv && ~/.cache/toolbox/doddle-venv/bin/pip install doddle==1.6.0 "numpy<2"
Run (10-35 minutes depending on the load, nearly all of it doddle):
  nice .venv/bin/python bench/bench_ises_doddle.py --out /tmp/ises-doddle      # all 2,315 answers, both cores
  .venv/bin/python bench/bench_ises_doddle.py --games 30 --backend serial       # a quick look

Timing: doddle's start-up (word lists, numba compilation, one warm-up game) and the parent's Wordle feedback table
are timed apart and left out of the ratios; the workers' own table builds are inside the ISES time. CPU seconds of
ISES = the parent's plus its finished worker processes' (RUSAGE_CHILDREN); doddle's = its process's.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

DODDLE = """
import json, sys, time
t0 = time.perf_counter()
from doddle import Doddle
d = Doddle(size=5, solver_type="ENTROPY")
answers, first = json.loads(sys.stdin.read()), sys.argv[1]
d(answer=answers[0], guess=first)  # warm-up: dictionaries, numba compilation
t1, c1 = time.perf_counter(), time.process_time()
guesses = []
for i, a in enumerate(answers):
    guesses.append(len(d(answer=a, guess=first)))
    if (i + 1) % 100 == 0:
        print(f"doddle: {i + 1}/{len(answers)} answers, {time.perf_counter() - t1:.0f} s", file=sys.stderr, flush=True)
print(json.dumps({"startup_s": t1 - t0, "wall_s": time.perf_counter() - t1, "cpu_s": time.process_time() - c1,
                  "guesses": guesses}))
"""


def doddle_python(args) -> str:
    """The interpreter that runs doddle: --doddle-python, or the venv in --doddle-venv (made when missing)."""
    if args.doddle_python:
        return args.doddle_python
    venv = Path(args.doddle_venv).expanduser()
    python = venv / "bin" / "python"
    if not python.exists() or subprocess.run([str(python), "-c", "import doddle"], capture_output=True,
                                             check=False).returncode:
        print(f"making the doddle environment in {venv} (doddle==1.6.0, numpy<2)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "doddle==1.6.0", "numpy<2"], check=True)
    return str(python)


def cpu_seconds() -> float:
    """CPU seconds of this process and of its children that have finished (the executor's workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", type=int, default=0, help="the first N answers (0: all 2,315)")
    parser.add_argument("--first", default="SOARE")
    parser.add_argument("--backend", default="process", choices=["serial", "process"], help="ISES executor")
    parser.add_argument("--workers", type=int, default=0, help="ISES worker processes (0: the usable cores)")
    parser.add_argument("--doddle-python", default="", help="an interpreter with doddle 1.6.0 (skips the venv)")
    parser.add_argument("--doddle-venv", default=os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"),
                                                              "toolbox", "doddle-venv"))
    parser.add_argument("--out", default="", help="folder for result.json (and nothing else)")
    args = parser.parse_args()

    from toolbox.core.executor import default_workers
    from toolbox.ises.games import make_game
    from toolbox.ises.pipeline import PlayConfig, build_agent, play_all_episodes

    python = doddle_python(args)
    game = make_game("wordle")
    answers = game.secret_labels[:args.games or game.n_secrets]
    workers = 1 if args.backend == "serial" else args.workers or default_workers()

    t = time.perf_counter()
    _ = game.table
    table_s = time.perf_counter() - t
    cfg = PlayConfig(game="wordle", agent="ises", first=args.first, all_secrets=True, backend=args.backend,
                     workers=workers)
    t, c = time.perf_counter(), cpu_seconds()
    episodes = play_all_episodes(game, build_agent(game, cfg), cfg, secrets=range(len(answers)))
    ours = {"wall_s": time.perf_counter() - t, "cpu_s": cpu_seconds() - c, "table_s": table_s,
            "guesses": [e["actions"] for e in episodes]}

    print(f"doddle ({python}) on {len(answers)} answers ...", file=sys.stderr, flush=True)
    run = subprocess.run([python, "-c", DODDLE, args.first], input=json.dumps(answers), stdout=subprocess.PIPE,
                         text=True, check=True)
    doddle = json.loads(run.stdout.strip().splitlines()[-1])

    differ = [a for a, x, y in zip(answers, ours["guesses"], doddle["guesses"]) if x != y]
    rows = {"toolbox ISES": ours, "doddle 1.6.0": doddle}
    print(f"{'solver':14s} {'games':>5s} {'guesses':>7s} {'wall s':>9s} {'CPU s':>9s}   setup")
    for name, r in rows.items():
        setup = f"table {r['table_s']:.2f} s, {args.backend} x {workers}" if "table_s" in r else \
            f"start-up {r['startup_s']:.1f} s"
        print(f"{name:14s} {len(answers):5d} {sum(r['guesses']):7d} {r['wall_s']:9.2f} {r['cpu_s']:9.2f}   {setup}")
    ratios = {"wall": doddle["wall_s"] / ours["wall_s"], "cpu": doddle["cpu_s"] / ours["cpu_s"]}
    print(f"doddle / toolbox: wall {ratios['wall']:.1f}x, CPU {ratios['cpu']:.1f}x; answers with a different "
          f"number of guesses: {len(differ)} {differ[:10]}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        result = {"answers": len(answers), "first": args.first, "backend": args.backend, "workers": workers,
                  "toolbox": {**ours, "total_guesses": sum(ours["guesses"])},
                  "doddle": {**doddle, "total_guesses": sum(doddle["guesses"])}, "ratios": ratios,
                  "answers_differing": differ, "loadavg": os.getloadavg()}
        (out / "result.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
