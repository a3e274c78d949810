"""The map-landscape pipeline end to end: planted trends, Reuters seeding, the CLI, iterations, bad input."""
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from toolbox.cli.main import app
from toolbox.landscape import aspects as asp
from toolbox.landscape import corpus as cp
from toolbox.landscape import model as md
from toolbox.landscape.demo import planted_config
from toolbox.landscape.pipeline import run

runner = CliRunner()
SMALL = ["--set", "synthetic.docs_per_slice=40", "--set", "synthetic.doc_length=50", "--set", "k=5",
         "--set", "max_df=1.0", "--set", "lda.engine='single'", "--set", "lda.passes=3", "--set", "plots=false"]


def _planted(seed, tmp_path):
    return run(planted_config(), tmp_path, seed)["planted"]


def test_planted_trend_is_recovered(tmp_path):
    p = _planted(0, tmp_path)
    assert p["magnitude_pearson_r"] >= 0.9
    assert abs(p["mix_entropy_first"] - 1.5728) < 0.05 and abs(p["mix_entropy_last"] - 1.3863) < 0.05
    assert p["mix_entropy_last"] < p["mix_entropy_first"]
    assert p["rising_topic_rank"] == 1
    summary = json.loads((tmp_path / "summary.json").read_text())
    rising = summary["topics"][p["rising_topic_model_topics"][0]]
    assert rising["label"] == "emerging" and summary["base"]["labels"]["emerging"] == 1


@pytest.mark.slow
def test_planted_rising_topic_ranked_first_in_9_of_10_seeds(tmp_path):
    ranks = [_planted(seed, tmp_path / str(seed))["rising_topic_rank"] for seed in range(10)]
    assert sum(r == 1 for r in ranks) >= 9, ranks


def test_reuters_seeded_aspect_captures_mother_teresa():
    pytest.importorskip("lda")  # the sample ships in the PyPI package lda (toolbox[data])
    corpus = cp.clean(cp.read_reuters(), "quarter")
    dictionary, bow, _ = md.build_dictionary(corpus.tokens, 2, 0.5)
    slices, n = np.array(corpus.slices), len(corpus.slice_labels)
    settings = md.LdaSettings(engine="single")
    aspects = asp.match_aspects({"teresa": {"teresa": 1, "calcutta": 1, "nuns": 1}}, dictionary.token2id)
    base = md.fit(bow, dictionary, 20, 1, settings, slices, n)
    seeded = md.fit(bow, dictionary, 20, 1, settings, slices, n, *asp.seeded_prior(aspects.weights, 20, 0.05, 10))
    teresa = np.array(["Mother Teresa" in t for t in corpus.titles])
    assert teresa.sum() == 25
    assert (seeded.theta[teresa].argmax(axis=1) == 0).mean() >= 0.8
    top10 = {dictionary[i] for i in np.argsort(-seeded.phi[0])[:10]}
    assert len(top10 & {"teresa", "calcutta", "nuns"}) >= 2
    assert seeded.perplexity <= 1.10 * base.perplexity
    align = asp.align(asp.tfidf_rows(bow, len(dictionary)), aspects.weights, tau=0.1)
    assert (align["assignment"][teresa] == 0).mean() >= 0.8


def test_cli_run_feedback_and_next_iteration(tmp_path):
    first = tmp_path / "it1"
    result = runner.invoke(app, ["map-landscape", "synthetic", "--out", str(first), "--json", "--bin", "year",
                                 "--agent", "bandit", "--episodes", "100", *SMALL])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["schema_version"] == 1 and doc["k"] == 5 and doc["slices"] == 10
    assert sorted(doc["ranking"]) == list(range(5)) and doc["planted"]["magnitude_pearson_r"] > 0.8
    for name in ("config.toml", "summary.json", "topics.csv", "slices.csv", "magnitude.csv", "rl_curve.csv",
                 "model.npz", "aspects_feedback.toml", "ingest_report.json", "similarity_jsd.csv"):
        assert (first / name).is_file(), name
    assert 'agent = "bandit"' in (first / "config.toml").read_text()
    feedback = first / "aspects_feedback.toml"
    assert len(asp.read_aspects_file(feedback)) == 5  # candidate aspects from the top-ranked topics
    second = tmp_path / "it2"
    result = runner.invoke(app, ["map-landscape", "synthetic", "--out", str(second), "--json", "--previous",
                                 str(first), "--aspects", str(feedback), "--set", "plots=true", *SMALL[:-2]])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    it = doc["iteration"]
    assert it["model_change_jsd"] == pytest.approx(0.0, abs=1e-9)  # same data and seed: the same base model
    assert it["new_topics"] == 0 and it["label_changes"] == 0 and "aspect_model" not in it  # it1 had no aspects
    assert doc["aspect"]["converged"] and len(doc["aspect"]["names"]) == 5
    html = (second / "report.html").read_text()
    assert "data:image/png;base64," in html and "Diff against the previous iteration" in html
    assert (second / "alignment.csv").is_file() and (second / "rl_curve.png").is_file()
    third = tmp_path / "it3"  # the same aspects again: the aspect model is reproduced exactly
    result = runner.invoke(app, ["map-landscape", "synthetic", "--out", str(third), "--json", "--previous",
                                 str(second), "--aspects", str(feedback), *SMALL])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["iteration"]["aspect_model"]["model_change_jsd"] == pytest.approx(0, abs=1e-9)
    result = runner.invoke(app, ["map-landscape", "synthetic", "--out", str(tmp_path / "cal"), "--json", "--aspects",
                                 str(feedback), "--set", "seed_strength_grid=[0.0, 10.0]", *SMALL])
    assert result.exit_code == 0, result.output
    aspect = json.loads(result.stdout)["aspect"]
    rows = aspect["calibration"]
    assert [r["seed_strength"] for r in rows] == [0.0, 10.0] and sum(r["chosen"] for r in rows) == 1
    best = max(rows, key=lambda r: (r["admissible"], r["seeded_aspects"], r["aspect_coherence_u_mass"],
                                    -r["seed_strength"]))
    assert aspect["seed_strength"] == best["seed_strength"] and best["chosen"]
    assert rows[1]["seeded_aspects"] == 5  # lambda = 10 makes every seeded topic hold its aspect


def _fails_cleanly(args, tmp_path, match):
    out = tmp_path / "run"
    result = runner.invoke(app, ["map-landscape", *args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert match in result.output and "Traceback" not in result.output
    assert not (out / "summary.json").exists() and not (out / "topics.csv").exists()


def test_bad_inputs_exit_2_and_write_nothing(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "quantum key", "date": "2020"}\n{oops\n')
    _fails_cleanly([str(bad)], tmp_path, "not valid JSON")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    _fails_cleanly([str(empty)], tmp_path, "corpus is empty")
    undated = tmp_path / "undated.jsonl"
    undated.write_text("".join(json.dumps({"text": "quantum key distribution protocol security"}) + "\n"
                               for _ in range(5)))
    _fails_cleanly([str(undated)], tmp_path, "no parseable date")
    unknown = tmp_path / "aspects.toml"
    unknown.write_text("[QKD]\nzzzz = 1\nqqqq = 2\n")
    _fails_cleanly(["synthetic", "--aspects", str(unknown), *SMALL], tmp_path, "no aspect keyword")
    _fails_cleanly([str(tmp_path / "nope.csv")], tmp_path, "not found")
    _fails_cleanly(["synthetic", "--bin", "fortnight"], tmp_path, "--bin")
    _fails_cleanly(["synthetic", "--previous", str(tmp_path)], tmp_path, "no model.npz")


def test_coherence_sweep_chooses_the_best_k():
    from toolbox.landscape.synthetic import SyntheticConfig, generate

    docs, _ = generate(SyntheticConfig(docs_per_slice=30, doc_length=40, slices=3), 0)
    corpus = cp.clean(docs, "year")
    dictionary, bow, _ = md.build_dictionary(corpus.tokens, 2, 1.0)
    settings = md.LdaSettings(engine="single", passes=2)
    best, rows = md.select_k(bow, dictionary, corpus.tokens, md.parse_k_range("3:7:2"), 0, settings, "u_mass")
    assert [r["k"] for r in rows] == [3, 5, 7]
    assert all({"c_v", "c_npmi", "u_mass"} <= set(r) for r in rows)
    assert best == max(rows, key=lambda r: r["u_mass"])["k"]
    assert md.parse_k_range("5,8") == [5, 8]


def test_config_file_sets_nested_settings(tmp_path):
    config = tmp_path / "landscape.toml"
    config.write_text('k = 4\nmax_df = 1.0\nplots = false\n[lda]\npasses = 2\n[select]\nagent = "bandit"\n'
                      'episodes = 50\n[synthetic]\ndocs_per_slice = 30\ndoc_length = 40\nslices = 4\n')
    out = tmp_path / "run"
    result = runner.invoke(app, ["map-landscape", "synthetic", "--config", str(config), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["k"] == 4 and doc["slices"] == 4 and len(doc["ranking"]) == 4
    written = (out / "config.toml").read_text()
    assert "passes = 2" in written and 'agent = "bandit"' in written and "docs_per_slice = 30" in written
    result = runner.invoke(app, ["map-landscape", "synthetic", "--config", str(config), "--set", "nope=1"])
    assert result.exit_code == 2 and "unknown setting nope" in result.output


def test_multicore_engine_and_its_limits():
    from toolbox.core.errors import UserInputError
    from toolbox.landscape.synthetic import SyntheticConfig, generate

    docs, _ = generate(SyntheticConfig(docs_per_slice=20, doc_length=30, slices=2), 0)
    corpus = cp.clean(docs, "year")
    dictionary, bow, _ = md.build_dictionary(corpus.tokens, 2, 1.0)
    slices = np.array(corpus.slices)
    fitted = md.fit(bow, dictionary, 3, 0, md.LdaSettings(engine="multicore", passes=1), slices, 2)
    assert fitted.phi.shape == (3, len(dictionary)) and np.allclose(fitted.theta.sum(axis=1), 1.0)
    tokens = [sum(c for d in np.flatnonzero(slices == s) for _, c in bow[d]) for s in range(2)]
    assert np.allclose(fitted.slice_counts.sum(axis=(1, 2)), tokens, rtol=1e-3)  # expected counts = tokens
    with pytest.raises(UserInputError, match="alpha='auto'"):
        md.fit_lda(bow, dictionary, 3, 0, md.LdaSettings(engine="multicore", alpha="auto"))
    with pytest.raises(UserInputError, match="engine"):
        md.fit_lda(bow, dictionary, 3, 0, md.LdaSettings(engine="gpu"))
