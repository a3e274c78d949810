"""map-landscape, issue #15 item 5: slice support (peaks and trends), coherence on the original token order, Scopus
CSV exports as the database writes them, settings checked before the run folder, planted trends at the defaults."""
import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from toolbox.cli.main import app
from toolbox.landscape import corpus as cp
from toolbox.landscape import metrics as mt
from toolbox.landscape import model as md
from toolbox.landscape.pipeline import LandscapeConfig, derived_k_range, run

runner = CliRunner()
QUANTUM = ["photon", "qubit", "entanglement", "teleportation", "repeater", "detector", "fidelity", "decoherence"]
MARKET = ["market", "price", "stock", "trader", "inflation", "bond", "dividend", "currency"]


def _mixed_corpus(path, shares, per_month, length=24, seed=0):
    """JSONL documents of 2020: month m has per_month[m] documents, round(shares[m] x per_month[m]) of them drawn
    from the QUANTUM words, the others from the MARKET words."""
    rng = np.random.default_rng(seed)
    lines = []
    for m, (share, n) in enumerate(zip(shares, per_month)):
        for i in range(n):
            words = rng.choice(QUANTUM if i < round(share * n) else MARKET, length)
            lines.append(json.dumps({"text": " ".join(words), "date": f"2020-{m + 1:02d}-10", "title": f"{m}-{i}"}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_wls_trend_against_statsmodels_and_ols():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(3)
    y = 0.2 + 0.01 * np.arange(8) + rng.normal(0, 0.01, 8)
    w = np.array([40, 3, 50, 60, 10, 45, 80, 30.0])
    fit = sm.WLS(y, sm.add_constant(np.arange(8.0)), weights=w).fit()
    t = mt.trend(y, w)
    assert t["slope"] == pytest.approx(fit.params[1], rel=1e-10)
    assert t["p_value"] == pytest.approx(fit.pvalues[1], rel=1e-8)
    assert [t["ci_low"], t["ci_high"]] == pytest.approx(fit.conf_int()[1], rel=1e-8)
    ols = mt.trend(y, np.full(8, 7.0))  # equal weights: ordinary least squares
    fit = sm.OLS(y, sm.add_constant(np.arange(8.0))).fit()
    assert ols["slope"] == pytest.approx(fit.params[1]) and ols["p_value"] == pytest.approx(fit.pvalues[1])
    gap = w.copy()
    gap[2] = 0  # a slice kept out is the same as a missing one
    dropped = y.copy()
    dropped[2] = np.nan
    assert mt.trend(y, gap) == pytest.approx(mt.trend(dropped, np.where(gap > 0, w, 1.0)))


def test_support_threshold_rule_and_peak():
    assert mt.min_slice_docs([300] * 10) == 30  # max(5, ceil(0.1 x 300))
    assert mt.min_slice_docs([30, 2, 0, 30]) == 5  # empty slices do not lower the mean; floor 5
    assert mt.min_slice_docs([61, 60]) == 7
    series = np.array([0.2, 0.3, 0.9, 0.4])
    assert mt.peak(series, [True, True, False, True]) == 3
    assert mt.peak(series, [False] * 4) is None


def test_a_two_document_month_no_longer_decides_the_peak(tmp_path):
    """April holds 2 documents that are all QUANTUM: its share (~1) is the series' maximum, so it would be the
    peak; with slice support it is flagged (2 < 5), the peak is June and the trend is fitted without it."""
    shares, per_month = [0.2, 0.3, 0.4, 1.0, 0.5, 0.6], [30, 30, 30, 2, 30, 30]
    path = _mixed_corpus(tmp_path / "c.jsonl", shares, per_month)
    cfg = LandscapeConfig(source=str(path), bin="month", k=2, max_df=1.0, phrases=False, plots=True)
    summary = run(cfg, tmp_path / "run", 0)
    support = summary["slice_support"]
    assert support["min_slice_docs"] == 5 and support["rule"].startswith("derived")
    assert support["flagged"] == [{"slice": 3, "label": "2020-04", "documents": 2}]
    with open(tmp_path / "run" / "magnitude.csv", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["model"] == "base"]
    mag = np.zeros((6, 2))
    for r in rows:
        mag[int(r["slice"]), int(r["topic"])] = float(r["magnitude"])
    quantum = next(t for t in summary["topics"] if t["top_words"][0] in QUANTUM)["topic"]
    assert int(np.argmax(mag[:, quantum])) == 3  # without support, April would be the peak
    topic = summary["topics"][quantum]
    assert topic["peak"] == "2020-06" and topic["label"] == "emerging"
    counts = np.array(per_month, float)
    expected = mt.trend(mag[:, quantum], np.where(counts >= 5, counts, 0))
    assert topic["slope"] == pytest.approx(expected["slope"])
    assert topic["slope"] != pytest.approx(mt.trend(mag[:, quantum])["slope"], rel=1e-3)
    with open(tmp_path / "run" / "slices.csv", encoding="utf-8") as fh:
        flags = [r["supported"] for r in csv.DictReader(fh) if r["model"] == "base"]
    assert flags == ["True", "True", "True", "False", "True", "True"]
    shifts = summary["base"]["entropy_shifts"]  # into and out of April: no change point
    assert [e["low_support"] for e in shifts] == [False, False, True, True, False]
    assert not shifts[2]["significant"] and not shifts[3]["significant"]
    assert "2020-04 (2 documents)" in (tmp_path / "run" / "report.md").read_text()
    cfg.min_slice_docs, cfg.plots = 1, False  # a threshold of 1 keeps every non-empty slice: April decides again
    assert run(cfg, tmp_path / "keep", 0)["topics"][quantum]["peak"] == "2020-04"


def test_coherence_sees_the_original_token_order(tmp_path):
    """Each document is QUANTUM and MARKET runs of 12 words in a row: true-order windows of 10 rarely mix the two,
    vocabulary-order windows (the bag of words sorted by word id) do; the sweep must equal gensim on the true
    order."""
    rng = np.random.default_rng(1)
    lines = []
    for i in range(60):
        runs = [list(rng.choice(QUANTUM, 12)), list(rng.choice(MARKET, 12))] * 2
        rng.shuffle(runs)
        lines.append(json.dumps({"text": " ".join(w for r in runs for w in r), "date": f"20{10 + i % 4}-05-01"}))
    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    cfg = LandscapeConfig(source=str(path), k_range="2,3", max_df=1.0, phrases=False, plots=False)
    summary = run(cfg, tmp_path / "run", 0)
    corpus = cp.clean(cp.load_documents(str(path)), "year", phrases=False)
    dictionary, bow, _ = md.build_dictionary(corpus.tokens, 2, 1.0)
    vocab_order = [sorted(t, key=dictionary.token2id.get) for t in corpus.tokens]
    from gensim.models import CoherenceModel

    for row in summary["coherence_sweep"]:
        lda = md.fit_lda(bow, dictionary, row["k"], 0, md.LdaSettings())

        def npmi(texts, lda=lda):
            return CoherenceModel(model=lda, texts=texts, dictionary=dictionary, coherence="c_npmi", topn=10,
                                  processes=1).get_coherence()

        assert row["c_npmi"] == pytest.approx(npmi(corpus.tokens), abs=1e-9)
        assert abs(npmi(vocab_order) - npmi(corpus.tokens)) > 0.05
    assert summary["coherence_window"].startswith("gensim default")


def test_bags_of_words_get_one_window_per_document(tmp_path):
    from toolbox.landscape.pipeline import prepare

    cfg = LandscapeConfig(source="synthetic", k_range="2,3")
    cfg.synthetic.docs_per_slice, cfg.synthetic.doc_length, cfg.synthetic.slices = 10, 30, 2
    inputs = prepare(cfg, 0)
    assert not inputs.corpus.ordered and inputs.ingest["token_order"] == "bag of words"
    assert inputs.coherence_window == max(len(t) for t in inputs.corpus.tokens)
    assert inputs.ks == [2, 3]


def test_derived_k_range():
    assert derived_k_range(3000) == [2, 3, 5, 7, 11, 17, 26, 39]
    assert derived_k_range(10) == [2, 3]
    assert max(derived_k_range(10 ** 6)) == 60


def test_scopus_export_as_the_database_writes_it(tmp_path):
    """Scopus 'CSV' export: UTF-8 with a BOM, every field quoted, CRLF rows, the standard column layout; abstracts
    with commas, doubled quotes and line breaks, the publisher's copyright line, '[No abstract available]'."""
    cols = ["Authors", "Author full names", "Author(s) ID", "Title", "Year", "Source title", "Volume", "Issue",
            "Art. No.", "Page start", "Page end", "Page count", "Cited by", "DOI", "Link", "Affiliations",
            "Authors with affiliations", "Abstract", "Author Keywords", "Index Keywords", "Funding Details",
            "References", "Correspondence Address", "Publisher", "ISSN", "Language of Original Document",
            "Abbreviated Source Title", "Document Type", "Publication Stage", "Open Access", "Source", "EID"]
    records = [
        {"Authors": "Smith J.; Lee K.", "Title": "Twin-field QKD over 830 km", "Year": "2022",
         "Source title": "Nature Photonics", "DOI": "10.1038/s41566-022-00001-1",
         "Abstract": 'Quantum key distribution, "twin-field" protocols\nreach 830 km of fibre. '
                     "© 2022, The Author(s), under exclusive licence to Springer Nature Limited.",
         "Author Keywords": "QKD; twin-field", "Index Keywords": "Quantum cryptography; Optical fibers",
         "Document Type": "Article", "Publication Stage": "Final", "Source": "Scopus",
         "EID": "2-s2.0-85130000001"},
        {"Authors": "Chen Y.", "Title": "Repeaters, memories and networks", "Year": "2023",
         "Source title": "Phys. Rev. A", "Abstract": "[No abstract available]", "Document Type": "Article",
         "Publication Stage": "Article in press", "Source": "Scopus", "EID": "2-s2.0-85140000002"},
    ]
    body = "\r\n".join(",".join('"' + r.get(c, "").replace('"', '""') + '"' for c in cols)
                       for r in [dict(zip(cols, cols)), *records]) + "\r\n"
    path = tmp_path / "scopus.csv"
    path.write_bytes(body.encode("utf-8-sig"))
    assert cp.detect_format(path) == "scopus"
    docs = cp.load_documents(str(path))
    assert [d.doc_id for d in docs] == ["2-s2.0-85130000001", "2-s2.0-85140000002"]
    assert [d.date.year for d in docs] == [2022, 2023] and docs[0].title == "Twin-field QKD over 830 km"
    assert '"twin-field" protocols\nreach 830 km of fibre.' in docs[0].text
    assert "Springer" not in docs[0].text and "©" not in docs[0].text
    assert docs[1].text == "Repeaters, memories and networks"


def _refused_before_the_run_folder(args, tmp_path, match):
    out = tmp_path / "never"
    result = runner.invoke(app, ["map-landscape", *args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert match in result.output and "Traceback" not in result.output
    assert not out.exists()  # nothing written, not even config.toml


def test_settings_and_files_are_checked_before_the_run_folder(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "quantum key", "date": "2020"}\n{oops\n')
    aspects = tmp_path / "aspects.toml"
    aspects.write_text("[a]\nw0001 = 1\n[b]\nw0002 = 1\n[c]\nw0003 = 1\n")
    for args, match in [
        ([str(bad)], "not valid JSON"),
        (["synthetic", "--k-range", "ten"], "k_range"),
        (["synthetic", "--k", "1"], "k must be at least 2"),
        (["synthetic", "--bin", "0"], "--bin N needs N >= 1"),
        (["synthetic", "--date-from", "2021-05-01", "--date-to", "2020-01-01"], "after date_to"),
        (["synthetic", "--date-from", "yesterday"], "date_from must be an ISO date"),
        (["synthetic", "--set", "lda.alpha='flat'"], "lda.alpha"),
        (["synthetic", "--set", "lda.engine='multicore'", "--set", "lda.alpha='auto'"], "alpha='auto'"),
        (["synthetic", "--set", "seed_strength_grid=[1.0]"], "pass --aspects"),
        (["synthetic", "--set", "synthetic.vocabulary=3"], "synthetic.vocabulary"),
        (["synthetic", "--k", "2", "--aspects", str(aspects)], "3 aspects need at least 3 topics"),
        (["synthetic", "--previous", str(tmp_path)], "no model.npz"),
        (["synthetic", "--agent", "foo"], "agent"),
    ]:
        _refused_before_the_run_folder(args, tmp_path, match)


def _planted_at_defaults(tmp_path, *extra):
    result = runner.invoke(app, ["map-landscape", "synthetic", "--out", str(tmp_path / "run"), "--json", *extra])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    return doc, doc["planted"]


def test_planted_checks_hold_at_the_defaults_small_corpus(tmp_path):
    """Default settings (K by coherence over the derived range, default LDA and slices) on 600 documents instead
    of 3,000 (passes for seeds 0-2, K = 5 each; at 40 documents of 50 tokens per slice LDA's sharpening of short
    documents flattens H(M) and the entropy direction fails for seed 1: too little data, not a setting)."""
    doc, p = _planted_at_defaults(tmp_path, "--set", "synthetic.docs_per_slice=60", "--set", "plots=false")
    assert p["passed"], p
    assert doc["k"] == 5 and p["magnitude_pearson_r"] >= 0.9 and p["mix_entropy_slope"] < 0


@pytest.mark.slow
def test_planted_checks_hold_at_the_cli_defaults(tmp_path):
    """`toolbox map-landscape synthetic` with nothing set: K = 39 fixed (the old default) split the five planted
    topics and missed the checks (seed 4: H(M) 2.939 -> 3.213, the wrong way; seed 2: rising topic ranked 2)."""
    doc, p = _planted_at_defaults(tmp_path)
    assert p["passed"], p
    assert doc["k"] == 5 and p["rising_topic_rank"] == 1
    assert abs(p["mix_entropy_first"] - p["mix_entropy_first_truth"]) < 0.08
    assert abs(p["mix_entropy_last"] - p["mix_entropy_last_truth"]) < 0.08
