"""Options and behaviour shared by every command: --json, --seed, --device, --out, --config, --set, --debug.

Human text, tables and progress go to stderr; with --json, stdout carries exactly one JSON document with a
schema_version. A bad input is one line on stderr and exit 2; a failure inside a run is exit 1 and keeps what
was already written.
"""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, Optional

import typer

JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON document on stdout.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives the same results.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto | cpu | cuda.")]
OutOpt = Annotated[Optional[Path], typer.Option("--out", help="Run folder (default: a new folder here).")]
ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="Settings from a TOML file.")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override one setting: key=value (repeatable).")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks.")]


class Session:
    """What one command invocation needs for output: the stderr console, JSON mode and progress."""

    def __init__(self, json_mode: bool = False, debug: bool = False):
        from rich.console import Console

        self.json_mode = json_mode
        self.debug = debug
        self.console = Console(stderr=True, highlight=False)

    def info(self, message: str) -> None:
        if not self.json_mode:
            self.console.print(message)

    def table(self, title: str, columns: list[str], rows: list[list[Any]]) -> None:
        """A rich table on stderr (nothing in JSON mode)."""
        if self.json_mode:
            return
        from rich.table import Table

        t = Table(title=title)
        for c in columns:
            t.add_column(str(c))
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


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


# Run folders created by the current command: a bad input found after creating one removes it again if it holds
# nothing but the configuration written there, so a typo leaves no empty folders behind.
_created_run_dirs: list[Path] = []


def _remove_unused_run_dirs() -> None:
    import shutil

    for folder in _created_run_dirs:
        if folder.is_dir() and {p.name for p in folder.iterdir()} <= {"config.toml"}:
            shutil.rmtree(folder, ignore_errors=True)
    _created_run_dirs.clear()


@contextlib.contextmanager
def guarded(session: Session) -> Iterator[None]:
    """Turn exceptions into the CLI's exit codes: UserInputError from input -> 2, anything else -> 1."""
    from toolbox.core.errors import UserInputError

    _created_run_dirs.clear()
    try:
        yield
    except typer.Exit:
        raise
    except UserInputError as exc:
        _remove_unused_run_dirs()
        if session.debug:
            raise
        session.console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        session.console.print("[yellow]interrupted[/yellow]: results written so far are kept")
        raise typer.Exit(130) from None
    except Exception as exc:  # a failure inside a run: one line, exit 1, files already written stay
        if session.debug:
            raise
        session.console.print(f"[red]error:[/red] {type(exc).__name__}: {exc}", soft_wrap=True)
        raise typer.Exit(1) from None


def run_dir(out: Path | None, prefix: str) -> Path:
    """The run folder: --out (created if needed) or a new timestamped folder in the working directory."""
    from toolbox.core.errors import UserInputError
    from toolbox.core.io import new_run_dir

    if out is None:
        folder = new_run_dir(prefix)
        _created_run_dirs.append(folder)
        return folder
    if out.exists() and not out.is_dir():
        raise UserInputError(f"--out {out} exists and is not a folder")
    if not out.exists():
        _created_run_dirs.append(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_config(folder: Path, cfg: Any) -> None:
    from toolbox.core.config import dumps_toml
    from toolbox.core.io import atomic_write_text

    atomic_write_text(folder / "config.toml", dumps_toml(cfg))
