"""Options and behaviour shared by every command: --json, --seed, --device, --out, --config, --set, --debug.

Human text, tables and progress go to stderr; with --json, stdout carries exactly one JSON document with a
schema_version. A bad input is one line on stderr and exit 2; a failure inside a run is exit 1 and keeps what
was already written.
"""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, Optional

import typer
from typer.core import TyperGroup

JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document on stdout.")]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, max=2**63 - 1,
                                      help="Random seed (>= 0); the same seed gives the same results.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto | cpu | cuda.")]
OutOpt = Annotated[Optional[Path], typer.Option("--out", help="Run folder (default: a new folder under ./runs).")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="Settings from a TOML file.")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override one setting: key=value (repeatable).")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace the run already in --out (its files are "
                                        "removed first).")]


def _check_track(value: str) -> str:
    from toolbox.core.tracking import TRACKERS, mlflow_available

    if value not in TRACKERS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(TRACKERS)}")
    if value == "mlflow" and not mlflow_available():
        raise typer.BadParameter("MLflow is not installed: pip install 'toolbox[mlflow]'")
    return value


TrackOpt = Annotated[str, typer.Option("--track", callback=_check_track, help="tensorboard: per-step scalars as "
                                       "event files in RUN/tensorboard | mlflow: those and an MLflow run "
                                       "(MLFLOW_TRACKING_URI, else mlflow.db beside the run) | none.")]
ReportOpt = Annotated[bool, typer.Option("--report", help="Write RUN/report.html at the end: one self-contained "
                                         "page with settings, headline, figures and tables.")]


class DefaultCommandGroup(TyperGroup):
    """A command group whose first subcommand runs when the first word is not one of its commands
    (`toolbox runs DIR` is `toolbox runs list DIR`)."""

    def parse_args(self, ctx, args):
        if (not args or args[0] not in self.commands) and not {"--help", "-h"} & set(args[:1]):
            args = [next(iter(self.commands)), *args]
        return super().parse_args(ctx, args)


class Session:
    """What one command invocation needs for output: the stderr console, JSON mode and progress."""

    def __init__(self, json_mode: bool = False, debug: bool = False):
        from rich.console import Console

        self.json_mode = json_mode
        self.debug = debug
        # a log file or pipe gets whole tables: 160 columns unless COLUMNS says otherwise (rich's default is 80)
        piped = not sys.stderr.isatty() and "COLUMNS" not in os.environ
        self.console = Console(stderr=True, highlight=False, width=160 if piped else None)

    def info(self, message: str, markup: bool = False) -> None:
        """A line of human output on stderr; brackets are text unless markup=True."""
        if not self.json_mode:
            self.console.print(message, markup=markup)

    def table(self, title: str, columns: list[str], rows: list[list[Any]]) -> None:
        """A rich table on stderr (nothing in JSON mode)."""
        if self.json_mode:
            return
        from rich.table import Table

        t = Table(title=_fmt(title))
        for c in columns:
            t.add_column(_fmt(c))
        for r in rows:
            t.add_row(*(_fmt(v) for v in r))
        self.console.print(t)

    @contextlib.contextmanager
    def progress(self, description: str, total: int | None = None) -> Iterator[Callable[..., None]]:
        """Yields update(done, total=None, **fields): a rich bar on a terminal, silent in JSON mode or a pipe."""
        if self.json_mode or not self.console.is_terminal:
            yield lambda done, total=None, **_: None
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=True) as bar:
            task = bar.add_task(description, total=total)

            def update(done, total=None, **_):
                bar.update(task, completed=done, **({"total": total} if total is not None else {}))

            yield update

    def emit(self, document: dict) -> None:
        """The command's one JSON document on stdout (only in JSON mode)."""
        if self.json_mode:
            from toolbox.core.io import SCHEMA_VERSION, dumps_json

            sys.stdout.write(dumps_json({"schema_version": SCHEMA_VERSION, **document}) + "\n")
            sys.stdout.flush()


def _fmt(v: Any):
    """A table cell as plain text: brackets in values are not rich markup."""
    from rich.text import Text

    return Text(f"{v:.4g}" if isinstance(v, float) else str(v))


class _Run:
    """The run folder of the current command: made by `run_dir`, described by `write_config` (which starts its
    tracker), and closed by `guarded` with summary.json's status (complete, failed or interrupted), the
    provenance block, the step tables logged to the tracker and, with --report, report.html."""
    folder: Path | None = None
    command: str | None = None
    created = False
    provenance: dict | None = None
    tracker: Any = None
    tables: tuple = ()
    report = False

    @classmethod
    def reset(cls) -> None:
        cls.folder, cls.command, cls.created, cls.provenance = None, None, False, None
        cls.tracker, cls.tables, cls.report = None, (), False


def tracker():
    """The current run's tracker (None when tracking is off or no run folder was made)."""
    return _Run.tracker


def _holds_only_settings(folder: Path) -> bool:
    """True when a folder holds nothing but config.toml, the tracker's first event file and empty folders (a run
    that never started)."""
    from toolbox.core.tracking import TENSORBOARD_DIR

    return all(p.is_dir() or (p.name == "config.toml" and p.parent == folder)
               or p.parent == folder / TENSORBOARD_DIR for p in folder.rglob("*"))


def _close_run(status: str, error: str | None = None) -> None:
    """summary.json gains status, error and provenance (what the run already wrote is kept)."""
    import shutil

    from toolbox.core.io import read_json, write_json
    from toolbox.core.tracking import TENSORBOARD_DIR

    folder = _Run.folder
    if folder is None or not folder.is_dir():
        return
    if status == "rejected":  # a bad input found after the folder was made: leave no trace of a run that never ran
        if _holds_only_settings(folder):
            if _Run.tracker is not None:
                _Run.tracker.discard()
                _Run.tracker = None
                shutil.rmtree(folder / TENSORBOARD_DIR, ignore_errors=True)
            if _Run.created:
                shutil.rmtree(folder, ignore_errors=True)
                with contextlib.suppress(OSError):  # runs/ itself, when this run was its first
                    folder.parent.rmdir()
            else:
                (folder / "config.toml").unlink(missing_ok=True)
            return
        status = "failed"
    summary_path = folder / "summary.json"
    try:
        summary = read_json(summary_path) if summary_path.is_file() else {}
    except (OSError, ValueError):
        summary = {}
    if not isinstance(summary, dict):
        summary = {"result": summary}
    summary.update({"status": status, "error": error, "provenance": _Run.provenance})
    write_json(summary_path, summary)
    _finish_outputs(folder, status)


def _finish_outputs(folder: Path, status: str) -> None:
    """Step tables to the tracker, report.html, then the tracker closed; a failure here is a warning, never a
    lost run."""
    try:
        if _Run.report:
            from toolbox.report import write_report

            write_report(folder)
        if _Run.tracker is not None:
            for table in _Run.tables:
                _Run.tracker.log_table(table)
    except Exception as exc:  # noqa: BLE001 - the run's own files are complete; say what is missing
        print(f"warning: report/tracking incomplete: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        if _Run.tracker is not None:
            _Run.tracker.close(status)
            _Run.tracker = None


class _Interrupted(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is."""


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise _Interrupted()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def guarded(session: Session) -> Iterator[None]:
    """Turn exceptions into the CLI's exit codes: UserInputError from input -> 2, Ctrl-C or SIGTERM -> 130,
    anything else -> 1; the run folder is closed with its status in summary.json."""
    from rich.markup import escape

    from toolbox.core.errors import UserInputError

    _Run.reset()
    _warn_if_native_missing(session)
    try:
        with _terminate_as_interrupt():
            yield
    except typer.Exit as exc:
        _close_run("complete" if exc.exit_code == 0 else "failed", None if exc.exit_code == 0 else
                   f"exit code {exc.exit_code}")
        raise
    except UserInputError as exc:
        _close_run("rejected", str(exc))
        if session.debug:
            raise
        session.console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        _close_run("interrupted", "interrupted by the user (SIGINT / SIGTERM)")
        kept = f" in {_Run.folder}" if _Run.folder is not None and _Run.folder.is_dir() else ""
        session.console.print(f"[yellow]interrupted[/yellow]: results written so far are kept{escape(kept)}")
        raise typer.Exit(130) from None
    except Exception as exc:  # a failure inside a run: one line, exit 1, files already written stay
        _close_run("failed", f"{type(exc).__name__}: {exc}")
        if session.debug:
            raise
        session.console.print(f"[red]error:[/red] {escape(f'{type(exc).__name__}: {exc}')}", soft_wrap=True)
        raise typer.Exit(1) from None
    else:
        _close_run("complete")


def _warn_if_native_missing(session: Session) -> None:
    from toolbox.core import native

    if native.module() is None:
        from rich.markup import escape

        session.console.print(f"[yellow]warning:[/yellow] the native kernels did not load, so the slow reference "
                              f"implementations run instead ({escape(str(native.import_error()))}); see "
                              "`toolbox doctor`", soft_wrap=True)


def run_dir(out: Path | None, prefix: str, force: bool = False, resume: bool = False) -> Path:
    """The run folder: --out, or a new runs/PREFIX-TIMESTAMP under the working directory. An --out that already
    holds files is refused unless resume (continue that run) or force (a run folder only: its files are removed).
    Call it after every check on inputs and settings: nothing is written before."""
    import shutil

    from toolbox.core.errors import UserInputError
    from toolbox.core.io import new_run_dir

    _Run.command = prefix
    if out is None:
        folder = new_run_dir(prefix, "runs")
        _Run.folder, _Run.created = folder, True
        return folder
    for parent in (out, *out.parents):
        if parent.exists() and not parent.is_dir():
            raise UserInputError(f"--out {out}: {parent} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not resume:
        is_run = (out / "config.toml").is_file() or (out / "summary.json").is_file()
        if not is_run:
            raise UserInputError(f"--out {out} is a folder with other files in it; choose a new or empty folder")
        if not force:
            raise UserInputError(f"--out {out} already holds a run; pass --force to replace it"
                                 + (" or --resume to continue it" if prefix == "train-rl" else "")
                                 + ", or choose another folder")
        for child in out.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"--out {out}: cannot create the folder ({exc.strerror})") from None
    _Run.folder, _Run.created = out, created
    return out


def write_config(folder: Path, cfg: Any, seed: int | None = None, device: str | None = None, *,
                 track: str = "none", report: bool = False, tables: tuple = ()) -> None:
    """config.toml: the resolved settings, then a [provenance] table (which `--config` ignores, so a run's
    config.toml repeats it). Starts the run's tracker (`track`: tensorboard | mlflow | none), which logs the step
    `tables` (toolbox.core.tracking.StepTable) when the run closes; `report` writes report.html then."""
    import dataclasses

    from toolbox.core.config import PROVENANCE_TABLE, dumps_toml
    from toolbox.core.io import atomic_write_text
    from toolbox.core.provenance import provenance

    _Run.provenance = {"command": _Run.command, **provenance(seed, device)}
    atomic_write_text(folder / "config.toml", dumps_toml(cfg) + "\n" + dumps_toml({PROVENANCE_TABLE: _Run.provenance}))
    _Run.report, _Run.tables = report, tuple(tables)
    if track != "none":
        from toolbox.core.tracking import Tracker

        _Run.tracker = Tracker(folder, _Run.command or folder.name, mlflow=track == "mlflow")
        settings = dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else dict(cfg)
        _Run.tracker.params({"seed": seed, "device": device, **settings})
