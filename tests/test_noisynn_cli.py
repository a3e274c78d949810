"""NoisyNN end to end: `train-noisy` (paper plan, tiny) writes its run folder and one JSON document; `audit-noisy`
audits the checkpoint it wrote and flags the test-time optimal-Q leak; bad input is one line and exit 2."""
import json

import pytest
import torch
from typer.testing import CliRunner

from toolbox.cli.main import app

runner = CliRunner()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("train-noisy")
    result = runner.invoke(app, ["train-noisy", "--paper-protocol", "--seeds", "2", "--epochs", "4", "--backend",
                                 "serial", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def test_train_noisy_writes_the_run_folder(study):
    out, doc = study
    for name in ("config.toml", "runs.csv", "conditions.csv", "history.jsonl", "summary.json", "report.md",
                 "paired_differences.png", "leak.png", "checkpoints/baseline-seed0.pt"):
        assert (out / name).is_file(), name
    assert doc["schema_version"] >= 1 and doc["seeds"] == 2
    rows = {r["condition"]: r for r in doc["conditions"]}
    assert set(rows) == {"baseline", "eval:optimal@head sorted/10", "eval:optimal@head shuffled/10",
                         "eval:optimal@head B=1"}
    single = rows["eval:optimal@head B=1"]
    assert single["diff_mean"] == 0.0 and single["max_logit_change"] < 1e-5  # B = 1 is the noise-free model
    assert rows["eval:optimal@head sorted/10"]["batch_purity"] == 1.0  # balanced test set: single-class batches
    assert rows["eval:optimal@head sorted/10"]["delta_S_analytic"] == pytest.approx(21.581057, abs=1e-6)
    assert doc["checks"]["leak_optimal_sorted_gain"] > doc["checks"]["leak_optimal_shuffled_gain"]
    assert doc["warnings"] and "label leakage" in doc["warnings"][0]


def test_audit_flags_the_leak(study, tmp_path):
    out, _ = study
    result = runner.invoke(app, ["audit-noisy", "--checkpoint", str(out / "checkpoints" / "baseline-seed0.pt"),
                                 "--permutations", "25", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["verdict"] == "leak" and doc["flagged"]
    assert doc["accuracy_sorted"] > doc["accuracy_shuffled_range"][1]
    assert doc["batch1_max_logit_change_vs_clean"] < 1e-5
    assert doc["fraction_predictions_batch_dependent"] > 0
    assert (tmp_path / "permutation_test.png").is_file() and (tmp_path / "audit.json").is_file()


def test_audit_of_a_per_sample_noise_is_batch_invariant(study, tmp_path):
    out, _ = study
    result = runner.invoke(app, ["audit-noisy", "--checkpoint", str(out / "checkpoints" / "baseline-seed0.pt"),
                                 "--noise", "gaussian", "--strength", "1.0", "--layer", "0", "--permutations", "3",
                                 "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["verdict"] == "batch-invariant" and not doc["flagged"]


@pytest.mark.parametrize("args", [["train-noisy", "--dataset", "cifar"], ["train-noisy", "--noise", "blur",
                                                                          "--plan", "sweep"],
                                  ["train-noisy", "--set", "epochs=many"], ["train-noisy", "--layer", "top"],
                                  ["train-noisy", "--plan", "sweep", "--noise", "impulse", "--strength", "2"],
                                  ["audit-noisy", "--checkpoint", "/nonexistent.pt"],
                                  ["audit-noisy", "--noise", "none"]])
def test_bad_input_is_one_line_and_exit_2(args, tmp_path):
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "x"), "--seeds" if args[0] == "train-noisy" else
                                 "--permutations", "1"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert "Traceback" not in result.output and lines[-1].startswith("error:")
    assert sum("error" in line for line in lines) == 1


def test_entropy_plan_reports_the_closed_forms(tmp_path):
    result = runner.invoke(app, ["train-noisy", "--plan", "entropy", "--k", "10,14,16", "--strength", "0.3,0.5",
                                 "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    rows = {(r["q"], r["k"], r["alpha"]): r for r in doc["linear_transform"]}
    assert rows[("optimal", 10, None)]["delta_S"] == pytest.approx(21.581057, abs=1e-6)
    assert rows[("circulant", 14, 0.3)]["delta_S"] == pytest.approx(4.993456, abs=1e-6)
    singular = rows[("circulant", 16, 0.5)]
    assert singular["singular"] and singular["delta_S"] is None  # +inf is null in JSON
    assert "k = 16, alpha = 0.5" in doc["singular"]
    unit = [g for g in doc["scalar_gaussian"] if g["noise_variance"] == 1.0][0]
    assert unit["delta_S_estimate"] == pytest.approx(-0.2027, abs=0.01)
    assert (tmp_path / "entropy.csv").is_file()
