"""The `play-ises` and `bench-ises` pipelines: configuration dataclasses, runs and their run-folder files."""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolbox.core.config import Backend, Count, NonNegFloat, Seed
from toolbox.core.errors import UserInputError
from toolbox.core.io import save_figure, write_csv, write_json, write_jsonl
from toolbox.ises import bench
from toolbox.ises.agents import Optimal, make_agent
from toolbox.ises.games import Game, make_game
from toolbox.ises.play import FixedFirst, check_secret, draw_secret, group_secrets, play_episode, play_secrets


@dataclass
class PlayConfig:
    game: str = "mastermind"
    agent: str = "ises"  # spec, e.g. 'ises:depth=2', 'so-ismcts:iterations=500', 'optimal'
    budget_ms: NonNegFloat = 0.0  # per-move budget of ises-sampled / so-ismcts
    secret: str = ""  # the hidden secret; "" draws one from the seed
    all_secrets: bool = False  # play every secret and report the totals
    first: str = ""  # fixed first action (e.g. SALET)
    max_actions: Count = 0
    seed: Seed = 0
    backend: Backend = "process"  # --all: serial | process | ray
    workers: Count = 0  # --all: worker processes; 0 = the usable cores


# The exact optimal search from the empty history is refused above this many (secret, action) pairs when the
# game has no symmetry to reduce it (Wordle: 2,315 x 12,972 = 3e7, days of search): pass a first action or a beam.
EXACT_ROOT_LIMIT = 10**6


def build_agent(game: Game, cfg) -> object:
    """The agent of `cfg` for `game` (with its fixed first action); the optimal solver is checked (and, for query
    games or a prior, solved) here, before any run folder exists."""
    agent = make_agent(cfg.agent, cfg.budget_ms)
    pairs = game.n_secrets * game.n_actions
    if isinstance(agent, Optimal) and agent.beam == 0 and not cfg.first and game.code_symmetry is None \
            and pairs > EXACT_ROOT_LIMIT:
        raise UserInputError(f"the exact optimal search over {game.n_secrets} x {game.n_actions} (secret, action) "
                             f"pairs from the empty history is out of reach (limit {EXACT_ROOT_LIMIT:.0e}); pass "
                             "--first ACTION (e.g. SALET for Wordle) or --agent optimal:beam=8")
    first = game.action_index(cfg.first) if cfg.first else None
    if isinstance(agent, Optimal):
        agent.prepare(game, first)
    return FixedFirst(agent, first) if cfg.first else agent


def run_play(cfg: PlayConfig, folder: Path, log=print, agent=None, progress=None) -> dict:
    """One game (or all secrets) of `cfg`; `agent`: the one `build_agent` already made for this game."""
    game = make_game(cfg.game)
    agent = agent or build_agent(game, cfg)
    if cfg.all_secrets:
        return _play_all(game, agent, cfg, folder, progress)
    secret = check_secret(game, cfg.secret) if cfg.secret else draw_secret(game, cfg.seed)
    episode = play_episode(game, agent, secret, seed=cfg.seed, max_actions=cfg.max_actions)
    write_csv(folder / "moves.csv", [{k: v for k, v in s.items() if k != "alternatives"} for s in episode["steps"]])
    write_jsonl(folder / "moves.jsonl", episode["steps"])
    _plot_episode(game, episode, folder / "entropy.png")
    doc = {"game": game.describe(), "agent": cfg.agent, **{k: episode[k] for k in
           ("secret", "actions", "solved", "win", "declared", "entropies", "steps")}}
    write_json(folder / "summary.json", doc)
    return doc


def all_backend(agent, cfg: PlayConfig) -> tuple[str, int]:
    """(backend, workers) that `--all` runs on: one process for `serial`, one worker, or the optimal solver (its
    search is shared by all secrets: every worker would repeat it)."""
    from toolbox.core.executor import default_workers

    workers = cfg.workers or default_workers()
    inner = agent.agent if isinstance(agent, FixedFirst) else agent
    if cfg.backend == "serial" or workers == 1 or isinstance(inner, Optimal):
        return "serial", 1
    return cfg.backend, workers


def play_all_episodes(game: Game, agent, cfg: PlayConfig, progress=None, secrets=None) -> list[dict]:
    """Every secret of the game's support (or of `secrets`), in order. In one process with `agent`, or
    `group_secrets` splits them into 4 tasks per worker and each worker rebuilds the agent from the spec: the same
    episodes (tested)."""
    from toolbox.core.executor import map_tasks

    secrets = game.support.tolist() if secrets is None else [int(s) for s in secrets]
    backend, workers = all_backend(agent, cfg)
    if backend == "serial":
        return play_secrets(game, agent, secrets, cfg.seed, cfg.max_actions, progress)
    tasks = [{"game": cfg.game, "agent": cfg.agent, "budget_ms": cfg.budget_ms, "first": cfg.first, "seed": cfg.seed,
              "secrets": group, "max_actions": cfg.max_actions}
             for group in group_secrets(game, agent, secrets, 4 * workers, cfg.seed)]
    done = map_tasks(bench.run_chunk, tasks, backend=backend, workers=workers,
                     progress=(lambda i, n: progress(sum(len(t["secrets"]) for t in tasks[:i]), len(secrets)))
                     if progress else None)
    by_secret = {e["secret_index"]: e for episodes in done for e in episodes}
    return [by_secret[s] for s in secrets]


def _play_all(game: Game, agent, cfg: PlayConfig, folder: Path, progress=None) -> dict:
    start = time.perf_counter()
    episodes = play_all_episodes(game, agent, cfg, progress)
    seconds = time.perf_counter() - start
    actions = np.array([e["actions"] for e in episodes])
    weights = np.ones(len(actions)) if game.prior is None else game.prior[game.support]
    hist = dict(sorted(collections.Counter(actions.tolist()).items()))
    write_csv(folder / "episodes.csv", [{"secret": e["secret"], "actions": e["actions"], "solved": e["solved"],
                                         "win": e["win"]} for e in episodes])
    run = [{**e, "game": game.name, "agent": cfg.agent, "budget_ms": cfg.budget_ms} for e in episodes]
    rows = bench.trajectories(run)
    write_csv(folder / "trajectory.csv", rows)
    bench.plot_trajectories(rows, folder / "trajectory.png")
    bench.plot_histograms(run, folder / "histogram.png")
    doc = {"game": game.describe(), "agent": cfg.agent, "first": cfg.first or None, "secrets": len(episodes),
           "total_actions": int(actions.sum()), "mean_actions": float(actions.mean()),
           "expected_actions": float(weights @ actions / weights.sum()),  # under the prior
           "max_actions": int(actions.max()),
           "histogram": hist, "win_rate": float(np.mean([e["win"] for e in episodes])),
           "solved_rate": float(np.mean([e["solved"] for e in episodes])), "seconds": seconds,
           **dict(zip(("backend", "workers"), all_backend(agent, cfg)))}
    write_json(folder / "summary.json", doc)
    return doc


def _plot_episode(game: Game, episode: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    h = episode["entropies"]
    ax.step(range(len(h)), h, where="post", label="H_t = H(I_t) (bits)")
    gains = [s["info_gained"] for s in episode["steps"]]
    expected = [s["expected_gain"] for s in episode["steps"]]
    ax.bar(np.arange(1, len(gains) + 1) - 0.2, gains, width=0.4, alpha=0.6, label="information gained dH_t")
    ax.bar(np.arange(1, len(expected) + 1) + 0.2, np.nan_to_num(expected), width=0.4, alpha=0.6,
           label="expected E[dH] of the chosen action")
    ax.set_xlabel("move t")
    ax.set_ylabel("bits")
    ax.set_title(f"{game.name}: secret {episode['secret']}, {episode['actions']} actions")
    ax.legend(fontsize=8)
    save_figure(fig, path)


# --- bench-ises ---------------------------------------------------------------------------------------------------

@dataclass
class BenchIsesConfig(bench.BenchConfig):
    seed: Seed = 0


def check_bench(cfg: BenchIsesConfig) -> None:
    """Every check on the bench settings (games, agents, budgets), before a run folder exists."""
    if cfg.n_games < 0 or cfg.chunk < 1 or any(b < 0 for b in cfg.budgets_ms):
        raise UserInputError("bench-ises needs n_games >= 0, chunk >= 1 and budgets >= 0")
    bench.check_bench(cfg)
    for spec in (a for a in cfg.agents if bench.agent_name(a) == "optimal"):
        agent = make_agent(spec)
        for game in cfg.games:
            agent.prepare(make_game(game))


def run_bench(cfg: BenchIsesConfig, folder: Path, log=print, progress=None) -> dict:
    start = time.perf_counter()
    episodes = bench.run_bench(cfg, seed=cfg.seed, progress=progress)
    seconds = time.perf_counter() - start
    summary = bench.summarise(episodes)
    tests = bench.paired_tests(episodes)
    trajectory = bench.trajectories(episodes)
    write_jsonl(folder / "episodes.jsonl", episodes)
    write_csv(folder / "summary.csv", summary)
    write_csv(folder / "paired_tests.csv", tests)
    write_csv(folder / "trajectory.csv", trajectory)
    bench.plot_histograms(episodes, folder / "histogram.png")
    bench.plot_trajectories(trajectory, folder / "trajectory.png")
    doc = {"budget": bench.budget_description(cfg), "summary": summary, "paired_tests": tests,
           "episodes": len(episodes), "seconds": seconds}
    write_json(folder / "summary.json", doc)
    return doc


def games_table() -> list[dict]:
    from toolbox.ises.games import GAMES

    out = []
    for name, (_, text) in GAMES.items():
        try:
            out.append({**make_game(name).describe(), "about": text})
        except UserInputError as exc:  # e.g. the Wordle lists are not installed
            out.append({"game": name, "about": text, "unavailable": str(exc)})
    return out
