"""Run folders as data: what ran (command, settings, provenance), how it ended (status) and its headline figures.

A run folder is any folder with a config.toml or summary.json written by a toolbox command. The headline of a
run is the scalar leaves of its summary.json (nested tables as dotted names, lists left out), with the figure each
command is read by first (`HEADLINE_KEYS`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from toolbox.core.errors import UserInputError
from toolbox.core.tracking import as_number, flatten

# The figure a run of each command is read by, in order of preference (dotted paths into summary.json).
HEADLINE_KEYS: dict[str, tuple[str, ...]] = {
    "train-rl": ("tracking.in_band", "reward_final", "entropy_final"),
    "play-ises": ("mean_actions", "total_actions", "win_rate"),
    "bench-ises": ("episodes",),
    "fuse-gp": ("best.nlpd", "best.rule", "best.smse"),
    "sample-diffusion": ("learned.final_loss",),
    "map-landscape": ("base.perplexity", "base.overall_mix_entropy", "documents"),
    "train-noisy": ("baseline_accuracy",),
    "audit-noisy": ("verdict",),
    "shape-reward": ("checks_passed",),
    "shape-reward-solve": ("v_star",),
    "infer-choice": ("p_true_theta", "map_probability"),
}
SKIPPED = ("provenance", "config", "status", "error", "traceback")
MAX_HEADLINE = 40


@dataclass
class Run:
    folder: Path
    settings: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)

    @property
    def command(self) -> str:
        line = self.provenance.get("command_line") or []
        return self.provenance.get("command") or (Path(line[1]).name if len(line) > 1 else "") or "?"

    @property
    def status(self) -> str:
        return self.summary.get("status") or ("running or killed" if self.settings else "?")

    @property
    def started(self) -> str:
        return self.provenance.get("started", "")

    @property
    def seed(self):
        return self.provenance.get("seed")

    def headline(self) -> list[tuple[str, Any]]:
        """Scalar leaves of summary.json: the command's own headline keys first, then the rest in file order."""
        leaves = {k: v for k, v in flatten({k: v for k, v in self.summary.items() if k not in SKIPPED})
                  if v is None or isinstance(v, (int, float, str, bool))}
        first = [k for k in HEADLINE_KEYS.get(self.command, ()) if k in leaves]
        keys = first + [k for k in leaves if k not in first]
        return [(k, leaves[k]) for k in keys[:MAX_HEADLINE]]

    def headline_figure(self) -> tuple[str, Any] | None:
        """The command's own headline figure, else the first number of summary.json (None for an empty one)."""
        h = self.headline()
        own = [(k, v) for k, v in h if k in HEADLINE_KEYS.get(self.command, ())]
        return (own or [(k, v) for k, v in h if as_number(v) is not None] or h or [None])[0]


def is_run(folder: Path) -> bool:
    return (folder / "config.toml").is_file() or (folder / "summary.json").is_file()


def load_run(folder: Path) -> Run:
    """A run folder read back; a folder that is not a run is a UserInputError."""
    import json

    folder = Path(folder)
    if not folder.is_dir() or not is_run(folder):
        raise UserInputError(f"{folder}: not a run folder (no config.toml or summary.json)")
    run = Run(folder)
    if (folder / "config.toml").is_file():
        try:
            settings = tomllib.loads((folder / "config.toml").read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UserInputError(f"{folder / 'config.toml'}: not readable TOML ({exc})") from None
        run.provenance = settings.pop("provenance", {}) or {}
        run.settings = settings
    if (folder / "summary.json").is_file():
        try:
            summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserInputError(f"{folder / 'summary.json'}: not readable JSON ({exc})") from None
        run.summary = summary if isinstance(summary, dict) else {"result": summary}
        run.provenance = run.provenance or run.summary.get("provenance") or {}
    return run


def find_runs(root: Path, depth: int = 3) -> list[Run]:
    """The run folders under `root` (itself included), newest first; sub-runs of a run (seed_*/) are not listed."""
    root = Path(root)
    if not root.is_dir():
        raise UserInputError(f"{root}: no such folder")
    found, frontier = [], [root]
    for _ in range(depth + 1):
        nxt = []
        for folder in frontier:
            if is_run(folder):
                found.append(load_run(folder))
            else:
                nxt += sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        frontier = nxt
    return sorted(found, key=lambda r: (r.started, str(r.folder)), reverse=True)


def list_table(runs: list[Run]) -> list[dict]:
    rows = []
    for r in runs:
        figure = r.headline_figure()
        rows.append({"run": str(r.folder), "command": r.command, "started": r.started, "seed": r.seed,
                     "status": r.status, "headline": f"{figure[0]} = {_short(figure[1])}" if figure else ""})
    return rows


def compare(a: Run, b: Run) -> dict:
    """The settings that differ (dotted names) and the headline figures of both, side by side."""
    sa, sb = dict(flatten(a.settings)), dict(flatten(b.settings))
    settings = [{"setting": k, "a": sa.get(k), "b": sb.get(k)} for k in dict.fromkeys([*sa, *sb])
                if sa.get(k) != sb.get(k)]
    ha, hb = dict(a.headline()), dict(b.headline())
    metrics = []
    for k in dict.fromkeys([*ha, *hb]):
        row = {"metric": k, "a": ha.get(k), "b": hb.get(k)}
        x, y = as_number(ha.get(k)), as_number(hb.get(k))
        row["b_minus_a"] = y - x if x is not None and y is not None else None
        metrics.append(row)
    return {"a": str(a.folder), "b": str(b.folder), "commands": [a.command, b.command],
            "same_command": a.command == b.command, "settings": settings, "metrics": metrics}


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
