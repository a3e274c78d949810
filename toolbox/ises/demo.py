"""`toolbox demo` entry: ISES, minimax and the exact optimal solver (first guess 1123) over all 1,296 Mastermind
secrets (the note's 5,722 / 5,801 / 5,625 anchors) and a small budgeted ISES-sampled vs SO-ISMCTS match with the
entropy-trajectory plot."""
from __future__ import annotations

from pathlib import Path

from toolbox.core.io import write_json
from toolbox.demo import check
from toolbox.ises import bench
from toolbox.ises.pipeline import PlayConfig, run_play


def run_demo(out: Path, seed: int = 0, device: str = "cpu", log=print) -> dict:
    totals = {}
    for agent, first in (("ises", ""), ("minimax", ""), ("optimal", "1123")):
        folder = out / f"mastermind-{agent}"
        folder.mkdir(parents=True, exist_ok=True)
        doc = run_play(PlayConfig(game="mastermind", agent=agent, all_secrets=True, first=first, seed=seed,
                                   backend="serial"), folder, log)  # small runs: a process pool costs more
        totals[agent] = doc
        log(f"  mastermind 4x6 {agent}: {doc['total_actions']} guesses over 1296 secrets "
            f"(mean {doc['mean_actions']:.5f}, max {doc['max_actions']})")
    cfg = bench.BenchConfig(games=["mastermind", "number"], agents=["ises-sampled", "so-ismcts"], budgets_ms=[10.0],
                            n_games=6, backend="serial", chunk=6)
    episodes = bench.run_bench(cfg, seed=seed)
    summary = bench.summarise(episodes)
    trajectory = bench.trajectories(episodes)
    bench.plot_trajectories(trajectory, out / "trajectory.png")
    means = {(r["game"].split(":")[0], r["agent"]): r["mean_actions"] for r in summary}
    result = {
        "ises_total": totals["ises"]["total_actions"], "ises_mean": totals["ises"]["mean_actions"],
        "minimax_total": totals["minimax"]["total_actions"], "optimal_total": totals["optimal"]["total_actions"],
        "checks": [check("ISES total guesses", totals["ises"]["total_actions"], 5722),
                   check("minimax total guesses", totals["minimax"]["total_actions"], 5801),
                   check("exact optimum total guesses", totals["optimal"]["total_actions"], 5625)],
        "budget_10ms": summary,
        "headline": (f"Mastermind 4x6 all secrets: ISES {totals['ises']['total_actions']} guesses (ref 5722), "
                     f"minimax {totals['minimax']['total_actions']} (ref 5801), exact optimum "
                     f"{totals['optimal']['total_actions']} (ref 5625); 10 ms/move on 6 secrets: "
                     f"ISES-sampled {means[('mastermind', 'ises-sampled')]:.2f} vs SO-ISMCTS "
                     f"{means[('mastermind', 'so-ismcts')]:.2f} actions"),
    }
    write_json(out / "summary.json", result)
    return result
