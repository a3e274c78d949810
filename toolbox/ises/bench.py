"""Benchmarks of agents x games x decision budgets (the paper's experiment, note section 2), and the game-design
view: the entropy trajectory H_t of games (mean with bands) and the information gained per move.

Secrets are drawn once per game (or all of them), so every agent plays the same secrets and the comparison is
paired (Wilcoxon signed-rank on the number of actions). Chunks of secrets run on toolbox.core.executor.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from toolbox.core import rng
from toolbox.core.config import Backend, Count, NonNegFloat, PosInt
from toolbox.core.errors import UserInputError
from toolbox.core.executor import map_tasks

BUDGETED = ("ises-sampled", "so-ismcts")
EIGHT_GAMES = ["mastermind", "bulls-cows", "wordle", "jotto", "number", "coin", "blackbox", "guesswho"]


@dataclass
class BenchConfig:
    games: list[str] = field(default_factory=lambda: list(EIGHT_GAMES))
    agents: list[str] = field(default_factory=lambda: ["ises-sampled", "so-ismcts"])
    budgets_ms: list[NonNegFloat] = field(default_factory=lambda: [10.0, 100.0])
    n_games: Count = 20  # secrets per game; 0 = all secrets
    max_actions: Count = 0  # 0: 4 x the game's turn limit + 10
    backend: Backend = "process"  # serial | process | ray
    workers: Count = 0  # 0: all cores
    chunk: PosInt = 10  # secrets per task


def agent_name(spec: str) -> str:
    return spec.partition(":")[0].strip()


def takes_budget(spec: str) -> bool:
    """Whether the per-move time budget applies: budgeted agents whose spec fixes no budget of its own."""
    return agent_name(spec) in BUDGETED and "iterations=" not in spec and "budget_ms=" not in spec


def runs_of(cfg: BenchConfig) -> list[tuple[str, str, float]]:
    """(game, agent, budget) triples; agents without a time budget run once (budget 0)."""
    runs = []
    for game, agent in itertools.product(cfg.games, cfg.agents):
        budgets = cfg.budgets_ms if takes_budget(agent) else [0.0]
        runs += [(game, agent, float(b)) for b in budgets]
    return runs


def choose_secrets(game_spec: str, n_games: int, seed: int, game_index: int) -> list[int]:
    from toolbox.ises.games import make_game

    support = make_game(game_spec).support  # the secrets the prior allows
    if not n_games or n_games >= len(support):
        return support.tolist()
    return sorted(support[rng.numpy_generator(seed, 77, game_index).choice(len(support), n_games,
                                                                           replace=False)].tolist())


def run_chunk(task: dict) -> list[dict]:
    """Play the secrets of one task (top-level and pure, for every executor backend)."""
    from toolbox.ises.agents import make_agent
    from toolbox.ises.games import make_game
    from toolbox.ises.play import play_episode

    game = make_game(task["game"])
    agent = make_agent(task["agent"], task["budget_ms"])
    cache: dict = {}
    out = []
    for s in task["secrets"]:
        ep = play_episode(game, agent, s, seed=task["seed"] * 1_000_003 + s, max_actions=task["max_actions"],
                          cache=cache, details=False)
        out.append({**{k: ep[k] for k in ("secret_index", "actions", "solved", "win", "entropies", "move_seconds")},
                    "weight": 1.0 if game.prior is None else float(game.prior[s])})
    return out


def run_bench(cfg: BenchConfig, seed: int = 0, progress=None) -> list[dict]:
    """Every episode: {game, agent, budget_ms, secret_index, actions, solved, win, entropies, move_seconds}."""
    from toolbox.ises.games import make_game

    if not cfg.games or not cfg.agents:
        raise UserInputError("bench-ises needs at least one game and one agent")
    for spec in cfg.games:
        make_game(spec)  # fail early on a bad spec
    secrets = {g: choose_secrets(g, cfg.n_games, seed, i) for i, g in enumerate(cfg.games)}
    tasks = []
    for game, agent, budget in runs_of(cfg):
        for i in range(0, len(secrets[game]), max(1, cfg.chunk)):
            tasks.append({"game": game, "agent": agent, "budget_ms": budget, "seed": seed,
                          "secrets": secrets[game][i:i + cfg.chunk], "max_actions": cfg.max_actions})
    results = map_tasks(run_chunk, tasks, backend=cfg.backend, workers=cfg.workers or None, progress=progress)
    episodes = []
    for task, eps in zip(tasks, results):
        for ep in eps:
            episodes.append({"game": task["game"], "agent": task["agent"], "budget_ms": task["budget_ms"], **ep})
    return episodes


def summarise(episodes: list[dict]) -> list[dict]:
    """Per (game, agent, budget): win rate, mean / sd / max actions, 95% CI of the mean, time per move, and the
    expected actions under the game's prior (the prior-weighted mean over the secrets played; the exact
    expectation when all of them are played)."""
    from scipy import stats

    rows = []
    for key, group in _groups(episodes, ("game", "agent", "budget_ms")).items():
        a = np.array([e["actions"] for e in group], float)
        ms = np.concatenate([np.asarray(e["move_seconds"], float) for e in group]) * 1e3
        sd = float(a.std(ddof=1)) if len(a) > 1 else 0.0
        half = float(stats.t.ppf(0.975, len(a) - 1) * sd / math.sqrt(len(a))) if len(a) > 1 else 0.0
        rows.append({"game": key[0], "agent": key[1], "budget_ms": key[2], "n": len(a),
                     "win_rate": float(np.mean([e["win"] for e in group])),
                     "solved_rate": float(np.mean([e["solved"] for e in group])),
                     "mean_actions": float(a.mean()), "sd_actions": sd, "max_actions": int(a.max()),
                     "expected_actions": float(np.average(a, weights=[e.get("weight", 1.0) for e in group])),
                     "ci95_low": float(a.mean()) - half, "ci95_high": float(a.mean()) + half,
                     "total_actions": int(a.sum()), "ms_per_move": float(ms.mean()) if len(ms) else 0.0,
                     "ms_per_move_p95": float(np.percentile(ms, 95)) if len(ms) else 0.0})
    return rows


def paired_tests(episodes: list[dict]) -> list[dict]:
    """Wilcoxon signed-rank tests of the number of actions between every two runs of a game on the same secrets
    (a run = agent at a budget)."""
    from scipy import stats

    out = []
    for game, group in _groups(episodes, ("game",)).items():
        runs = _groups(group, ("agent", "budget_ms"))
        for (ra, ea), (rb, eb) in itertools.combinations(sorted(runs.items()), 2):
            da = {e["secret_index"]: e["actions"] for e in ea}
            db = {e["secret_index"]: e["actions"] for e in eb}
            common = sorted(set(da) & set(db))
            diff = np.array([da[s] - db[s] for s in common], float)
            if not len(diff):
                continue
            p = 1.0 if not diff.any() else float(stats.wilcoxon(diff, zero_method="zsplit").pvalue)
            out.append({"game": game[0], "run_a": f"{ra[0]}@{ra[1]:g}ms", "run_b": f"{rb[0]}@{rb[1]:g}ms",
                        "n": len(diff), "mean_a": float(np.mean([da[s] for s in common])),
                        "mean_b": float(np.mean([db[s] for s in common])), "mean_diff": float(diff.mean()),
                        "p_value": p})
    return out


def trajectories(episodes: list[dict]) -> list[dict]:
    """The game-design view: per run and move t, mean H_t with a 10-90% band (finished games stay at their last
    entropy) and the mean information gained at move t by the games still running."""
    rows = []
    for key, group in _groups(episodes, ("game", "agent", "budget_ms")).items():
        longest = max(len(e["entropies"]) for e in group)
        h = np.array([e["entropies"] + [e["entropies"][-1]] * (longest - len(e["entropies"])) for e in group])
        for t in range(longest):
            gains = [e["entropies"][t - 1] - e["entropies"][t] for e in group if 0 < t < len(e["entropies"])]
            rows.append({"game": key[0], "agent": key[1], "budget_ms": key[2], "t": t,
                         "H_mean": float(h[:, t].mean()), "H_p10": float(np.percentile(h[:, t], 10)),
                         "H_p90": float(np.percentile(h[:, t], 90)), "still_playing": len(gains) if t else len(group),
                         "info_mean": float(np.mean(gains)) if gains else None})
    return rows


def _groups(rows: list[dict], keys: tuple) -> dict:
    out: dict = {}
    for r in rows:
        out.setdefault(tuple(r[k] for k in keys), []).append(r)
    return out


def run_label(row: dict) -> str:
    return f"{agent_name(row['agent'])}" + (f"@{row['budget_ms']:g}ms" if row["budget_ms"] else "")


def plot_histograms(episodes: list[dict], path) -> None:
    """Histogram of the number of actions per game, one bar group per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from toolbox.core.io import save_figure

    games = list(dict.fromkeys(e["game"] for e in episodes))
    fig, axes = _panels(plt, len(games))
    for ax, game in zip(axes.ravel(), games):
        runs = _groups([e for e in episodes if e["game"] == game], ("agent", "budget_ms"))
        top = max(e["actions"] for e in episodes if e["game"] == game)
        bins = np.arange(0.5, top + 1.5)
        for (agent, budget), eps in runs.items():
            ax.hist([e["actions"] for e in eps], bins=bins, alpha=0.5,
                    label=run_label({"agent": agent, "budget_ms": budget}))
        ax.set_title(game.split(":")[0])
        ax.set_xlabel("actions to solve")
        ax.legend(fontsize=7)
    for ax in axes.ravel()[len(games):]:
        ax.axis("off")
    save_figure(fig, path)


def plot_trajectories(rows: list[dict], path) -> None:
    """Mean entropy H_t (bits) against move t with the 10-90% band, one panel per game."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from toolbox.core.io import save_figure

    games = list(dict.fromkeys(r["game"] for r in rows))
    fig, axes = _panels(plt, len(games))
    for ax, game in zip(axes.ravel(), games):
        for key, group in _groups([r for r in rows if r["game"] == game], ("agent", "budget_ms")).items():
            t = [r["t"] for r in group]
            line, = ax.plot(t, [r["H_mean"] for r in group], label=run_label({"agent": key[0], "budget_ms": key[1]}))
            ax.fill_between(t, [r["H_p10"] for r in group], [r["H_p90"] for r in group], alpha=0.15,
                            color=line.get_color())
        ax.set_title(game.split(":")[0])
        ax.set_xlabel("move t")
        ax.set_ylabel("H_t (bits)")
        ax.legend(fontsize=7)
    for ax in axes.ravel()[len(games):]:
        ax.axis("off")
    save_figure(fig, path)


def _panels(plt, n: int):
    """A figure with one panel per game, at most four per row."""
    cols, rows = min(4, n), math.ceil(n / min(4, n))
    return plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
