"""End-to-end `toolbox infer-choice` runs: scenarios, choices files, audit, sweep, bad input, demo entry."""
import csv
import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from toolbox.cli.main import app

runner = CliRunner()

# docs/infer-choice.md, per-class sweep at beta = 2 (1,000 trials): (mean, SE) of dP(theta*) and dregret
DOC_BETA2 = {
    "A1": {"d_p_true": (-0.0298, 0.0009), "d_regret": (0.2437, 0.0176)},
    "A2": {"d_p_true": (-0.0139, 0.0009), "d_regret": (0.0121, 0.0095)},
    "B1": {"d_p_true": (0.0318, 0.0011), "d_regret": (-0.2224, 0.0181)},
    "B3": {"d_p_true": (-0.0333, 0.0013), "d_regret": (0.3908, 0.0317)},
    "C1": {"d_p_true": (0.0004, 0.0011), "d_regret": (0.0026, 0.0089)},
    "C2": {"d_p_true": (0.0132, 0.0011), "d_regret": (-0.0689, 0.0093)},
    "C3": {"d_p_true": (-0.0519, 0.0013), "d_regret": (0.5677, 0.0288)},
    "D2": {"d_p_true": (0.0145, 0.0015), "d_regret": (-0.1870, 0.0211)},
    "D3": {"d_p_true": (-0.0486, 0.0014), "d_regret": (0.7372, 0.0388)},
}

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
    # the written table is the JSON table, and both are the per-class mean / SE of the per-trial effects
    sweep = {r["class"]: r for r in csv.DictReader((tmp_path / "sweep.csv").open())}
    trials = list(csv.DictReader((tmp_path / "trials.csv").open()))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["table"] == doc["table"] and len(trials) == 9 * 20
    for row in doc["table"]:
        cls, written = row["class"], sweep[row["class"]]
        cell = [t for t in trials if t["cls"] == cls]
        assert len(cell) == 20 and written["verdict"] == row["verdict"]
        for m in ("p_true", "entropy", "regret"):
            x = np.array([float(t[f"{m}_mis"]) - float(t[f"{m}_cor"]) for t in cell])  # Δ = misspecified - correct
            # float64 sums of 20 numbers of order 1: round-off ~1e-15, csv repr round-trips exactly
            assert row[f"d_{m}"] == pytest.approx(x.mean(), abs=1e-12) == float(written[f"d_{m}"])
            assert row[f"d_{m}_se"] == pytest.approx(x.std(ddof=1) / np.sqrt(20), abs=1e-12)
        flags = [t["confidently_wrong"] == "True" for t in cell]
        assert flags == [float(t["d_entropy"]) < 0 and float(t["d_p_true"]) < 0 for t in cell]
        assert row["confidently_wrong_rate"] == pytest.approx(np.mean(flags), abs=1e-12)
        # infer-choice.md's 1,000-trial sweep at beta = 2 (its SE is ~1/7 of ours): each 20-trial mean lies within
        # 4 combined standard errors of the documented mean
        for m, (mean, se) in DOC_BETA2[cls].items():
            assert abs(row[m] - mean) < 4 * math.hypot(row[m + "_se"], se), (cls, m, row[m], mean)
    # documented claim: c* only in the robot's set (B3, C3, D3) is harmful, P(theta*) falls by > 2 SE
    for cls in ("B3", "C3", "D3"):
        row = next(r for r in doc["table"] if r["class"] == cls)
        assert row["verdict"] == "harmful" and row["d_p_true"] + 2 * row["d_p_true_se"] < 0, cls


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
