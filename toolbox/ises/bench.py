"""Benchmarks of agents x games x decision budgets (the paper's experiment, note section 2), and the game-design
view: the entropy trajectory H_t of games (mean with bands) and the information gained per move.

Secrets are drawn once per game (or all of them) and secret s is played from the same seed by every agent, so
the comparison is paired: per game, the difference in actions with its t interval, d_z, the rank-biserial r and
the Wilcoxon signed-rank p, Holm-corrected across the games. Budgets per move: wall-clock milliseconds, or
feedback evaluations f(a, s) (the budgeted agents get, move by move, what the reference ISES agent used on the
same secret, or a fixed number). Chunks of secrets run on toolbox.core.executor.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Literal

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
    budget: Literal["time", "evaluations"] = "time"  # what is equal per move: wall-clock ms or feedback evaluations
    evaluations: Count = 0  # budget=evaluations: a fixed number per move; 0 = what the reference used
    reference: str = ""  # budget=evaluations: the agent whose evaluations are matched; "" = the first ISES agent


def agent_name(spec: str) -> str:
    return spec.partition(":")[0].strip()


def takes_budget(spec: str) -> bool:
    """Whether the per-move time budget applies: budgeted agents whose spec fixes no budget of its own."""
    return agent_name(spec) in BUDGETED and not any(f"{k}=" in spec for k in ("iterations", "budget_ms",
                                                                              "evaluations"))


def runs_of(cfg: BenchConfig) -> list[tuple[str, str, float]]:
    """(game, agent, budget) triples; agents without a time budget, and every agent under budget=evaluations,
    run once (budget 0)."""
    runs = []
    for game, agent in itertools.product(cfg.games, cfg.agents):
        budgets = cfg.budgets_ms if takes_budget(agent) and cfg.budget == "time" else [0.0]
        runs += [(game, agent, float(b)) for b in budgets]
    return runs


def reference_agent(cfg: BenchConfig) -> str | None:
    """budget=evaluations: the spec whose evaluations per move the budgeted agents get (None: a fixed number)."""
    if cfg.evaluations:
        return None
    if cfg.reference:
        if cfg.reference not in cfg.agents:
            raise UserInputError(f"reference agent {cfg.reference!r} is not one of the agents {cfg.agents}")
        return cfg.reference
    for spec in cfg.agents:
        if agent_name(spec) in ("ises", "ises-sampled"):
            return spec
    raise UserInputError("budget=evaluations needs an ISES agent to match (ises or ises-sampled), a reference "
                         "(--set reference=SPEC) or a fixed number (--set evaluations=N)")


def evaluation_budgeted(cfg: BenchConfig) -> list[str]:
    """The agents held to an evaluation budget: budgeted agents whose spec fixes none, except the reference."""
    ref = reference_agent(cfg)
    return [a for a in cfg.agents if takes_budget(a) and a != ref]


def with_option(spec: str, key: str, value) -> str:
    name, _, rest = spec.partition(":")
    return f"{name}:{rest.strip() + ',' if rest.strip() else ''}{key}={value}"


def _accepts(spec: str, key: str) -> bool:
    from toolbox.ises.agents import make_agent

    try:
        make_agent(with_option(spec, key, 1))
    except UserInputError:
        return False
    return True


def check_evaluation_budget(spec: str) -> None:
    """Refuse, before a run, an agent that cannot be held to an evaluation budget (see `decide_within`)."""
    if agent_name(spec) != "ises-sampled" and not _accepts(spec, "evaluations"):
        raise UserInputError(f"agent {spec!r} takes no evaluation budget (an 'evaluations' option); use budget=time")


def decide_within(spec: str, evaluations: int, state):
    """The decision of `spec` held to `evaluations` feedback evaluations on this move. Sampled ISES scores
    min(states, |I|) secrets per action, so it scores max(1, evaluations // that) actions; an agent with an
    `evaluations` option (SO-ISMCTS: the most whole iterations that fit, at least one) gets it."""
    from toolbox.ises.agents import make_agent

    n = max(1, int(evaluations))
    if agent_name(spec) == "ises-sampled":
        per_action = min(make_agent(spec).m, len(state.cand))
        return make_agent(with_option(spec, "actions", max(1, n // per_action))).decide(state)
    return make_agent(with_option(spec, "evaluations", n)).decide(state)


def budget_description(cfg: BenchConfig) -> str:
    """One line for the report: what is equal per move between the agents."""
    if cfg.budget == "time":
        return f"wall clock per move: {', '.join(f'{b:g} ms' for b in cfg.budgets_ms)}"
    held = ", ".join(evaluation_budgeted(cfg)) or "none"
    if cfg.evaluations:
        return f"feedback evaluations per move: {cfg.evaluations} for {held}"
    return (f"feedback evaluations per move: {held} get, at move t of secret s, what {reference_agent(cfg)} used "
            "at move t of s (past its last move: its mean per move on s)")


class EvaluationBudget:
    """Holds an agent to `budgets[t]` feedback evaluations at move t; past the end of the list, to their mean
    (the reference agent's game was shorter)."""

    deterministic = False

    def __init__(self, spec: str, budgets: list[int]):
        self.spec, self.budgets, self.name = spec, budgets, agent_name(spec)
        self.mean = round(float(np.mean(budgets))) if budgets else 1

    def decide(self, state):
        return decide_within(self.spec, self.budgets[state.step] if state.step < len(self.budgets) else self.mean,
                             state)


def choose_secrets(game_spec: str, n_games: int, seed: int, game_index: int) -> list[int]:
    from toolbox.ises.games import make_game

    support = make_game(game_spec).support  # the secrets the prior allows
    if not n_games or n_games >= len(support):
        return support.tolist()
    return sorted(support[rng.numpy_generator(seed, 77, game_index).choice(len(support), n_games,
                                                                           replace=False)].tolist())


def run_chunk(task: dict) -> list[dict]:
    """Play the secrets of one task (top-level and pure, for every executor backend); `first` (optional): a fixed
    first action label; `evaluations` (optional): {secret: per-move evaluation budgets} (EvaluationBudget)."""
    from toolbox.ises.agents import make_agent
    from toolbox.ises.games import make_game
    from toolbox.ises.play import FixedFirst, play_secrets

    game = make_game(task["game"])
    if task.get("evaluations") is not None:
        episodes = [ep for s in task["secrets"] for ep in play_secrets(
            game, EvaluationBudget(task["agent"], task["evaluations"][s]), [s], task["seed"], task["max_actions"])]
    else:
        agent = make_agent(task["agent"], task["budget_ms"])
        if task.get("first"):
            agent = FixedFirst(agent, game.action_index(task["first"]))
        episodes = play_secrets(game, agent, task["secrets"], task["seed"], task["max_actions"])
    keep = ("secret", "secret_index", "actions", "solved", "win", "entropies", "move_seconds", "move_evaluations")
    return [{**{k: ep[k] for k in keep}, "weight": 1.0 if game.prior is None else float(game.prior[ep["secret_index"]])}
            for ep in episodes]


def check_bench(cfg: BenchConfig) -> None:
    """Every check on the settings, before a run folder exists."""
    from toolbox.ises.agents import make_agent
    from toolbox.ises.games import make_game

    if not cfg.games or not cfg.agents:
        raise UserInputError("bench-ises needs at least one game and one agent")
    for spec in cfg.games:
        make_game(spec)  # fail early on a bad spec
    for spec in cfg.agents:
        make_agent(spec, max(cfg.budgets_ms, default=0.0))
    if cfg.budget == "evaluations":
        for spec in evaluation_budgeted(cfg):
            check_evaluation_budget(spec)


def _tasks(cfg: BenchConfig, secrets: dict, seed: int, runs, evaluations=None) -> list[dict]:
    tasks = []
    for game, agent, budget in runs:
        for i in range(0, len(secrets[game]), max(1, cfg.chunk)):
            chunk = secrets[game][i:i + cfg.chunk]
            task = {"game": game, "agent": agent, "budget_ms": budget, "seed": seed, "secrets": chunk,
                    "max_actions": cfg.max_actions}
            if evaluations is not None:
                task["evaluations"] = {s: evaluations(game, s) for s in chunk}
            tasks.append(task)
    return tasks


def run_bench(cfg: BenchConfig, seed: int = 0, progress=None) -> list[dict]:
    """Every episode: {game, agent, budget_ms, secret_index, actions, solved, win, entropies, move_seconds,
    move_evaluations}. budget=evaluations runs in two rounds: the reference and the unbudgeted agents first, then
    the budgeted agents with the reference's evaluations, move by move on the same secret."""
    check_bench(cfg)
    secrets = {g: choose_secrets(g, cfg.n_games, seed, i) for i, g in enumerate(cfg.games)}
    runs = runs_of(cfg)
    held = evaluation_budgeted(cfg) if cfg.budget == "evaluations" else []
    first = _tasks(cfg, secrets, seed, [r for r in runs if r[1] not in held])
    second = []
    if held:
        ref = reference_agent(cfg)
        second_runs = [r for r in runs if r[1] in held]
        total = len(first) + len(_tasks(cfg, secrets, seed, second_runs))
        results = map_tasks(run_chunk, first, backend=cfg.backend, workers=cfg.workers or None,
                            progress=progress and (lambda i, n: progress(i, total)))
        used = {(t["game"], e["secret_index"]): e["move_evaluations"]
                for t, eps in zip(first, results) for e in eps if t["agent"] == ref}
        if any(None in u for u in used.values()):
            raise UserInputError(f"the reference agent {ref!r} reports no feedback evaluations")
        second = _tasks(cfg, secrets, seed, second_runs,
                        lambda g, s: [cfg.evaluations] if ref is None else used[(g, s)])
        results += map_tasks(run_chunk, second, backend=cfg.backend, workers=cfg.workers or None,
                             progress=progress and (lambda i, n: progress(len(first) + i, total)))
    else:
        results = map_tasks(run_chunk, first, backend=cfg.backend, workers=cfg.workers or None, progress=progress)
    episodes = []
    for task, eps in zip(first + second, results):
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
        evals = [n for e in group for n in e.get("move_evaluations", [])]
        sd = float(a.std(ddof=1)) if len(a) > 1 else 0.0
        half = float(stats.t.ppf(0.975, len(a) - 1) * sd / math.sqrt(len(a))) if len(a) > 1 else 0.0
        rows.append({"game": key[0], "agent": key[1], "budget_ms": key[2], "n": len(a),
                     "win_rate": float(np.mean([e["win"] for e in group])),
                     "solved_rate": float(np.mean([e["solved"] for e in group])),
                     "mean_actions": float(a.mean()), "sd_actions": sd, "max_actions": int(a.max()),
                     "expected_actions": float(np.average(a, weights=[e.get("weight", 1.0) for e in group])),
                     "ci95_low": float(a.mean()) - half, "ci95_high": float(a.mean()) + half,
                     "total_actions": int(a.sum()), "ms_per_move": float(ms.mean()) if len(ms) else 0.0,
                     "ms_per_move_p95": float(np.percentile(ms, 95)) if len(ms) else 0.0,
                     "evals_per_move": float(np.mean(evals)) if evals and None not in evals else None})
    return rows


def holm(p_values) -> list[float]:
    """Holm's (1979) step-down adjusted p-values: with p_(1) <= ... <= p_(m), adj_(i) = max_{j <= i} min(1,
    (m - j + 1) p_(j)); rejecting adj <= alpha controls the family-wise error rate at alpha."""
    p = np.asarray(p_values, float)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order]))
    out = np.empty(len(p))
    out[order] = adjusted
    return out.tolist()


EXACT_WILCOXON_MAX = 16  # non-zero differences up to which the signed-rank test enumerates all 2^n sign patterns


def wilcoxon_signed_rank(diff) -> tuple[float, float, str]:
    """(T+, two-sided p, method) of the Wilcoxon signed-rank test. Zero differences are dropped (Wilcoxon's
    convention) and tied |d| get mid-ranks. Up to EXACT_WILCOXON_MAX non-zero differences the p-value is exact:
    the permutation distribution of T+ over all 2^n sign patterns of those ranks (exact with ties too); above,
    the normal approximation with the tie-corrected variance and no continuity correction (scipy). No non-zero
    difference: p = 1."""
    from scipy import stats

    d = np.asarray(diff, float)
    d = d[d != 0]
    if not len(d):
        return 0.0, 1.0, "all zero"
    ranks = stats.rankdata(np.abs(d))
    t_plus = float(ranks[d > 0].sum())
    if len(d) > EXACT_WILCOXON_MAX:
        return t_plus, float(stats.wilcoxon(d, zero_method="wilcox", correction=False, method="asymptotic").pvalue), \
            "normal"
    signs = (np.arange(2 ** len(d))[:, None] >> np.arange(len(d))) & 1  # every sign pattern, one per row
    null = signs @ ranks
    centre = ranks.sum() / 2
    p = float(np.mean(np.abs(null - centre) >= abs(t_plus - centre) - 1e-9))
    return t_plus, min(1.0, p), "exact"


def paired_effect(diff) -> dict:
    """Paired differences d = a - b on the same secrets: mean, sd, the 95% t interval of the mean
    (mean +- t_{0.975, n-1} sd / sqrt(n)), Cohen's d_z = mean / sd (None when sd = 0), the matched-pairs
    rank-biserial correlation r = (T+ - T-) / (T+ + T-) (zeros dropped; 0 when every d is 0) and the Wilcoxon
    signed-rank test."""
    from scipy import stats

    d = np.asarray(diff, float)
    n = len(d)
    mean = float(d.mean())
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    half = float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)) if n > 1 else 0.0
    t_plus, p, method = wilcoxon_signed_rank(d)
    nonzero = d[d != 0]
    total = float(stats.rankdata(np.abs(nonzero)).sum()) if len(nonzero) else 0.0
    return {"n": n, "mean_diff": mean, "sd_diff": sd, "ci95_low": mean - half, "ci95_high": mean + half,
            "ci_method": "t", "d_z": mean / sd if sd > 0 else None,
            "rank_biserial": (2 * t_plus - total) / total if total else 0.0, "n_nonzero": len(nonzero),
            "wilcoxon_t_plus": t_plus, "p_value": p, "p_method": method}


def compared(ra: tuple, rb: tuple) -> bool:
    """Runs (agent, budget_ms) compared with each other: the same budget, or one of them without a budget."""
    return ra[0] != rb[0] and (ra[1] == rb[1] or not ra[1] or not rb[1])


def paired_tests(episodes: list[dict], alpha: float = 0.05) -> list[dict]:
    """Per game, every two compared runs (a run = agent at a budget) on their common secrets: the paired
    difference in actions (a - b) with its 95% t interval, d_z, rank-biserial r and Wilcoxon p, then Holm's
    correction across the games: one family per comparison (the same two runs in every game)."""
    out = []
    for game, group in _groups(episodes, ("game",)).items():
        runs = _groups(group, ("agent", "budget_ms"))
        for (ra, ea), (rb, eb) in itertools.combinations(sorted(runs.items()), 2):
            if not compared(ra, rb):
                continue
            da = {e["secret_index"]: e["actions"] for e in ea}
            db = {e["secret_index"]: e["actions"] for e in eb}
            common = sorted(set(da) & set(db))
            if not common:
                continue
            out.append({"game": game[0], "run_a": run_id(*ra), "run_b": run_id(*rb),
                        "mean_a": float(np.mean([da[s] for s in common])),
                        "mean_b": float(np.mean([db[s] for s in common])),
                        **paired_effect([da[s] - db[s] for s in common])})
    for key, rows in _groups(out, ("run_a", "run_b")).items():
        for row, adj in zip(rows, holm([r["p_value"] for r in rows])):
            row.update(holm_family=f"{key[0]} vs {key[1]}, {len(rows)} games", p_holm=adj, reject_05=adj <= alpha)
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


def run_id(agent: str, budget_ms: float) -> str:
    """A run by its full agent spec and time budget."""
    return f"{agent}@{budget_ms:g}ms" if budget_ms else agent


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
