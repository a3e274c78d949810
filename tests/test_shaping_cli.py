"""`toolbox shape-reward` end to end: one JSON document, the run folder's files, one-line errors with exit 2."""
from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from toolbox.cli.main import app

SMALL = ["shape-reward", "--agent", "thermo", "--agent", "psrl", "--agent", "eps-greedy", "--episodes", "25",
         "--seeds", "2", "--deepsea-size", "4", "--deepsea-size", "5", "--backend", "serial"]


def test_shape_reward_end_to_end(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [*SMALL, "--env", "chain-4", "--out", str(out), "--json",
                                      "--set", "ledger_temperature=0.2"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["schema_version"] == 1 and doc["checks_passed"]
    assert {(r["env"], r["agent"]) for r in doc["regret"]} == {("chain-4", a) for a in ("thermo", "psrl", "eps-greedy")}
    assert all(r["cumulative_regret"] >= 0 and r["ci95"] >= 0 for r in doc["regret"])
    assert set(doc["deepsea_scores"]) == {"thermo", "psrl", "eps-greedy"}
    for name in ("config.toml", "summary.json", "checks.csv", "regret_summary.csv", "regret_curves.csv", "runs.csv",
                 "ledger_curves.csv", "deepsea.csv", "regret_chain-4.png", "ledger_chain-4.png",
                 "ledger_heatmap_chain-4.png", "deepsea_scaling.png"):
        assert (out / name).stat().st_size > 0, name
    assert "ledger_temperature = 0.2" in (out / "config.toml").read_text()
    with open(out / "runs.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 3 * 2


@pytest.mark.parametrize("args,needle", [
    (["--agent", "nope"], "unknown agent"),
    (["--env", "atari"], "unknown environment"),
    (["--set", "episodes=0"], "episodes: input should be greater than or equal to 1"),
    (["--set", "colour=1"], "unknown setting"),
    (["--deepsea-size", "1"], "deepsea_sizes.0: input should be greater than or equal to 2"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, args, needle):
    result = CliRunner().invoke(app, ["shape-reward", "--out", str(tmp_path / "x"), *args])
    assert result.exit_code == 2
    assert needle in result.output and "Traceback" not in result.output
