"""End-to-end CLI runs of play-ises and bench-ises: JSON on stdout, run-folder files, interactive modes, errors."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from toolbox.cli.main import app

runner = CliRunner()


def run_json(args, **kw):
    result = runner.invoke(app, [*args, "--json"], **kw)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_play_ises_watch_mode(tmp_path):
    doc = run_json(["play-ises", "mastermind", "--secret", "3456", "--out", str(tmp_path)])
    assert doc["solved"] and doc["secret"] == "3456" and doc["steps"][0]["action"] == "1234"
    assert doc["steps"][0]["size_before"] == 1296 and doc["entropies"][-1] == 0.0
    assert sum(s["info_gained"] for s in doc["steps"]) == pytest.approx(doc["entropies"][0])
    for name in ("config.toml", "moves.csv", "moves.jsonl", "entropy.png", "summary.json"):
        assert (tmp_path / name).is_file()


def test_play_ises_all_secrets_fixed_first_and_config(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('agent = "minimax"\n')
    doc = run_json(["play-ises", "mastermind", "--all", "--first", "1122", "--config", str(cfg),
                    "--out", str(tmp_path / "run")])
    assert doc["agent"] == "minimax" and doc["secrets"] == 1296
    assert doc["total_actions"] == 5801 and doc["max_actions"] == 5  # Knuth opens with 1122 anyway
    assert (tmp_path / "run" / "histogram.png").is_file() and (tmp_path / "run" / "trajectory.csv").is_file()


def test_play_ises_assist_mode_recovers_from_bad_input():
    lines = "\n".join(["1123 = banana", "1123 = 0 0", "1123 = 1 1", "undo", "1123=1 1", "quit"]) + "\n"
    result = runner.invoke(app, ["play-ises", "mastermind", "--assist", "--json"], input=lines)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["history"] == [["1123", "1B1W"]]
    import itertools

    import numpy as np

    from toolbox.ises.engine import mastermind_table_reference

    codes = np.array(list(itertools.product(range(6), repeat=4)), np.uint8)
    row = mastermind_table_reference(codes[[codes.tolist().index([0, 0, 1, 2])]], codes, 6)[0]
    assert doc["remaining_count"] == int((row == 1 * 5 + 1).sum()) == 230
    assert "expected two numbers" in result.stderr


def test_play_ises_assist_detects_contradiction():
    lines = "0 0\n5555 = 0 0\n6666 = 0 0\nquit\n"  # the first line answers the suggestion (1234)
    result = runner.invoke(app, ["play-ises", "mastermind", "--assist", "--json"], input=lines)
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    # after 1234 -> 0 0 and 5555 -> 0 0 only 6666 remains, so 6666 -> 0 0 is a contradiction
    assert doc["history"] == [["1234", "0B0W"], ["5555", "0B0W"]] and doc["remaining"] == ["6666"]
    assert "no secret is consistent" in result.stderr


def test_play_ises_human_mode():
    lines = "hint\n50\n75\n88\nquit\n"
    result = runner.invoke(app, ["play-ises", "number", "--human", "--secret", "88", "--json"], input=lines)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["history"] == [["50", "higher"], ["75", "higher"], ["88", "correct"]]
    assert "hint: 50" in result.stderr


def test_play_ises_errors_exit_2():
    for args in (["play-ises", "chess"], ["play-ises", "mastermind", "--secret", "9999"],
                 ["play-ises", "mastermind", "--agent", "nope"], ["play-ises", "mastermind", "--assist", "--human"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output


def test_play_ises_list_games():
    doc = run_json(["play-ises", "list"])
    names = [g["game"].split(":")[0] for g in doc["games"]]
    assert set(names) >= {"mastermind", "bulls-cows", "number", "coin", "blackbox", "guesswho"}


def test_bench_ises_end_to_end(tmp_path):
    args = ["bench-ises", "--game", "number:n=50", "--game", "coin:coins=5", "--agent", "ises", "--agent",
            "so-ismcts:iterations=40", "--agent", "random", "--n", "8", "--backend", "serial", "--out",
            str(tmp_path)]
    doc = run_json(args)
    rows = {(r["game"], r["agent"]): r for r in doc["summary"]}
    ises = rows[("number:n=50", "ises")]
    assert ises["n"] == 8 and ises["win_rate"] == 1.0 and ises["max_actions"] <= 6
    assert ises["ci95_low"] <= ises["mean_actions"] <= ises["ci95_high"]
    assert all(0 <= t["p_value"] <= 1 for t in doc["paired_tests"])
    for name in ("summary.csv", "paired_tests.csv", "trajectory.csv", "episodes.jsonl", "histogram.png",
                 "trajectory.png", "config.toml", "summary.json"):
        assert (tmp_path / name).is_file()


def test_bench_ises_backends_agree(tmp_path):
    base = ["bench-ises", "--game", "mastermind:pegs=3,colors=4", "--agent", "ises", "--agent",
            "so-ismcts:iterations=30", "--n", "6", "--set", "chunk=3"]
    serial = run_json([*base, "--backend", "serial", "--out", str(tmp_path / "a")])
    process = run_json([*base, "--backend", "process", "--workers", "2", "--out", str(tmp_path / "b")])
    strip = lambda d: [(r["agent"], r["total_actions"], r["win_rate"]) for r in d["summary"]]  # noqa: E731
    assert strip(serial) == strip(process)


def test_play_ises_optimal_all_secrets(tmp_path):
    from toolbox.core import native

    if not native.available():
        pytest.skip("native extension not built")
    doc = run_json(["play-ises", "number:n=15", "--all", "--agent", "optimal", "--out", str(tmp_path)])
    assert doc["total_actions"] == 1 + 2 * 2 + 3 * 4 + 4 * 8  # a balanced binary search tree: 49


def test_demo_entry_reaches_the_three_mastermind_anchors(tmp_path):
    doc = run_json(["demo", "--only", "ises", "--out", str(tmp_path), "--device", "cpu"])
    entry = doc["pipelines"][0]
    assert entry["status"] == "ok"
    assert (entry["ises_total"], entry["minimax_total"], entry["optimal_total"]) == (5722, 5801, 5625)
