"""`toolbox`: one CLI, commands grouped by paper. Heavy imports happen inside commands so --help is instant."""
from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from toolbox import __version__
from toolbox.cli.common import (DebugOpt, DefaultCommandGroup, DeviceOpt, ForceOpt, JsonOpt, OutOpt, SeedOpt, Session,
                               guarded, run_dir, write_config)

app = typer.Typer(name="toolbox", no_args_is_help=True, rich_markup_mode="rich", add_completion=False,
                  pretty_exceptions_enable=False,
                  help="Eight papers about entropy change, as pipelines. [dim]--json on any command prints one "
                       "JSON document on stdout.[/dim]")

GENERAL = "General"


def _version(value: bool) -> None:
    if value:
        print(__version__)
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """Eight papers about entropy change, as pipelines."""


@app.command(rich_help_panel=GENERAL)
def doctor(json_out: JsonOpt = False, debug: DebugOpt = False) -> None:
    """What this installation can do: versions, native extension, CUDA compiled and usable, threads, engines."""
    session = Session(json_out, debug)
    with guarded(session):
        report = doctor_report()
        session.table("toolbox doctor", ["item", "value"], [[k, v] for k, v in _flatten(report)])
        session.emit(report)


def doctor_report() -> dict:
    import importlib.util

    import numpy
    import torch

    from toolbox.core import native

    info = native.build_info()
    usable, detail = native.cuda_status()
    return {
        "toolbox": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "native_extension": native.available(),
        "native_import_error": native.import_error(),
        "cuda_compiled": bool(info.get("cuda")),
        "cuda_version": info.get("cuda_version"),
        "cuda_archs": info.get("cuda_archs"),
        "cuda_usable": usable,
        "cuda_device" if usable else "cuda_unusable_reason": detail,
        "threads": info.get("threads"),
        "torch_threads": torch.get_num_threads(),
        "engines": {name: importlib.util.find_spec(name) is not None for name in ("ray",)},
    }


def _flatten(d: dict, prefix: str = ""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flatten(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


@app.command(rich_help_panel=GENERAL)
def demo(out: OutOpt = None, force: ForceOpt = False, seed: SeedOpt = 0, device: DeviceOpt = "auto",
         only: Annotated[Optional[list[str]], typer.Option("--only", help="Run only these pipelines.")] = None,
         json_out: JsonOpt = False, debug: DebugOpt = False) -> None:
    """The smallest real run of every pipeline on built-in data, with a summary table, plots and results."""
    session = Session(json_out, debug)
    with guarded(session):
        from toolbox.core.device import resolve_device
        from toolbox.core.errors import UserInputError
        from toolbox.core.io import write_json
        from toolbox.demo import DEMOS, run_demos

        unknown = sorted(set(only or []) - set(DEMOS))
        if unknown:
            raise UserInputError(f"unknown pipeline(s) {', '.join(unknown)}; known: {', '.join(DEMOS)}")
        dev = resolve_device(device)
        folder = run_dir(out, "toolbox-demo", force)
        write_config(folder, {"pipelines": list(only or DEMOS)}, seed, dev)
        session.info(f"demo run folder: {folder}  (device {dev})")
        with session.progress("demo", total=len(only or DEMOS)) as update:
            results = run_demos(folder, seed=seed, device=dev, only=only, progress=update,
                                log=session.info)
        rows = [[r["pipeline"], r["status"], f"{r['seconds']:.1f}", r.get("headline", "")] for r in results]
        session.table("toolbox demo", ["pipeline", "status", "seconds", "headline"], rows)
        document = {"out": str(folder), "device": dev, "seed": seed, "pipelines": results}
        write_json(folder / "summary.json", document)
        from toolbox.report import write_folder_report, write_index

        for r in results:
            write_folder_report(folder / r["pipeline"], f"demo: {r['pipeline']}", r)
        session.info(f"index page: {write_index(folder, results)}")
        session.emit(document)
        if any(r["status"] != "ok" for r in results):
            raise typer.Exit(1)


@app.command(rich_help_panel=GENERAL)
def report(runs: Annotated[list[Path], typer.Argument(help="Run folders.", show_default=False)],
           out: Annotated[Optional[Path], typer.Option("--out", help="The comparison page, for several runs "
                                                       "(default: compare-<time>.html here).")] = None,
           json_out: JsonOpt = False, debug: DebugOpt = False) -> None:
    """One self-contained HTML page per run (RUN/report.html); for several runs, also a comparison page."""
    session = Session(json_out, debug)
    with guarded(session):
        from datetime import datetime

        from toolbox.core.errors import UserInputError
        from toolbox.report import write_comparison, write_report
        from toolbox.runs import load_run

        for folder in runs:
            load_run(folder)  # every folder is checked before any page is written
        if out is not None and (out.is_dir() or out.suffix.lower() not in (".html", ".htm")):
            raise UserInputError(f"--out {out}: give a file name ending in .html")
        pages = [str(write_report(folder)) for folder in runs]
        comparison = None
        if len(runs) > 1:
            comparison = str(write_comparison(runs, out or Path(f"compare-{datetime.now():%Y%m%d-%H%M%S}.html")))
        for page in pages + ([comparison] if comparison else []):
            session.info(page)
        session.emit({"reports": pages, "comparison": comparison})


runs_app = typer.Typer(cls=DefaultCommandGroup, no_args_is_help=False, rich_markup_mode="rich",
                       help="The runs under a folder, and two runs side by side. [dim]toolbox runs [DIR] | "
                            "toolbox runs compare A B[/dim]")
app.add_typer(runs_app, name="runs", rich_help_panel=GENERAL)


@runs_app.command("list")
def runs_list(folder: Annotated[Path, typer.Argument(help="Where to look (default ./runs).")] = Path("runs"),
              json_out: JsonOpt = False, debug: DebugOpt = False) -> None:
    """The runs under FOLDER, newest first: command, start, seed, status and headline figure."""
    session = Session(json_out, debug)
    with guarded(session):
        from toolbox.runs import find_runs, list_table

        rows = list_table(find_runs(folder))
        session.table(f"runs under {folder}", ["run", "command", "started", "seed", "status", "headline"],
                      [list(r.values()) for r in rows])
        session.emit({"folder": str(folder), "runs": rows})


@runs_app.command("compare")
def runs_compare(a: Annotated[Path, typer.Argument(help="A run folder.")],
                 b: Annotated[Path, typer.Argument(help="Another run folder.")],
                 json_out: JsonOpt = False, debug: DebugOpt = False) -> None:
    """The settings that differ between two runs and their headline figures side by side."""
    session = Session(json_out, debug)
    with guarded(session):
        from toolbox.runs import compare, load_run

        doc = compare(load_run(a), load_run(b))
        if not doc["same_command"]:
            session.info(f"note: different commands ({doc['commands'][0]} vs {doc['commands'][1]})")
        session.table("settings that differ", ["setting", str(a), str(b)],
                      [[r["setting"], r["a"], r["b"]] for r in doc["settings"]])
        session.table("headline", ["metric", str(a), str(b), "b - a"],
                      [[r["metric"], r["a"], r["b"], "" if r["b_minus_a"] is None else r["b_minus_a"]]
                       for r in doc["metrics"]])
        session.emit(doc)


# Pipeline command modules (cli/<name>.py, each with register(app)), in the order of the help screen.
PIPELINES: tuple[str, ...] = ("entrocraft", "ises", "gpoe", "diffusion", "landscape", "noisynn", "shaping", "choice")


def _register_pipelines() -> None:
    import importlib

    for name in PIPELINES:
        importlib.import_module(f"toolbox.cli.{name}").register(app)


_register_pipelines()


def main() -> None:
    try:
        app()
    except SystemExit as exc:
        if exc.code == 130 and "ray" in sys.modules:
            # Interrupted with Ray loaded: the run is closed and Ray shut down by now, but Ray's native library can
            # crash (SIGSEGV) in the interpreter's teardown after an interrupt; leave without it.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        raise


if __name__ == "__main__":
    sys.exit(main())
