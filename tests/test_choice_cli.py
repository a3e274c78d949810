"""End-to-end `toolbox infer-choice` runs: scenarios, choices files, audit, sweep, bad input, demo entry."""
import json

import pytest
from typer.testing import CliRunner

from toolbox.cli.main import app

runner = CliRunner()

PEANUTS = {
    "feature_names": ["savings", "flashiness"],
    "options": {"expensive": [0, 1], "cheap": [1, 0]},
    "assumed_set": ["expensive", "cheap"],
    "true_set": ["expensive"],
    "choices": ["expensive"],
    "thetas": [[1, 0], [0, 1]],
    "true_theta": [1, 0],
}


def _run(args):
    result = runner.invoke(app, ["infer-choice", *args, "--json", "--device", "cpu"])
    return result, (json.loads(result.stdout) if result.exit_code == 0 else None)


def _write(tmp_path, name, spec):
    path = tmp_path / name
    path.write_text(json.dumps(spec) if name.endswith(".json") else spec)
    return path


def test_infer_peanuts_scenario(tmp_path):
    result, doc = _run(["infer", "--scenario", "peanuts", "--beta", "2", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert doc["schema_version"] == 1
    assert doc["p_true_theta"] == pytest.approx(0.119203, abs=1e-6)
    assert abs(doc["p_true_theta_true_set"] - 0.5) < 1e-9
    assert doc["audit"]["cls"] == "B3" and doc["audit"]["confidently_wrong"]
    assert doc["sampler_check"]["total_variation"] < 0.02
    for name in ("config.toml", "summary.json", "posterior.csv", "posterior.png", "robustness.csv",
                 "sampler_check.png"):
        assert (tmp_path / name).is_file(), name


def test_infer_json_file_matches_builtin(tmp_path):
    path = _write(tmp_path, "peanuts.json", PEANUTS)
    result, doc = _run(["infer", "--choices", str(path), "--out", str(tmp_path / "run"), "--set",
                        "sampler_check=false"])
    assert result.exit_code == 0, result.output
    assert doc["p_true_theta"] == pytest.approx(0.268941, abs=1e-6)
    assert doc["choices"] == ["expensive"]


def test_infer_csv_file(tmp_path):
    csv = "name,savings,flashiness,assumed,true,chosen\nexpensive,0,1,1,1,3\ncheap,1,0,1,0,0\nmid,0.5,0.5,0,0,0\n"
    path = _write(tmp_path, "packs.csv", csv)
    result, doc = _run(["infer", "--choices", str(path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert doc["choices"] == ["expensive"] * 3 and doc["hypotheses"] == 16
    assert doc["robustness"]["family_size"] == 2  # remove 'cheap' or add 'mid'


def test_infer_three_features_runs_sphere_sampler_check(tmp_path):
    spec = {"options": {"a": [1, 0, 0], "b": [0, 1, 0], "c": [0, 0, 1], "d": [0.5, 0.5, -1]},
            "choices": ["a", "a", "b", "a"]}
    path = _write(tmp_path, "three.json", spec)
    result, doc = _run(["infer", "--choices", str(path), "--out", str(tmp_path / "run"), "--set", "steps=1200"])
    assert result.exit_code == 0, result.output
    assert doc["hypotheses"] == 16 and len(doc["map_theta"]) == 3
    assert doc["sampler_check"]["mean_error"] < 0.05 and "total_variation" not in doc["sampler_check"]


def test_audit_peanuts_and_every_theta(tmp_path):
    result, doc = _run(["audit", "--scenario", "peanuts", "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert doc["rows"][0]["cls"] == "B3" and doc["confidently_wrong_any"]
    spec = {k: v for k, v in PEANUTS.items() if k != "true_theta"}
    path = _write(tmp_path, "no_truth.json", spec)
    result, doc = _run(["audit", "--choices", str(path), "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert [r["cls"] for r in doc["rows"]] == ["B3", "B1"]  # flashiness lover: the best pack was on offer


def test_sweep_small(tmp_path):
    result, doc = _run(["sweep", "--trials", "20", "--out", str(tmp_path), "--set", "betas=[2.0]"])
    assert result.exit_code == 0, result.output
    assert [r["class"] for r in doc["table"]] == ["A1", "A2", "B1", "B3", "C1", "C2", "C3", "D2", "D3"]
    assert all(r["trials"] == 20 for r in doc["table"])
    for name in ("sweep.csv", "trials.csv", "sweep_table.md", "class_effects.png", "summary.json"):
        assert (tmp_path / name).is_file(), name


@pytest.mark.parametrize("spec, message", [
    (PEANUTS | {"choices": ["cheap"], "assumed_set": ["expensive"]}, "not in its choice set"),
    (PEANUTS | {"choices": ["walnuts"]}, "not one of the options"),
    (PEANUTS | {"assumed_set": []}, "non-empty"),
    (PEANUTS | {"options": {"expensive": [0, 1], "cheap": [1, 0, 2]}}, "mismatched feature sizes"),
    (PEANUTS | {"thetas": [[1, 0, 0]]}, "thetas"),
    (PEANUTS | {"true_set": ["ghost"]}, "unknown option"),
    (PEANUTS | {"options": {}}, "options"),
    (PEANUTS | {"thetas": [[1, 0], [0]]}, "numeric"),
    (PEANUTS | {"true_theta": [0.3, 0.7]}, "not one of the reward hypotheses"),
    (PEANUTS | {"choices": [["expensive"]]}, "not one of the options"),
    (PEANUTS | {"prior": [1.0, -1.0]}, "prior"),
])
def test_bad_choices_file_is_one_line_exit_2(tmp_path, spec, message):
    path = _write(tmp_path, "bad.json", spec)
    result = runner.invoke(app, ["infer-choice", "infer", "--choices", str(path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("args, message", [
    (["infer", "--scenario", "walnuts"], "unknown scenario"),
    (["infer", "--beta", "-1"], "beta"),
    (["infer", "--choices", "missing.json"], "not found"),
    (["sweep", "--set", "betas=[0.0]"], "betas.0: input should be greater than 0"),
    (["sweep", "--backend", "gpu"], "backend"),
])
def test_bad_options_exit_2(tmp_path, args, message):
    result = runner.invoke(app, ["infer-choice", *args, "--out", str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_audit_without_true_set_is_user_error(tmp_path):
    spec = {k: v for k, v in PEANUTS.items() if k != "true_set"}
    path = _write(tmp_path, "nt.json", spec)
    result = runner.invoke(app, ["infer-choice", "audit", "--choices", str(path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "true choice set" in result.output


def test_demo_entry(tmp_path):
    result = runner.invoke(app, ["demo", "--only", "choice", "--out", str(tmp_path), "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    entry = json.loads(result.stdout)["pipelines"][0]
    assert entry["status"] == "ok" and "0.268941" in entry["headline"]
    assert entry["sampler_total_variation"] < 0.02
