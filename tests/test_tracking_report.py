"""Runs people can watch and read (#18): TensorBoard event files equal the step tables, an MLflow store holds the
settings, metrics and figures, every pipeline's report.html renders in a real browser with the numbers of
summary.json, and `toolbox runs` / `toolbox report` list and compare runs."""
from __future__ import annotations

import json
import math
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolbox.cli.main import app
from toolbox.core.tracking import StepTable, as_number, mlflow_key, read_rows, read_scalars, table_series

runner = CliRunner()

ENTROCRAFT_TINY = dict(sft_steps=10, sft_batch=32, steps=3, prompts_per_step=4, group_size=4, eval_prompts=4, eval_n=3,
                       eval_every=2, ckpt_every=2, d_model=32, n_head=2, n_layer=1, minibatches=2)
# One small real run of every pipeline command, each with --report (TensorBoard tracking is on by default).
RUNS = {
    "train-rl": ["train-rl", *[x for k, v in ENTROCRAFT_TINY.items() for x in ("--set", f"{k}={v}")]],
    "bench-ises": ["bench-ises", "--game", "number:n=50", "--agent", "ises", "--agent", "random", "--n", "6",
                   "--backend", "serial"],
    "play-ises": ["play-ises", "number:n=30", "--all"],
    "fuse-gp": ["fuse-gp", "run", "--set", "n_train=160", "--set", "n_test=40", "--set", "experts=4",
                "--set", "iterations=5", "--hyper", "independent", "--partition", "random", "--partition", "kmeans"],
    "sample-diffusion": ["sample-diffusion", "learned", "--set", "learned_train_steps=40",
                         "--set", "learned_particles=300"],
    "map-landscape": ["map-landscape", "synthetic", "--set", "synthetic.docs_per_slice=40",
                      "--set", "synthetic.doc_length=50", "--set", "k=5", "--set", "max_df=1.0",
                      "--set", "lda.engine='single'", "--set", "lda.passes=3"],
    "train-noisy": ["train-noisy", "--seeds", "1", "--epochs", "2", "--backend", "serial"],
    "shape-reward": ["shape-reward", "--agent", "thermo", "--agent", "psrl", "--episodes", "25", "--seeds", "2",
                     "--deepsea-size", "4", "--backend", "serial"],
    "infer-choice": ["infer-choice", "infer", "--scenario", "peanuts", "--beta", "2"],
}
# Commands whose runs log per-step tables (the others log their settings only).
TABLES = {
    "train-rl": [StepTable("metrics.csv", "step"), StepTable("eval.csv", "updates", ("temperature",))],
    "bench-ises": [StepTable("trajectory.csv", "t", ("game", "agent", "budget_ms"))],
    "play-ises": [StepTable("trajectory.csv", "t", ("game", "agent", "budget_ms"))],
    "fuse-gp": [StepTable("training.csv", "evaluation", ("partition", "expert"))],
    "sample-diffusion": [StepTable("learned/score_training.csv", "step")],
    "map-landscape": [StepTable("rl_curve.csv", "episode")],
    "train-noisy": [StepTable("history.jsonl", "epoch", ("condition", "seed"))],
    "shape-reward": [StepTable("regret_curves.csv", "episode", ("env", "agent")),
                     StepTable("ledger_curves.csv", "episode", ("env", "agent"))],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    folders = {}
    for name, args in RUNS.items():
        folder = root / name
        result = runner.invoke(app, [*args, "--out", str(folder), "--report", "--json"])
        assert result.exit_code == 0, (name, result.output)
        json.loads(result.stdout)  # still exactly one JSON document
        folders[name] = folder
    return root, folders


def test_tensorboard_scalars_equal_the_step_tables(runs):
    _, folders = runs
    for name, tables in TABLES.items():
        scalars = read_scalars(folders[name])
        expected = {}
        for table in tables:
            for path in sorted(folders[name].glob(table.path)):
                for prefix, step, values in table_series(path, folders[name], table):
                    for k, v in values.items():
                        if (x := as_number(v)) is not None:
                            expected.setdefault(f"{prefix}/{k}", {})[step] = x
        assert expected, name  # every table has numeric rows
        for tag, points in expected.items():
            logged = dict(scalars.get(tag, []))
            assert set(logged) == set(points), (name, tag)
            for step, x in points.items():  # event files hold float32
                assert logged[step] == pytest.approx(x, rel=2e-7, abs=1e-30), (name, tag, step)


def test_train_rl_logs_every_step_live_with_the_csv_values(runs):
    _, folders = runs
    rows = read_rows(folders["train-rl"] / "metrics.csv")
    scalars = read_scalars(folders["train-rl"])
    assert [s for s, _ in scalars["metrics/entropy"]] == [int(r["step"]) for r in rows]
    assert [v for _, v in scalars["metrics/reward"]] == pytest.approx([float(r["reward"]) for r in rows], rel=1e-6)


class _Page(HTMLParser):
    """The headline cells, images and outside links of a report page."""

    def __init__(self):
        super().__init__()
        self.cells, self.images, self.outside, self._key = {}, [], [], None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "td" and "data-key" in a:
            self._key = a["data-key"]
            self.cells[self._key] = ""
        if tag == "img":
            self.images.append(a.get("src", ""))
        for attr in ("src", "href"):
            if (a.get(attr) or "").startswith(("http:", "https:", "//")):
                self.outside.append(a[attr])

    def handle_data(self, data):
        if self._key is not None:
            self.cells[self._key] += data

    def handle_endtag(self, tag):
        if tag == "td":
            self._key = None


def _leaves(summary: dict) -> dict:
    from toolbox.core.tracking import flatten

    return dict(flatten({k: v for k, v in summary.items() if k not in ("provenance", "status", "error")}))


def _same(shown: str, value) -> bool:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return shown == ("" if value is None else str(value))
    return float(shown) == value  # floats are written in their shortest round-trip form


def test_every_report_is_self_contained_and_shows_summary_json(runs):
    _, folders = runs
    for name, folder in folders.items():
        page = _Page()
        page.feed((folder / "report.html").read_text(encoding="utf-8"))
        summary = json.loads((folder / "summary.json").read_text())
        leaves = _leaves(summary)
        assert page.cells, name
        for key, shown in page.cells.items():
            assert _same(shown, leaves[key]), (name, key, shown, leaves[key])
        pngs = [p for p in folder.rglob("*.png") if "tensorboard" not in p.parts]
        assert len(page.images) == len(pngs), name  # each figure once, whether a Markdown part shows it or not
        assert all(s.startswith("data:image/png;base64,") for s in page.images)
        assert page.outside == [], name


def test_headline_figure_of_each_command_is_its_own(runs):
    from toolbox.runs import HEADLINE_KEYS, load_run

    _, folders = runs
    for name, folder in folders.items():
        run = load_run(folder)
        key, value = run.headline_figure()
        assert key in HEADLINE_KEYS[run.command], (name, key)
        assert value == _leaves(run.summary)[key]


@pytest.mark.browser
def test_reports_render_in_chromium(runs, tmp_path):
    from browser import CHROMIUM, Browser

    if CHROMIUM is None:
        pytest.skip("chromium is not installed (`.ci/run` installs Debian's chromium)")
    pytest.importorskip("websocket", reason="websocket-client is part of the test extra")
    _, folders = runs
    with Browser() as browser:
        for name, folder in folders.items():
            browser.open((folder / "report.html").as_uri())
            assert browser.errors() == [], name
            images = browser.evaluate("Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
            assert images and all(images), name
            cells = browser.evaluate("Object.fromEntries(Array.from(document.querySelectorAll("
                                     "'#headline td[data-key]')).map(td => [td.dataset.key, td.textContent]))")
            leaves = _leaves(json.loads((folder / "summary.json").read_text()))
            assert cells and all(_same(shown, leaves[k]) for k, shown in cells.items()), name
            shot = browser.screenshot(tmp_path / f"{name}.png")
            assert shot.stat().st_size > 10_000


def test_runs_lists_every_run_and_compares_two(runs, tmp_path):
    root, folders = runs
    result = runner.invoke(app, ["runs", str(root), "--json"])
    assert result.exit_code == 0, result.output
    listed = {Path(r["run"]).name: r for r in json.loads(result.stdout)["runs"]}
    assert set(listed) == set(folders)
    for name, row in listed.items():
        assert row["status"] == "complete" and row["seed"] == 0 and row["command"] == name
    other = tmp_path / "fg2"
    result = runner.invoke(app, [*RUNS["fuse-gp"], "--set", "iterations=2", "--out", str(other), "--seed", "1",
                                 "--track", "none"])
    assert result.exit_code == 0, result.output
    assert not (other / "tensorboard").exists()
    result = runner.invoke(app, ["runs", "compare", str(folders["fuse-gp"]), str(other), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert {r["setting"]: (r["a"], r["b"]) for r in doc["settings"]} == {"iterations": (5, 2)}
    metrics = {r["metric"]: r for r in doc["metrics"]}
    a, b = (json.loads((f / "summary.json").read_text()) for f in (folders["fuse-gp"], other))
    assert metrics["best.nlpd"]["b_minus_a"] == pytest.approx(b["best"]["nlpd"] - a["best"]["nlpd"])
    page = tmp_path / "cmp.html"
    result = runner.invoke(app, ["report", str(folders["fuse-gp"]), str(other), "--out", str(page), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["comparison"] == str(page)
    assert "iterations" in page.read_text() and (other / "report.html").is_file()


@pytest.mark.parametrize("args, message", [
    (["runs", "compare", "nowhere", "nowhere"], "not a run folder"),
    (["report", "nowhere"], "not a run folder"),
    (["runs", "no/such/folder"], "no such folder"),
    (["shape-reward", "--track", "wandb"], "not one of"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path):
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and message in result.output


@pytest.fixture
def mlflow_env(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="MLflow is the optional extra toolbox[mlflow]")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_mlflow_run_holds_settings_metrics_and_figures(mlflow_env):
    from mlflow.tracking import MlflowClient

    folder = mlflow_env / "runs" / "shape"
    result = runner.invoke(app, [*RUNS["shape-reward"], "--out", str(folder), "--track", "mlflow", "--report"])
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking_uri=f"sqlite:///{mlflow_env / 'runs' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("shape-reward").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "shape"
    assert run.data.params["episodes"] == "25" and run.data.params["seed"] == "0"
    rows = [r for r in read_rows(folder / "regret_curves.csv") if r["agent"] == "psrl"]
    env = rows[0]["env"]
    history = client.get_metric_history(run.info.run_id, mlflow_key(f"regret_curves/env={env}/agent=psrl/cum_regret"))
    assert [(m.step, m.value) for m in history] == [(int(r["episode"]), float(r["cum_regret"])) for r in rows
                                                   if r["env"] == env]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"summary.json", "config.toml", "report.html"} <= artifacts
    assert any(p.endswith(".png") for p in artifacts)


def test_mlflow_tracking_uri_is_honoured(mlflow_env, monkeypatch):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{mlflow_env / 'elsewhere.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    result = runner.invoke(app, [*RUNS["infer-choice"], "--out", str(mlflow_env / "choice"), "--track", "mlflow"])
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("infer-choice").experiment_id])
    assert run.data.params["beta"] == "2.0" and run.info.status == "FINISHED"
    assert not (mlflow_env / "mlflow.db").exists()


def test_a_run_rejected_after_its_folder_was_made_leaves_no_tracker_files(tmp_path):
    folder = tmp_path / "r"  # diabetes has no true hyper-parameters: found when the data set is loaded
    result = runner.invoke(app, ["fuse-gp", "run", "--set", "dataset=diabetes", "--hyper", "fixed", "--out",
                                 str(folder)])
    assert result.exit_code == 2 and "hyper = fixed" in result.output
    assert not folder.exists()


def test_values_that_are_not_numbers_are_not_logged():
    assert [as_number(v) for v in ("1.5", "", "True", "nan", "inf", None, True, 3)] == [1.5, None, None, None, None,
                                                                                       None, None, 3.0]
    assert math.isfinite(as_number("1e300"))


def test_demo_index_links_a_page_per_pipeline(tmp_path):
    folder = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--only", "kernels", "--only", "choice", "--out", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)["pipelines"]
    index = (folder / "index.html").read_text(encoding="utf-8")
    for e in entries:
        page = folder / e["pipeline"] / "report.html"
        assert f"href='{e['pipeline']}/report.html'" in index and page.is_file()
        text = page.read_text(encoding="utf-8")
        parsed = _Page()
        parsed.feed(text)
        assert parsed.outside == [] and "<span class='status ok'>ok</span>" in text
        assert parsed.cells["headline"] == e["headline"]
    pngs = [p for p in (folder / "choice").rglob("*.png")]
    parsed = _Page()
    parsed.feed((folder / "choice" / "report.html").read_text(encoding="utf-8"))
    assert pngs and len(parsed.images) == len(pngs)
