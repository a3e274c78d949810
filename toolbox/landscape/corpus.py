"""Ingest a dated corpus: loaders for the paper's sources, cleaning, time binning and a report of what was dropped.

Sources: JSONL / CSV with text and date fields, Scopus CSV exports, Web of Science tab-delimited exports, arXiv
metadata JSONL, folders of plain-text files (date in the file name), the dated Reuters sample shipped in the PyPI
package `lda`, and the synthetic planted-trend generator (toolbox.landscape.synthetic). Every file may be gzipped.
"""
from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import json
import math
import re
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from toolbox.core.errors import UserInputError

FORMATS = ("auto", "jsonl", "csv", "scopus", "wos", "arxiv", "text", "reuters", "synthetic")
BINS = ("year", "quarter", "month", "week")
TEXT_FIELDS = ("text", "abstract", "content", "body", "summary", "Abstract", "AB")
DATE_FIELDS = ("date", "published", "created", "timestamp", "year", "update_date", "Year", "PY")
TITLE_FIELDS = ("title", "Title", "TI", "headline", "name")


@dataclasses.dataclass
class Document:
    """One raw document: its text (or its tokens when the source is a bag of words), date and title."""
    doc_id: str
    text: str = ""
    tokens: list[str] | None = None
    date: date | None = None
    title: str = ""


@dataclasses.dataclass
class Corpus:
    """A cleaned corpus: tokens per document, their dates, time-slice index and labels, and the drop report."""
    doc_ids: list[str]
    titles: list[str]
    texts: list[str]
    tokens: list[list[str]]
    dates: list[date]
    slices: list[int]
    slice_labels: list[str]
    report: dict
    ordered: bool = True  # tokens in their original order (False for bag-of-words sources: Reuters, synthetic)

    def __len__(self) -> int:
        return len(self.tokens)


# ---------------------------------------------------------------------------------------------------- reading

def _open_text(path: Path) -> str:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except OSError as exc:
            raise UserInputError(f"{path}: not a valid gzip file ({exc})") from exc
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise UserInputError(f"{path}: not UTF-8 or UTF-16 text")


def parse_date(value) -> date | None:
    """A date from ISO strings, years, 'JAN 2020'-style months, RFC-2822 stamps or epoch seconds, else None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            return None
        if 1000 <= value <= 9999:
            return date(int(value), 1, 1)
        if 1e8 < value < 2.5e11:  # epoch seconds up to the year 9892
            return datetime.fromtimestamp(float(value), tz=timezone.utc).date()
        return None
    s = str(value).strip()
    if not s:
        return None
    m = re.search(r"(\d{4})-(\d{1,2})-(\d{1,2})", s)
    if m:
        try:
            return date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return None
    for fmt in ("%a, %d %b %Y %H:%M:%S %Z", "%a, %d %b %Y %H:%M:%S %z", "%d %b %Y", "%b %d %Y", "%Y/%m/%d",
                "%d/%m/%Y", "%Y-%m", "%b %Y", "%B %Y"):
        try:
            return datetime.strptime(s, fmt).date()
        except ValueError:
            continue
    m = re.fullmatch(r"(\d{4})(?:\.0)?", s)
    if m:
        return date(int(m[1]), 1, 1)
    return None


def _pick(record: dict, wanted: str, candidates: tuple[str, ...], what: str, path: Path, required: bool = True):
    if wanted:
        if wanted not in record:
            raise UserInputError(f"{path}: no field {wanted!r} for the {what} (fields: {', '.join(map(str, record))})")
        return wanted
    for name in candidates:
        if name in record:
            return name
    if required:
        raise UserInputError(f"{path}: no {what} field found (tried {', '.join(candidates)}); "
                             f"name it with --set {what}_field=NAME")
    return None


def _records_to_docs(records: list[dict], path: Path, text_field: str, date_field: str, title_field: str,
                     id_prefix: str = "") -> list[Document]:
    if not records:
        return []
    first = records[0]
    tf = _pick(first, text_field, TEXT_FIELDS, "text", path)
    df = _pick(first, date_field, DATE_FIELDS, "date", path, required=False)
    hf = _pick(first, title_field, TITLE_FIELDS, "title", path, required=False)
    docs = []
    for i, r in enumerate(records):
        text = r.get(tf) or ""
        title = str(r.get(hf) or "") if hf else ""
        docs.append(Document(doc_id=str(r.get("id") or r.get("arxiv_id") or f"{id_prefix}{i}"),
                             text=f"{title}. {text}" if title and text else str(text or title),
                             date=parse_date(r.get(df)) if df else None, title=title))
    return docs


def _json_lines(path: Path) -> list[dict]:
    """The JSON objects of a JSONL file (blank lines skipped); a bad line is a user error naming it."""
    records = []
    for n, line in enumerate(_open_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserInputError(f"{path}:{n}: not valid JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise UserInputError(f"{path}:{n}: expected a JSON object per line")
        records.append(record)
    return records


def read_jsonl(path: Path, text_field="", date_field="", title_field="") -> list[Document]:
    return _records_to_docs(_json_lines(path), path, text_field, date_field, title_field)


def read_arxiv(path: Path, text_field="", date_field="", title_field="") -> list[Document]:
    """arXiv metadata JSONL: API feed dumps (`published` = first version, `updated` = this version) or the bulk
    metadata (`versions[*].created`, `update_date`). Records are dated when arXiv announced the version at hand
    (`updated`, the last version's `created`, `update_date`), so a feed of recent announcements stays in its
    weeks even when it carries revisions of old papers; `date_field=published` dates by first version."""
    records = _json_lines(path)
    for r in records:
        versions = r.get("versions") or []
        if "published" not in r and versions:
            r["published"] = versions[0].get("created")
        r["announced"] = r.get("updated") or (versions[-1].get("created") if versions else None) or \
            r.get("update_date") or r.get("published")
    return _records_to_docs(records, path, text_field or "abstract", date_field or "announced",
                            title_field or "title", id_prefix="arxiv-")


def _csv_rows(path: Path, delimiter: str, quoting: int = csv.QUOTE_MINIMAL) -> list[dict]:
    """Rows as dicts; empty cells past the header's columns (a trailing delimiter, as Web of Science writes at
    the end of every row) are dropped, non-empty ones are an error."""
    text = _open_text(path)
    try:
        reader = csv.DictReader(io.StringIO(text), delimiter=delimiter, quoting=quoting)
        rows = [r for r in reader]
    except csv.Error as exc:
        raise UserInputError(f"{path}: malformed CSV ({exc})") from exc
    if reader.fieldnames is None:
        raise UserInputError(f"{path}: empty file, no header row")
    for i, r in enumerate(rows, 2):
        extra = r.pop(None, [])
        if any(cell.strip() for cell in extra):
            raise UserInputError(f"{path}:{i}: more cells than header columns (malformed {delimiter!r}-separated "
                                 "file)")
    return rows


def read_csv(path: Path, text_field="", date_field="", title_field="") -> list[Document]:
    return _records_to_docs(_csv_rows(path, ","), path, text_field, date_field, title_field)


_COPYRIGHT = re.compile(r"\s*(?:©|\(c\)\s*\d{4}|Copyright\s+(?:©\s*)?\d{4}).*$", re.IGNORECASE | re.DOTALL)


def read_scopus(path: Path, text_field="", date_field="", title_field="") -> list[Document]:
    """Scopus CSV export as the database writes it: UTF-8 with a BOM, every field quoted (abstracts hold commas,
    quotes and line breaks), the standard columns (Authors, Title, Year, Source title, ..., DOI, Link, Abstract,
    Author Keywords, Index Keywords, ..., Publication Stage, Open Access, Source, EID). Dated by Year; the id is
    the EID (else the DOI); '[No abstract available]' is empty and the publisher's copyright line that closes an
    abstract ('© 2021 Elsevier B.V. All rights reserved.') is cut."""
    rows = _csv_rows(path, ",")
    for r in rows:
        abstract = (r.get("Abstract") or "").strip()
        if abstract.lower() == "[no abstract available]":
            abstract = ""
        r["Abstract"] = _COPYRIGHT.sub("", abstract)
        r["id"] = r.get("EID") or r.get("DOI") or ""
    return _records_to_docs(rows, path, text_field or "Abstract", date_field or "Year", title_field or "Title",
                            id_prefix="scopus-")


def read_wos(path: Path, text_field="", date_field="", title_field="") -> list[Document]:
    """Web of Science tab-delimited export as the database writes it (UTF-8 or UTF-16 with a BOM, unquoted fields,
    a tab at the end of every row): TI title, AB abstract, PY year, PD publication date ('MAR 15', 'JAN')."""
    rows = _csv_rows(path, "\t", csv.QUOTE_NONE)
    for r in rows:
        year, pd_ = (r.get("PY") or "").strip(), (r.get("PD") or "").strip()
        month = re.match(r"([A-Za-z]{3})", pd_)
        r["date"] = f"{month[1].title()} {year}" if month and year else year
        r["id"] = r.get("UT") or r.get("DI") or ""
    return _records_to_docs(rows, path, text_field or "AB", date_field or "date", title_field or "TI",
                            id_prefix="wos-")


def read_text_folder(path: Path, **_) -> list[Document]:
    """Every *.txt file (recursively) is a document; its date comes from YYYY-MM-DD, YYYY-MM or YYYY in its name."""
    docs = []
    for f in sorted(path.rglob("*.txt")):
        m = re.search(r"(\d{4})(?:[-_](\d{2}))?(?:[-_](\d{2}))?", f.stem)
        d = None
        if m:
            try:
                d = date(int(m[1]), int(m[2] or 1), int(m[3] or 1))
            except ValueError:
                d = None
        docs.append(Document(doc_id=str(f.relative_to(path)), text=f.read_text(encoding="utf-8", errors="replace"),
                             date=d, title=f.stem))
    return docs


def read_reuters() -> list[Document]:
    """The 395 Reuters stories of the `lda` package: a bag of words per story, dated by the end of its title."""
    try:
        import lda.datasets
    except ImportError as exc:
        raise UserInputError("the built-in Reuters sample ships in the PyPI package lda: "
                             "pip install 'toolbox[data]'") from exc
    X = lda.datasets.load_reuters()
    vocab = lda.datasets.load_reuters_vocab()
    titles = lda.datasets.load_reuters_titles()
    docs = []
    for i, (row, title) in enumerate(zip(X, titles)):
        tokens = [vocab[v] for v in row.nonzero()[0] for _ in range(int(row[v]))]
        m = re.search(r"(\d{4}-\d{2}-\d{2})\s*$", title)
        name = title.split(" ", 1)[1] if " " in title else title
        docs.append(Document(doc_id=f"reuters-{i}", tokens=tokens, date=parse_date(m[1]) if m else None,
                             title=name))
    return docs


READERS = {"jsonl": read_jsonl, "csv": read_csv, "scopus": read_scopus, "wos": read_wos, "arxiv": read_arxiv}


def detect_format(path: Path) -> str:
    if path.is_dir():
        return "text"
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".json", ".ndjson")):
        head = _open_text(path)[:4000]
        return "arxiv" if '"arxiv_id"' in head or '"versions"' in head else "jsonl"
    if name.endswith((".txt", ".tsv")):
        head = _open_text(path).split("\n", 1)[0]
        if "\t" in head and {"TI", "AB", "PY"} <= set(head.split("\t")):
            return "wos"
        if "\t" in head:
            raise UserInputError(f"{path}: tab-delimited but not a Web of Science export (no TI/AB/PY columns)")
    if name.endswith(".csv"):
        try:
            head = set(next(csv.reader(_open_text(path).splitlines()[:1]), []))
        except csv.Error:  # reading it as CSV then names the problem
            head = set()
        return "scopus" if {"Title", "Year", "Abstract"} <= head and head & {"EID", "Source title"} else "csv"
    raise UserInputError(f"{path}: cannot tell the format from the name; pass --format ({', '.join(FORMATS[1:])})")


def load_documents(source: str, fmt: str = "auto", text_field: str = "", date_field: str = "",
                   title_field: str = "") -> list[Document]:
    """Raw documents from a file, a folder (of files or of .txt documents), or the built-in 'reuters'."""
    if fmt not in FORMATS:
        raise UserInputError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "reuters" or (fmt == "auto" and source == "reuters"):
        return read_reuters()
    if not source:
        raise UserInputError("no corpus given: pass a file, a folder, 'reuters' or 'synthetic'")
    path = Path(source)
    if not path.exists():
        raise UserInputError(f"corpus not found: {path}")
    if path.is_dir() and fmt != "text":
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        if fmt == "auto" and all(p.suffix == ".txt" for p in files):
            return read_text_folder(path)
        docs = []
        for f in files:
            docs += load_documents(str(f), fmt, text_field, date_field, title_field)
        return docs
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "text":
        if not path.is_dir():
            raise UserInputError(f"--format text expects a folder of .txt files, got {path}")
        return read_text_folder(path)
    return READERS[fmt](path, text_field=text_field, date_field=date_field, title_field=title_field)


# ---------------------------------------------------------------------------------------------------- cleaning

_TOKEN = re.compile(r"[a-z][a-z0-9\-]*[a-z0-9]")
_TEX = re.compile(r"\$[^$]*\$|\\[a-zA-Z]+")  # inline math and TeX commands in abstracts


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens of two or more characters (hyphenated words kept, e.g. 'measurement-device');
    TeX math ($...$) and commands (\\mathcal) are removed first."""
    return _TOKEN.findall(_TEX.sub(" ", text).lower())


def _stopwords(extra: list[str]) -> frozenset[str]:
    from gensim.parsing.preprocessing import STOPWORDS

    return frozenset(STOPWORDS) | {w.lower() for w in extra}


def stemmer():
    from gensim.parsing.porter import PorterStemmer

    return PorterStemmer().stem


def check_bin(bin_spec: str) -> None:
    if bin_spec.isdigit() and int(bin_spec) < 1:
        raise UserInputError("--bin N needs N >= 1")
    if not bin_spec.isdigit() and bin_spec not in BINS:
        raise UserInputError(f"--bin must be one of {', '.join(BINS)} or a number of bins, got {bin_spec!r}")


def time_bins(dates: list[date], bin_spec: str) -> tuple[list[int], list[str]]:
    """Slice index per date and the slice labels: calendar bins (year/quarter/month/week) or N equal-width bins.

    Calendar bins cover every period from the first date to the last, empty periods included, so slices are
    equally spaced in time (the trend slope is per slice).
    """
    check_bin(bin_spec)
    if bin_spec.isdigit():
        n = int(bin_spec)
        lo, hi = min(dates).toordinal(), max(dates).toordinal()
        width = max(hi - lo + 1, 1) / n
        idx = [min(int((d.toordinal() - lo) / width), n - 1) for d in dates]
        labels = [date.fromordinal(int(lo + i * width)).isoformat() for i in range(n)]
        return idx, labels

    def key(d: date) -> int:
        if bin_spec == "year":
            return d.year
        if bin_spec == "quarter":
            return d.year * 4 + (d.month - 1) // 3
        if bin_spec == "month":
            return d.year * 12 + d.month - 1
        return (d - timedelta(days=d.weekday())).toordinal() // 7  # ISO weeks start on Monday

    def label(k: int) -> str:
        if bin_spec == "year":
            return str(k)
        if bin_spec == "quarter":
            return f"{k // 4}-Q{k % 4 + 1}"
        if bin_spec == "month":
            return f"{k // 12}-{k % 12 + 1:02d}"
        iso = date.fromordinal(k * 7 + 1).isocalendar()  # ordinal 1 (0001-01-01) is a Monday
        return f"{iso[0]}-W{iso[1]:02d}"

    keys = [key(d) for d in dates]
    first = min(keys)
    span = range(first, max(keys) + 1)
    return [k - first for k in keys], [label(k) for k in span]


def clean(docs: list[Document], bin_spec: str = "year", stem: bool = False, phrases: bool = True,
          extra_stopwords: list[str] | None = None, min_tokens: int = 3, date_from: str = "",
          date_to: str = "") -> Corpus:
    """Tokens, stop words, optional Porter stemming and gensim bigram phrases, time bins; records what was dropped.

    date_from / date_to (ISO dates, inclusive, '' for open) keep a time window.
    """
    if not docs:
        raise UserInputError("the corpus is empty: no documents were read")
    window = []
    for name, value in (("date_from", date_from), ("date_to", date_to)):
        parsed = parse_date(value) if value else None
        if value and parsed is None:
            raise UserInputError(f"{name} must be an ISO date like 2026-01-12, got {value!r}")
        window.append(parsed)
    stop = _stopwords(extra_stopwords or [])
    stem_fn = stemmer() if stem else None
    dropped: Counter = Counter()
    examples: dict[str, list[str]] = {}
    kept_docs, kept_tokens = [], []
    n_raw_tokens = n_stop = 0
    for d in docs:
        raw = d.tokens if d.tokens is not None else tokenize(d.text)
        n_raw_tokens += len(raw)
        toks = [t for t in raw if t not in stop and not t.isdigit()]
        n_stop += len(raw) - len(toks)
        if stem_fn:
            toks = [stem_fn(t) for t in toks]
        reason = None
        if d.date is None:
            reason = "no parseable date"
        elif window[0] and d.date < window[0]:
            reason = "before date_from"
        elif window[1] and d.date > window[1]:
            reason = "after date_to"
        elif len(toks) < min_tokens:
            reason = f"fewer than {min_tokens} tokens after cleaning"
        if reason:
            dropped[reason] += 1
            examples.setdefault(reason, [])
            if len(examples[reason]) < 5:
                examples[reason].append(d.title or d.doc_id)
            continue
        kept_docs.append(d)
        kept_tokens.append(toks)
    if not kept_docs:
        why = "; ".join(f"{n} with {r}" for r, n in dropped.items())
        raise UserInputError(f"no usable documents: all {len(docs)} were dropped ({why})")
    n_phrases = 0
    if phrases and all(d.tokens is None for d in kept_docs):  # phrases need word order: not for bags of words
        from gensim.models.phrases import Phrases

        bigram = Phrases(kept_tokens, min_count=5, threshold=10.0, delimiter="_")
        kept_tokens = [bigram[t] for t in kept_tokens]
        n_phrases = len({w for t in kept_tokens for w in t if "_" in w})
    dates = [d.date for d in kept_docs]
    slices, labels = time_bins(dates, bin_spec)
    report = {
        "documents_read": len(docs),
        "documents_kept": len(kept_docs),
        "dropped": dict(dropped),
        "dropped_examples": examples,
        "tokens_read": n_raw_tokens,
        "stopwords_removed": n_stop,
        "bigram_phrases": n_phrases,
        "stemmed": stem,
        "first_date": min(dates).isoformat(),
        "last_date": max(dates).isoformat(),
        "bin": bin_spec,
        "slices": len(labels),
        "documents_per_slice": [slices.count(s) for s in range(len(labels))],
    }
    return Corpus(doc_ids=[d.doc_id for d in kept_docs], titles=[d.title for d in kept_docs],
                  texts=[d.text if d.tokens is None else " ".join(d.tokens[:60]) for d in kept_docs],
                  tokens=kept_tokens, dates=dates, slices=slices, slice_labels=labels, report=report,
                  ordered=all(d.tokens is None for d in kept_docs))
