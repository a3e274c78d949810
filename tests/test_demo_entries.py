"""Every `toolbox demo` entry end to end (#19): it runs on built-in data, reproduces each of its reference figures
within the tolerance stated next to it, and leaves its outputs; kernels, ises and choice also run through the CLI in
test_cli_foundation.py, test_ises_cli.py and test_choice_cli.py."""
from __future__ import annotations

import math

import pytest

from toolbox.demo import DEMOS, missed_checks, run_demos

# What each entry must leave in its folder (besides its numbers).
OUTPUTS = {
    "kernels": ["selfcheck.json"],
    "entrocraft": ["theory.csv", "metrics.csv", "summary.json"],
    "ises": [],
    "gpoe": ["comparison.csv", "summary.json"],
    "diffusion": ["summary.json"],
    "landscape": [],
    "noisynn": ["noisynn_demo.json", "study/conditions.csv", "audit/protocols.csv"],
    "shaping": ["checks.csv", "regret_summary.csv"],
    "choice": ["peanuts_beta2/posterior.csv", "sweep/sweep.csv"],
}


def test_the_outputs_list_names_every_demo_entry():
    assert set(OUTPUTS) == set(DEMOS)


@pytest.mark.parametrize("name", sorted(set(DEMOS) - {"kernels", "ises", "choice"}))
def test_demo_entry_reproduces_its_references(name, tmp_path):
    (result,) = run_demos(tmp_path, seed=0, device="cpu", only=[name], log=lambda _: None)
    assert result["status"] == "ok", result["headline"]
    checks = result["checks"]
    assert checks and missed_checks(result) == []
    for c in checks:  # a check is a real comparison: finite numbers and a tolerance that is not vacuous
        assert math.isfinite(c["value"]) and math.isfinite(c["reference"])
        assert 0 <= c["tolerance"] <= max(1.0, abs(c["reference"]))
    for rel in OUTPUTS[name]:
        assert (tmp_path / name / rel).is_file(), rel


def test_entrocraft_reward_rise_standard_error_is_the_binomial_one():
    """Two windows of 5 steps x 128 rollouts: reward r = 2a - 1 has variance 4a(1 - a) = 1 - r^2 per rollout."""
    from toolbox.entrocraft.demo import reward_rise

    first, last, se = reward_rise([0.0] * 5 + [0.3] * 30 + [0.6] * 5, 128)
    assert (first, last) == (0.0, 0.6)
    assert se == pytest.approx(math.sqrt((1 - 0.0) / 640 + (1 - 0.36) / 640), rel=1e-12)
    assert reward_rise([1.0] * 10, 128)[2] == 0.0     # all correct: no sampling noise
