"""One self-contained HTML page per run (`toolbox report`, `--report`), a comparison page for several runs of one
command, and the index page of `toolbox demo`.

A page needs no other file and no network: figures are inlined as PNG data URIs, the Markdown parts of a run
(report.md) are rendered with markdown-it-py, and there is no script. Headline values are written with Python's
shortest round-trip float format, so the page shows exactly what summary.json holds.
"""
from __future__ import annotations

import base64
import csv
import html
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from toolbox.core.io import atomic_write_text
from toolbox.runs import Run, compare, load_run

REPORT_FILE = "report.html"
MAX_TABLE_ROWS = 100
MAX_FIGURES = 60
STYLE = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ddd;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 7px;font-size:13px;
text-align:left;vertical-align:top}th{background:#f4f4f4}code,pre{background:#f6f6f6;font-size:13px}
pre{padding:.6em;overflow-x:auto;white-space:pre-wrap}.scroll{max-height:420px;overflow:auto}
figure{display:inline-block;margin:.5em;max-width:100%}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:12px;color:#555}.status{padding:2px 8px;border-radius:3px;color:#fff}
.complete,.ok{background:#2a7d2a}.failed,.mismatch{background:#b02a2a}.interrupted{background:#b07a00}
.note{color:#555;font-size:13px}.warning{background:#fff4d6;padding:.4em .7em;border-left:4px solid #b07a00}
"""


def write_report(folder: Path) -> Path:
    """FOLDER/report.html for the run in FOLDER."""
    run = load_run(folder)
    path = Path(folder) / REPORT_FILE
    atomic_write_text(path, _page(f"{run.command}: {Path(folder).name}", _run_body(run)))
    return path


def write_comparison(folders: Iterable[Path], path: Path) -> Path:
    """One page comparing several runs of the same command: settings that differ, headline side by side."""
    runs = [load_run(f) for f in folders]
    commands = sorted({r.command for r in runs})
    body = [f"<h1>Comparison of {len(runs)} {html.escape(', '.join(commands))} runs</h1>"]
    if len(commands) > 1:
        body.append(f"<p class='warning'>These runs come from different commands ({html.escape(', '.join(commands))});"
                    " only the settings and figures they share are comparable.</p>")
    heads = "".join(f"<th><a href='{html.escape(_relative(r.folder / REPORT_FILE, path.parent))}'>"
                    f"{html.escape(r.folder.name)}</a></th>" for r in runs)
    diffs = [compare(runs[0], r) for r in runs[1:]]
    changed = list(dict.fromkeys(row["setting"] for d in diffs for row in d["settings"]))
    body.append("<h2>Settings that differ</h2>")
    if changed:
        flat = [dict(_flat_settings(r)) for r in runs]
        body.append(_table(["setting", *[r.folder.name for r in runs]],
                           [[k, *[f.get(k) for f in flat]] for k in changed], header_html=f"<th>setting</th>{heads}"))
    else:
        body.append("<p>None: the runs share every setting.</p>")
    heads_all = [dict(r.headline()) for r in runs]
    keys = list(dict.fromkeys(k for h in heads_all for k in h))
    body.append("<h2>Headline</h2>")
    body.append(_table(["metric", *[r.folder.name for r in runs]], [[k, *[h.get(k) for h in heads_all]] for k in keys],
                       header_html=f"<th>metric</th>{heads}", table_id="comparison"))
    body.append("<h2>Status</h2>")
    body.append(_table(["run", "status", "seed", "started"],
                       [[str(r.folder), r.status, r.seed, r.started] for r in runs]))
    atomic_write_text(path, _page("toolbox comparison", body))
    return path


def write_index(folder: Path, entries: list[dict]) -> Path:
    """The demo's index.html: one row per pipeline (status, seconds, headline), linking each pipeline's page."""
    rows = []
    for e in entries:
        link = f"{e['pipeline']}/{REPORT_FILE}"
        status = html.escape(e["status"])
        rows.append(f"<tr><td><a href='{html.escape(link)}'>{html.escape(e['pipeline'])}</a></td>"
                    f"<td><span class='status {status}'>{status}</span></td><td>{e['seconds']:.1f}</td>"
                    f"<td>{html.escape(str(e.get('headline', '')))}</td></tr>")
    body = ["<h1>toolbox demo</h1>", "<p class='note'>The smallest real run of every pipeline on built-in data; "
            "each name opens that pipeline's page.</p>",
            "<table id='pipelines'><tr><th>pipeline</th><th>status</th><th>seconds</th><th>headline</th></tr>"
            + "".join(rows) + "</table>"]
    return atomic_write_text(Path(folder) / "index.html", _page("toolbox demo", body))


def write_folder_report(folder: Path, title: str, summary: dict) -> Path:
    """A page for a folder of outputs that is not a whole run (a demo entry), from the summary it produced."""
    run = Run(Path(folder), summary=summary, provenance={"command": title})
    return atomic_write_text(Path(folder) / REPORT_FILE, _page(title, _run_body(run)))


# ----------------------------------------------------------------------------------------------- page parts
def _run_body(run: Run) -> list[str]:
    p = run.provenance
    status = html.escape(run.status)
    out = [f"<h1>{html.escape(run.command)} <span class='status {status}'>{status}</span></h1>",
           f"<p class='note'>{html.escape(str(run.folder))}</p>"]
    if p.get("command_line"):
        out.append(f"<pre>{html.escape(' '.join(_quote(a) for a in p['command_line']))}</pre>")
    facts = [(k, p.get(k)) for k in ("started", "seed", "device", "toolbox", "git_commit") if p.get(k) is not None]
    if facts:
        out.append(_table(["", ""], facts, header_html=""))
    warnings = _warnings(run.summary)
    if warnings:
        out.append("<h2>Warnings</h2>" + "".join(f"<p class='warning'>{html.escape(w)}</p>" for w in warnings))
    headline = run.headline()
    if headline:
        out.append("<h2>Headline</h2>")
        out.append("<table id='headline'><tr><th>figure</th><th>value</th></tr>" + "".join(
            f"<tr><th>{html.escape(k)}</th><td data-key='{html.escape(k)}'>{html.escape(_value(v))}</td></tr>"
            for k, v in headline) + "</table>")
    shown: set[Path] = set()
    for md in sorted(run.folder.glob("*.md")):
        out.append(f"<h2>{html.escape(md.name)}</h2>"
                   + markdown_html(md.read_text(encoding="utf-8"), run.folder, shown))
    figures = sorted(p for p in run.folder.rglob("*.png") if not _hidden(p, run.folder) and p.resolve() not in shown)
    if figures:
        out.append("<h2>Figures</h2>")
        out += [f"<figure><img alt='{html.escape(_rel(f, run.folder))}' src='{_data_uri(f)}'>"
                f"<figcaption>{html.escape(_rel(f, run.folder))}</figcaption></figure>" for f in figures[:MAX_FIGURES]]
        if len(figures) > MAX_FIGURES:
            out.append(f"<p class='note'>{len(figures) - MAX_FIGURES} more figures in the run folder.</p>")
    tables = sorted(p for p in run.folder.rglob("*.csv") if not _hidden(p, run.folder))
    if tables:
        out.append("<h2>Tables</h2>")
        for t in tables:
            out.append(_csv_section(t, run.folder))
    if run.settings:
        out.append("<h2>Settings</h2>" + _table(["setting", "value"], _flat_settings(run)))
    if p:
        out.append("<h2>Provenance</h2>" + _table(["item", "value"], [(k, v) for k, v in p.items()]))
    return out


def markdown_html(text: str, folder: Path, shown: set[Path] | None = None) -> str:
    """Markdown (CommonMark + tables) as HTML with raw HTML disabled; the run's PNGs it links are inlined (and
    added to `shown`)."""
    from markdown_it import MarkdownIt

    def inline(match: re.Match) -> str:
        target = folder / match[2]
        if not target.is_file():
            return match[0]
        if shown is not None:
            shown.add(target.resolve())
        return f"![{match[1]}]({_data_uri(target)})"

    return MarkdownIt("commonmark", {"html": False}).enable("table").render(
        re.sub(r"!\[([^\]]*)\]\(([^)\s]+\.png)\)", inline, text))


def _csv_section(path: Path, folder: Path) -> str:
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        rows = list(csv.reader(fh))
    name = html.escape(_rel(path, folder))
    if not rows:
        return f"<h3>{name}</h3><p class='note'>empty</p>"
    head, body = rows[0], rows[1:]
    note = f" (first {MAX_TABLE_ROWS} of {len(body)} rows)" if len(body) > MAX_TABLE_ROWS else f" ({len(body)} rows)"
    return (f"<details><summary>{name}{note}</summary><div class='scroll'>"
            + _table(head, body[:MAX_TABLE_ROWS]) + "</div></details>")


def _table(columns: list, rows: Iterable, header_html: str | None = None, table_id: str | None = None) -> str:
    head = header_html if header_html is not None else "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    ident = f" id='{table_id}'" if table_id else ""
    return (f"<table{ident}>" + (f"<tr>{head}</tr>" if head else "")
            + "".join("<tr>" + "".join(f"<td>{html.escape(_value(v))}</td>" for v in r) + "</tr>" for r in rows)
            + "</table>")


def _warnings(summary: dict) -> list[str]:
    found = []
    if summary.get("error"):
        found.append(f"error: {summary['error']}")

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif key in ("warning", "warnings") and node:
            found.extend(node if isinstance(node, list) else [node])

    walk({k: v for k, v in summary.items() if k != "provenance"})
    return [str(w) for w in dict.fromkeys(map(str, found))]


def _flat_settings(run: Run) -> list[tuple[str, Any]]:
    from toolbox.core.tracking import flatten

    return list(flatten(run.settings))


def _value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return str(v)


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(str(arg))


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _hidden(path: Path, folder: Path) -> bool:
    return any(part.startswith(".") or part in ("tensorboard", "checkpoints") for part in
               path.relative_to(folder).parts[:-1])


def _rel(path: Path, folder: Path) -> str:
    return path.relative_to(folder).as_posix()


def _relative(target: Path, start: Path) -> str:
    import os

    return Path(os.path.relpath(Path(target).resolve(), Path(start).resolve())).as_posix()


def _page(title: str, body: list[str]) -> str:
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><link rel='icon' href='data:,'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
