"""`toolbox shape-reward`: analytic checks, agents x environments x seeds regret bench with the entropy ledger,
and the bsuite DeepSea score; writes CSV / JSON / PNG into a run folder."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Callable

import numpy as np
from pydantic import Field

from toolbox.core.config import Backend, Count, PosFloat, PosInt, Seed
from toolbox.core.errors import UserInputError
from toolbox.core.executor import default_workers, map_tasks
from toolbox.core.guards import check_memory
from toolbox.core.io import save_figure, write_csv, write_json
from toolbox.shaping.agents import parse_agent
from toolbox.shaping.checks import analytic_checks
from toolbox.shaping.envs import env_size, make_env
from toolbox.shaping.experiment import LEDGER_KEYS, Task, deepsea_episodes, deepsea_solution, mean_ci, run_task


@dataclasses.dataclass
class ShapeRewardConfig:
    envs: list[str] = dataclasses.field(default_factory=lambda: ["riverswim"])
    agents: list[str] = dataclasses.field(default_factory=lambda: [
        "thermo", "psrl", "ucbvi", "ucbvi:simplified=1", "ucrl2", "eps-greedy", "soft-q"])
    seeds: PosInt = 20
    episodes: PosInt = 2000
    deepsea_sizes: list[Annotated[int, Field(ge=2)]] = dataclasses.field(default_factory=lambda: list(range(5, 13)))
    deepsea_seeds: PosInt = 1
    deepsea_max_episodes: PosInt = 10_000  # bsuite's run length; only 2^N + 100 episodes are needed for the score
    prior_mass: PosFloat = 1.0  # Dirichlet pseudo-count per (s, a), spread over the next states
    ledger_temperature: PosFloat = 0.1  # T of the second-law gap W[pi] - F* logged for every agent
    seed: Seed = 0
    backend: Backend = "process"
    workers: Count = 0  # 0: all cores

    def validate(self) -> "ShapeRewardConfig":
        if self.seeds < 1 or self.episodes < 1 or self.deepsea_seeds < 1:
            raise UserInputError("seeds, episodes and deepsea_seeds must be >= 1")
        if not self.agents:
            raise UserInputError("give at least one agent")
        if any(n < 2 for n in self.deepsea_sizes):
            raise UserInputError("deepsea sizes must be >= 2")
        if self.prior_mass <= 0 or self.ledger_temperature <= 0:
            raise UserInputError("prior_mass and ledger_temperature must be > 0")
        for spec in self.agents:
            parse_agent(spec)
        check_memory(self.memory_estimate(), "this shape-reward run",
                     "use smaller environments, fewer episodes or fewer workers")
        for env in self.envs:
            make_env(env)
        return self

    def memory_estimate(self) -> float:
        """Peak bytes: per concurrent run, the dense dynamics, the posterior and the plans [S, A, S] / [H, S, A]
        (a few copies each) and the per-episode logs."""
        runs = [(env_size(env), self.episodes) for env in self.envs]
        runs += [(env_size(f"deepsea-{n}"), deepsea_episodes(n, self.deepsea_max_episodes))
                 for n in self.deepsea_sizes]
        per_run = max(8 * (6 * S * A * S + 4 * H * S * A + (3 + len(LEDGER_KEYS)) * k) for (S, A, H), k in runs)
        concurrent = 1 if self.backend == "serial" else (self.workers or default_workers())
        return per_run * concurrent


def run(cfg: ShapeRewardConfig, out: Path, log: Callable[[str], None] = print,
        progress: Callable[..., None] | None = None) -> dict:
    cfg.validate()
    checks = analytic_checks(seed=cfg.seed)
    write_csv(out / "checks.csv", checks)
    log(f"analytic checks: {sum(r['ok'] for r in checks)}/{len(checks)} pass")

    tasks = [Task(env, agent, cfg.seed + i, cfg.episodes, cfg.prior_mass, True, cfg.ledger_temperature)
             for env in cfg.envs for agent in cfg.agents for i in range(cfg.seeds)]
    tasks += [Task(f"deepsea-{n}", agent, cfg.seed + i, deepsea_episodes(n, cfg.deepsea_max_episodes),
                   cfg.prior_mass, False) for agent in cfg.agents for n in cfg.deepsea_sizes
              for i in range(cfg.deepsea_seeds)]
    log(f"{len(tasks)} runs on the {cfg.backend} backend")
    results = map_tasks(run_task, tasks, backend=cfg.backend, workers=cfg.workers or None,
                        progress=(lambda done, total: progress(done, total)) if progress else None)
    bench = [r for r, t in zip(results, tasks) if t.ledger]
    deep = [(r, t) for r, t in zip(results, tasks) if not t.ledger]

    summary_rows = _regret_tables(cfg, bench, out)
    deepsea_rows, scores = _deepsea_tables(cfg, deep, out)
    document = {
        "checks_passed": all(r["ok"] for r in checks), "checks": checks, "regret": summary_rows,
        "deepsea_scores": scores, "deepsea": deepsea_rows, "config": dataclasses.asdict(cfg),
    }
    write_json(out / "summary.json", document)
    return document


def _regret_tables(cfg: ShapeRewardConfig, bench: list[dict], out: Path) -> list[dict]:
    """Cumulative regret curves with 95% CIs, per-run totals, ledger curves and the final per-(s,a) ledger."""
    summary, curves, per_run, ledger_curves = [], [], [], []
    for env in cfg.envs:
        groups = {a: [r for r in bench if r["env"] == env and r["agent"] == a] for a in cfg.agents}
        for agent, runs in groups.items():
            cum = np.cumsum([r["regret"] for r in runs], axis=1)
            mean, half = mean_ci(cum)
            total_mean, total_half = mean_ci(cum[:, -1])
            tail = max(1, cfg.episodes // 10)
            ledger_final = {k: float(np.mean([r[k][-1] for r in runs])) for k in LEDGER_KEYS}
            summary.append({"env": env, "agent": agent, "seeds": len(runs), "cumulative_regret": float(total_mean),
                            "ci95": float(total_half),
                            "regret_per_episode_last10pct": float(np.mean([r["regret"][-tail:] for r in runs])),
                            "v_star": runs[0]["v_star"], **{f"final_{k}": v for k, v in ledger_final.items()}})
            step = max(1, cfg.episodes // 200)
            for k in range(step - 1, cfg.episodes, step):
                row = {"env": env, "agent": agent, "episode": k + 1, "cum_regret": mean[k], "ci95": half[k]}
                ledger_curves.append({"env": env, "agent": agent, "episode": k + 1,
                                      **{key: float(np.mean([r[key][k] for r in runs])) for key in LEDGER_KEYS}})
                curves.append(row)
            per_run += [{"env": env, "agent": agent, "seed": r["seed"], "cumulative_regret": float(r["regret"].sum()),
                         "mean_return": float(r["return"].mean()),
                         **{f"final_{k}": float(r[k][-1]) for k in LEDGER_KEYS}} for r in runs]
        _plot_regret(env, groups, out / f"regret_{env}.png")
        _plot_ledger(env, groups, out / f"ledger_{env}.png")
        _plot_ledger_heatmaps(env, groups, out / f"ledger_heatmap_{env}.png")
    write_csv(out / "regret_summary.csv", summary)
    write_csv(out / "regret_curves.csv", curves)
    write_csv(out / "runs.csv", per_run)
    write_csv(out / "ledger_curves.csv", ledger_curves)
    return summary


def _deepsea_tables(cfg: ShapeRewardConfig, deep: list[tuple[dict, Task]], out: Path):
    """bsuite DeepSea score per agent: the share of (size, seed) runs that beat dithering (2^N + 100)."""
    rows = [{"agent": t.agent, "seed": t.seed, **deepsea_solution(r["bad"], int(t.env.split("-")[-1]))}
            for r, t in deep]
    scores = {a: float(np.mean([r["beats_dithering"] for r in rows if r["agent"] == a])) if rows else None
              for a in cfg.agents}
    if rows:
        write_csv(out / "deepsea.csv", rows)
        _plot_deepsea(cfg, rows, out / "deepsea_scaling.png")
    return rows, scores


def _plot_regret(env: str, groups: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for agent, runs in groups.items():
        mean, half = mean_ci(np.cumsum([r["regret"] for r in runs], axis=1))
        x = np.arange(1, mean.size + 1)
        ax.plot(x, mean, label=agent)
        ax.fill_between(x, mean - half, mean + half, alpha=0.2)
    ax.set(xlabel="episode", ylabel="cumulative regret (exact, 95% CI)", title=f"{env}: regret vs the exact optimum")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def _plot_ledger(env: str, groups: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = {"epistemic_total": "epistemic: sum_sa I(theta; s') [nats]", "aleatoric_mean": "aleatoric (mean) [nats]",
              "policy_entropy": "policy entropy on the path [nats]", "second_law_gap": "W[pi] - F* (second-law gap)"}
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for ax, (key, title) in zip(axes.flat, titles.items()):
        for agent, runs in groups.items():
            ax.plot(np.arange(1, len(runs[0][key]) + 1), np.mean([r[key] for r in runs], axis=0), label=agent)
        ax.set(title=title, xlabel="episode")
        ax.set_xscale("log")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"{env}: entropy-production ledger (mean over seeds)")
    save_figure(fig, path)


def _plot_ledger_heatmaps(env: str, groups: dict, path: Path) -> None:
    """Final epistemic entropy I(theta_sa; s') per (state, action) for each agent (first seed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    maps = {a: runs[0]["ledger_map"]["epistemic"] for a, runs in groups.items()}
    fig, axes = plt.subplots(1, len(maps), figsize=(2.2 * len(maps) + 1, 3.5), squeeze=False)
    vmax = max(float(m.max()) for m in maps.values())
    for ax, (agent, m) in zip(axes[0], maps.items()):
        im = ax.imshow(m.T, aspect="auto", cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
        ax.set(title=agent, xlabel="state", yticks=range(m.shape[1]))
        ax.title.set_fontsize(8)
    axes[0, 0].set_ylabel("action")
    fig.colorbar(im, ax=axes[0].tolist(), label="I(theta; s') [nats]")
    fig.suptitle(f"{env}: epistemic entropy left per (s, a) after the run")
    save_figure(fig, path)


def _plot_deepsea(cfg: ShapeRewardConfig, rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    sizes = np.array(sorted(set(cfg.deepsea_sizes)))
    for i, agent in enumerate(cfg.agents):
        pts = [(r["size"] + 0.08 * (i - len(cfg.agents) / 2), r["first_episode"] or r["episodes_run"],
                r["beats_dithering"]) for r in rows if r["agent"] == agent]
        xs, ys, ok = map(np.array, zip(*pts))
        dots = ax.scatter(xs[ok], ys[ok], marker="o", label=agent, alpha=0.8)
        ax.scatter(xs[~ok], ys[~ok], marker="x", color=dots.get_facecolor()[0], alpha=0.8)
    ax.plot(sizes, 2.0 ** sizes + 100, "k--", alpha=0.5, label="2^N + 100")
    ax.set(yscale="log", xlabel="DeepSea size N", ylabel="first episode with share of bad < 0.8",
           title="DeepSea: episodes to learn (x: not within 2^N + 100)")
    ax.legend(fontsize=7)
    save_figure(fig, path)
