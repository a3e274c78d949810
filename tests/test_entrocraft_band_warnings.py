"""Bands no policy can be inside are reported (issue #14): in the log and in summary.json's warnings, which the
run's report page shows."""
from __future__ import annotations

import json
import math

from typer.testing import CliRunner

from toolbox.cli.main import app
from toolbox.entrocraft.control import band_reach_warnings

TINY = dict(sft_steps=4, sft_batch=16, steps=2, prompts_per_step=2, group_size=2, eval_prompts=2, eval_n=2,
            eval_every=2, ckpt_every=2, d_model=16, n_head=2, n_layer=1, minibatches=1)


def test_each_kind_of_impossible_band_is_named_at_its_first_step():
    log_v = math.log(12)
    bands = [(0.2, 0.3), (0.1, 0.2), (-0.2, -0.1), (3.0, 3.5), (0.5, 0.4)]
    warnings = band_reach_warnings(bands, log_v)
    assert len(warnings) == 3
    assert warnings[0].startswith("unreachable band from step 2 ([-0.2, -0.1])") and "below 0" in warnings[0]
    assert "step 3" in warnings[1] and f"log V = {log_v:.4g}" in warnings[1]
    assert "step 4" in warnings[2] and "lower edge above the upper edge" in warnings[2]
    assert band_reach_warnings([(0.0, log_v), (log_v, log_v)], log_v) == []  # the extremes themselves are reachable


def test_train_rl_reports_a_band_above_log_v_in_its_summary_and_report(tmp_path):
    sets = [x for k, v in {**TINY, "band_start": "[50.0, 60.0]", "band_relative": "false"}.items()
            for x in ("--set", f"{k}={v}")]
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train-rl", *sets, "--out", str(out), "--report", "--track", "none"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    (warning,) = summary["warnings"]
    assert warning.startswith("unreachable band from step 0 ([50, 60])") and "log V" in warning
    assert "unreachable band from step 0" in result.output
    assert "unreachable band from step 0" in (out / "report.html").read_text()
