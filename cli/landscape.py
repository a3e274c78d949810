"""`toolbox map-landscape`: map and track a technology field from a dated corpus, with experts in the loop."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from toolbox.cli.common import (ConfigOpt, DebugOpt, DeviceOpt, ForceOpt, JsonOpt, OutOpt, ReportOpt, SeedOpt,
                                Session, SetOpt, TrackOpt, guarded, run_dir, write_config)
from toolbox.core.tracking import StepTable

# The topic-selection loop's returns per episode, logged to TensorBoard / MLflow when a run closes.
TABLES = (StepTable("rl_curve.csv", "episode"),)

PANEL = "Technology landscape"


def register(app: typer.Typer) -> None:
    app.command("map-landscape", rich_help_panel=PANEL)(map_landscape)


def map_landscape(
    source: Annotated[str, typer.Argument(help="Corpus: a JSONL / CSV / Scopus CSV / WoS .txt / arXiv JSONL file, "
                                               "a folder, 'reuters' (built in) or 'synthetic' (planted trends).")],
    format: Annotated[Optional[str], typer.Option("--format", help="auto | jsonl | csv | scopus | wos | arxiv | "
                                                                   "text | reuters | synthetic.")] = None,
    aspects: Annotated[Optional[Path], typer.Option("--aspects", help="Expert keywords: TOML or YAML, "
                                                                      "aspect -> keyword -> weight.")] = None,
    k: Annotated[Optional[int], typer.Option("--k", help="Fixed number of topics (paper: 39); default: chosen by "
                                                         "coherence over --k-range.")] = None,
    k_range: Annotated[Optional[str], typer.Option("--k-range", help="K candidates for the coherence choice, e.g. "
                                                                     "10:60:5; default auto (from the corpus "
                                                                     "size).")] = None,
    bin: Annotated[Optional[str], typer.Option("--bin", help="Time slices: year | quarter | month | week | N.")] = None,
    date_from: Annotated[Optional[str], typer.Option("--date-from", help="Keep documents from this ISO date.")] = None,
    date_to: Annotated[Optional[str], typer.Option("--date-to", help="Keep documents up to this ISO date.")] = None,
    previous: Annotated[Optional[Path], typer.Option("--previous", help="The previous iteration's run folder.")] = None,
    agent: Annotated[Optional[str], typer.Option("--agent", help="RL selector: qlearn | bandit.")] = None,
    episodes: Annotated[Optional[int], typer.Option("--episodes", help="RL episodes.")] = None,
    out: OutOpt = None, seed: SeedOpt = 0, device: DeviceOpt = "auto", config: ConfigOpt = None,
    force: ForceOpt = False, set_: SetOpt = None, track: TrackOpt = "tensorboard", report: ReportOpt = False,
    json_out: JsonOpt = False, debug: DebugOpt = False,
) -> None:
    """Topic models, expert aspects, entropy shifts and RL topic selection over time; a report for expert review."""
    session = Session(json_out, debug)
    with guarded(session):
        from toolbox.core.config import resolve
        from toolbox.core.device import resolve_device
        from toolbox.landscape.pipeline import LandscapeConfig, prepare, run

        dev = resolve_device(device)  # validated; the pipeline is CPU-only (gensim)
        explicit = {"source": source, "format": format, "aspects": str(aspects) if aspects else None, "k": k,
                    "k_range": k_range, "bin": bin, "date_from": date_from, "date_to": date_to,
                    "previous": str(previous) if previous else None}
        cfg = resolve(LandscapeConfig(), config, set_, explicit)
        select = {"agent": agent, "episodes": episodes}
        cfg = resolve(cfg, None, None, {"select": {kk: v for kk, v in select.items() if v is not None}})
        inputs = prepare(cfg, seed, log=session.info)  # every setting and file checked, the corpus read
        folder = run_dir(out, "map-landscape", force)
        write_config(folder, cfg, seed, dev, track=track, report=report, tables=TABLES)
        session.info(f"map-landscape run folder: {folder}")
        summary = run(cfg, folder, seed, log=session.info, inputs=inputs)
        rows = [[t["rank"], t["topic"], t["label"], f"{t['magnitude']:.4f}", " ".join(t["top_words"][:6])]
                for t in sorted(summary["topics"], key=lambda t: t["rank"])[:10]]
        session.table("ranked trends", ["rank", "topic", "label", "magnitude", "top words"], rows)
        session.info(f"report: {folder / 'report.html'}")
        session.emit({"out": str(folder), "documents": summary["documents"], "k": summary["k"],
                      "slices": summary["slices"], "base": summary["base"], "aspect": summary["aspect"],
                      "iteration": summary["iteration"], "planted": summary.get("planted"),
                      "ranking": summary["selection"]["ranking"], "labels": summary["selection"]["labels"],
                      "comparison": summary["selection"]["comparison"]})
