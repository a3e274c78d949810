"""Ingest (every source format, cleaning, binning, drop report), the Reuters sample and aspect files."""
import gzip
import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolbox.core.errors import UserInputError
from toolbox.landscape import aspects as asp
from toolbox.landscape import corpus as cp

QUANTPH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "quantph"
TEXT = "Quantum key distribution protocols secure the channel against eavesdropping attacks."


def test_jsonl_csv_and_gzip(tmp_path):
    rows = [{"text": TEXT, "date": "2021-03-04", "title": "a"}, {"text": TEXT, "date": "2022", "title": "b"}]
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "c.jsonl.gz").write_bytes(gzip.compress((tmp_path / "c.jsonl").read_bytes()))
    (tmp_path / "c.csv").write_text(f'body,published\n"{TEXT}",2020-01-02\n')
    for name in ("c.jsonl", "c.jsonl.gz"):
        docs = cp.load_documents(str(tmp_path / name))
        assert [d.date for d in docs] == [date(2021, 3, 4), date(2022, 1, 1)] and docs[0].title == "a"
    docs = cp.load_documents(str(tmp_path / "c.csv"))
    assert docs[0].date == date(2020, 1, 2) and "eavesdropping" in docs[0].text


def test_scopus_wos_arxiv_and_text_folder(tmp_path):
    (tmp_path / "scopus.csv").write_text(
        'Authors,Title,Year,Source title,Abstract,EID\n'
        f'X,QKD review,2019,J,"{TEXT}",2-s2.0-1\nY,Empty,2020,J,[No abstract available],2-s2.0-2\n')
    docs = cp.load_documents(str(tmp_path / "scopus.csv"))
    assert cp.detect_format(tmp_path / "scopus.csv") == "scopus"
    assert docs[0].doc_id == "2-s2.0-1" and docs[0].date == date(2019, 1, 1) and docs[1].text.strip(". ") == "Empty"
    header = "PT\tAU\tTI\tAB\tPY\tPD\tUT\n"
    (tmp_path / "wos.txt").write_text(header + "J\tX\tRepeaters\t" + TEXT + "\t2018\tMAR 15\tWOS:1\n",
                                      encoding="utf-8-sig")
    docs = cp.load_documents(str(tmp_path / "wos.txt"))
    assert docs[0].date == date(2018, 3, 1) and docs[0].title == "Repeaters" and docs[0].doc_id == "WOS:1"
    (tmp_path / "arxiv.jsonl").write_text(json.dumps({"id": "0704.0001", "title": "T", "abstract": TEXT,
                                                      "versions": [{"created": "Mon, 2 Apr 2007 19:18:42 GMT"}]}))
    assert cp.load_documents(str(tmp_path / "arxiv.jsonl"), "arxiv")[0].date == date(2007, 4, 2)
    folder = tmp_path / "txt"
    folder.mkdir()
    (folder / "2020-05-01_a.txt").write_text(TEXT)
    (folder / "undated.txt").write_text(TEXT)
    docs = cp.load_documents(str(folder))
    corpus = cp.clean(docs, "year")
    assert len(corpus) == 1 and corpus.report["dropped"] == {"no parseable date": 1}


def test_cleaning_removes_stopwords_and_stems():
    docs = [cp.Document("a", text="The protocols are secure and the channels are noisy", date=date(2020, 1, 1))]
    toks = cp.clean(docs, "year", phrases=False).tokens[0]
    assert "the" not in toks and "protocols" in toks
    assert "protocol" in cp.clean(docs, "year", stem=True, phrases=False).tokens[0]


@pytest.mark.parametrize("spec,labels,index", [
    ("year", ["2020", "2021"], [0, 0, 1]),
    ("quarter", ["2020-Q1", "2020-Q2", "2020-Q3", "2020-Q4", "2021-Q1"], [0, 1, 4]),
    ("month", None, [0, 3, 12]),
    ("2", ["2020-01-15", None], [0, 0, 1]),
])
def test_time_bins(spec, labels, index):
    dates = [date(2020, 1, 15), date(2020, 4, 2), date(2021, 1, 3)]
    idx, labs = cp.time_bins(dates, spec)
    assert idx == index
    if labels:
        assert [a for a, b in zip(labs, labels) if b] == [b for b in labels if b]
    weeks, week_labels = cp.time_bins([date(2026, 1, 12), date(2026, 1, 18), date(2026, 1, 19)], "week")
    assert weeks == [0, 0, 1] and week_labels == ["2026-W03", "2026-W04"]


def test_bad_inputs_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a", "date": "2020"}\n{not json\n')
    with pytest.raises(UserInputError, match=r"bad.jsonl:2: not valid JSON"):
        cp.load_documents(str(bad))
    ragged = tmp_path / "r.csv"
    ragged.write_text("text,date\nhello,2020,extra\n")
    with pytest.raises(UserInputError, match="more cells"):
        cp.load_documents(str(ragged))
    with pytest.raises(UserInputError, match="no text field"):
        (tmp_path / "n.jsonl").write_text('{"body_text": "a"}\n')
        cp.load_documents(str(tmp_path / "n.jsonl"))
    with pytest.raises(UserInputError, match="empty"):
        cp.clean([], "year")
    with pytest.raises(UserInputError, match="all 2 were dropped.*no parseable date"):
        cp.clean([cp.Document(str(i), text=TEXT) for i in range(2)], "year")
    with pytest.raises(UserInputError, match="not found"):
        cp.load_documents(str(tmp_path / "missing.csv"))
    with pytest.raises(UserInputError, match="--bin"):
        cp.time_bins([date(2020, 1, 1)], "decade")


def test_reuters_sample():
    pytest.importorskip("lda")  # the sample ships in the PyPI package lda (toolbox[data])
    docs = cp.read_reuters()
    assert len(docs) == 395
    dated = [d.date for d in docs if d.date]
    # 390 titles end in an ISO date; 5 have none or a day without a year (docs 187, 281, 301, 303, 312)
    assert len(dated) == 390
    assert max(dated) == date(1997, 8, 18)
    assert sum("Mother Teresa" in d.title for d in docs) == 25
    corpus = cp.clean(docs, "quarter")
    assert corpus.report["documents_kept"] == 390 and corpus.report["dropped"] == {"no parseable date": 5}


def test_aspect_files_toml_yaml_and_unknown_words(tmp_path):
    toml = tmp_path / "a.toml"
    toml.write_text('[aspects.QKD]\n"key distribution" = 2\nbb84 = 1\n[aspects.Repeaters]\nrepeater = 1\nzzz = 1\n')
    yaml = tmp_path / "a.yaml"
    yaml.write_text("QKD:\n  key distribution: 2\n  bb84: 1\nRepeaters:\n  repeater: 1\n  zzz: 1\n")
    assert asp.read_aspects_file(toml) == asp.read_aspects_file(yaml)
    vocab = {"key_distribution": 0, "repeater": 1, "bb84": 2, "channel": 3}
    a = asp.match_aspects(asp.read_aspects_file(toml), vocab)
    assert a.names == ["QKD", "Repeaters"] and a.missing["Repeaters"] == ["zzz"]
    assert a.weights[0].tolist() == [2, 0, 1, 0]
    split = asp.match_aspects({"X": {"key channel": 1}}, vocab)  # no phrase: its words that are known
    assert split.matched["X"]["key channel"] == ["channel"]
    with pytest.raises(UserInputError, match="no aspect keyword is in the corpus vocabulary"):
        asp.match_aspects({"X": {"nothing": 1}}, vocab)
    bad = tmp_path / "bad.toml"
    bad.write_text("[X]\nword = -1\n")
    with pytest.raises(UserInputError, match="weight must be a number >= 0"):
        asp.read_aspects_file(bad)
    bad.write_text("[X\n")
    with pytest.raises(UserInputError, match="not valid TOML"):
        asp.read_aspects_file(bad)


def test_seeded_prior_and_alignment():
    w = np.array([[0, 2.0, 1.0, 0]])
    eta, boost = asp.seeded_prior(w, 3, 0.5, 10.0)
    assert eta[0].tolist() == [0.5, 0.5 * 11, 0.5 * 6, 0.5] and (eta[1:] == 0.5).all()
    assert boost[0].tolist() == [0, 10, 5, 0] and not boost[1:].any()
    with pytest.raises(UserInputError, match="at least"):
        asp.seeded_prior(np.ones((4, 3)), 3, 0.5, 1.0)
    bow = [[(0, 3), (1, 1)], [(2, 2), (3, 2)], [(0, 1)]]
    X = asp.tfidf_rows(bow, 4)
    assert np.linalg.norm(X.toarray(), axis=1) == pytest.approx(1.0)
    res = asp.align(X, np.array([[1.0, 0, 0, 0], [0, 0, 1.0, 1.0]]), tau=0.1)
    assert res["assignment"].tolist() == [0, 1, 0] and res["converged"]


@pytest.mark.skipif(not QUANTPH.is_dir(), reason="shared quant-ph corpus not present")
def test_quantph_corpus():
    docs = cp.load_documents(str(QUANTPH), date_field="updated")  # 'published' is the first version's date
    assert len(docs) == 2096 and all(d.date for d in docs)
    corpus = cp.clean(docs, "week", date_from="2026-01-01")
    assert corpus.slice_labels == ["2026-W01", "2026-W02", "2026-W03", "2026-W04", "2026-W05", "2026-W06"]
    assert corpus.report["dropped"] == {"before date_from": 3} and len(corpus) == 2093


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=40), st.integers(), st.floats(allow_nan=True), st.none()))
def test_parse_date_never_crashes(value):
    d = cp.parse_date(value)
    assert d is None or isinstance(d, date)


@pytest.mark.parametrize("value,expected", [
    ("2026-01-15T10:19:22Z", date(2026, 1, 15)), ("Mon, 2 Apr 2007 19:18:42 GMT", date(2007, 4, 2)),
    ("Mar 2018", date(2018, 3, 1)), (2019, date(2019, 1, 1)), ("2019.0", date(2019, 1, 1)),
    ("2021-02-30", None), ("soon", None), (True, None),
])
def test_parse_date_formats(value, expected):
    assert cp.parse_date(value) == expected


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=200), st.sampled_from(["c.jsonl", "c.csv", "c.tsv"]))
def test_arbitrary_file_content_is_read_or_rejected_cleanly(tmp_path_factory, content, name):
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_text(content, encoding="utf-8")
    try:
        docs = cp.load_documents(str(path))
    except UserInputError:
        return
    assert all(isinstance(d, cp.Document) for d in docs)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_web_of_science_export_as_the_database_writes_it(tmp_path, encoding):
    """WoS 'Tab-delimited' export: the standard field tags, unquoted fields (an abstract may hold a lone double
    quote), a tab at the end of every data row, CRLF line ends, a BOM (UTF-8 or UTF-16 LE)."""
    tags = ["PT", "AU", "BA", "BE", "GP", "AF", "BF", "CA", "TI", "SO", "SE", "BS", "LA", "DT", "CT", "CY", "CL",
            "SP", "HO", "DE", "ID", "AB", "C1", "C3", "RP", "EM", "RI", "OI", "FU", "FP", "FX", "CR", "NR", "TC",
            "Z9", "U1", "U2", "PU", "PI", "PA", "SN", "EI", "BN", "J9", "JI", "PD", "PY", "VL", "IS", "PN", "SU",
            "SI", "MA", "BP", "EP", "AR", "DI", "DL", "D2", "EA", "PG", "WC", "WE", "SC", "GA", "PM", "OA", "HC",
            "HP", "DA", "UT"]
    def row(title, abstract, pd_, py, ut):
        cells = {t: "" for t in tags} | {"PT": "J", "AU": "Smith, J; Lee, K", "TI": title, "AB": abstract,
                                         "PD": pd_, "PY": py, "UT": ut, "SO": "PHYS REV A"}
        return "\t".join(cells[t] for t in tags) + "\t\r\n"
    text = "\t".join(tags) + "\r\n" + row("Quantum repeaters", 'A so-called "quantum repeater ' + TEXT, "MAR 15",
                                          "2018", "WOS:000001") + row("QKD", TEXT, "", "2019", "WOS:000002")
    path = tmp_path / "savedrecs.txt"
    path.write_bytes(text.encode(encoding))
    assert cp.detect_format(path) == "wos"
    docs = cp.load_documents(str(path))
    assert [d.doc_id for d in docs] == ["WOS:000001", "WOS:000002"]
    assert [d.date for d in docs] == [date(2018, 3, 1), date(2019, 1, 1)]
    assert docs[0].title == "Quantum repeaters" and '"quantum repeater' in docs[0].text


def test_extra_non_empty_cells_are_still_an_error(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("title,text,date\na,b,2020,surplus\n")
    with pytest.raises(UserInputError, match="more cells than header columns"):
        cp.load_documents(str(path))


def test_arxiv_records_are_dated_by_announcement(tmp_path):
    """A feed of this month's announcements that carries a revision of a 2007 paper stays in this month (dating by
    first version spread a 4-week feed over 425 weekly slices); date_field=published keeps the old reading."""
    feed = [{"id": "0704.0001v3", "title": "Revised", "abstract": TEXT, "published": "2007-04-02T19:18:42Z",
             "updated": "2024-05-07T10:00:00Z"},
            {"id": "2405.00001", "title": "New", "abstract": TEXT, "published": "2024-05-01T09:00:00Z",
             "updated": "2024-05-01T09:00:00Z"}]
    bulk = {"id": "0704.0002", "title": "Bulk", "abstract": TEXT, "update_date": "2024-05-03",
            "versions": [{"created": "Mon, 2 Apr 2007 19:18:42 GMT"}, {"created": "Fri, 3 May 2024 08:00:00 GMT"}]}
    path = tmp_path / "feed.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [*feed, bulk]))
    assert [d.date for d in cp.load_documents(str(path), "arxiv")] == [date(2024, 5, 7), date(2024, 5, 1),
                                                                      date(2024, 5, 3)]
    assert [d.date for d in cp.load_documents(str(path), "arxiv", date_field="published")] == [
        date(2007, 4, 2), date(2024, 5, 1), date(2007, 4, 2)]
