"""The scaling bench's power-law fit against closed forms, and a --quick smoke run of one cheap curve."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))
from common import fit_power_law, log_sizes


def test_fit_recovers_an_exact_power_law_with_zero_width_interval():
    sizes = np.geomspace(10, 1e5, 9)
    fit = fit_power_law(sizes, 3e-4 * sizes ** 1.5)
    assert fit["b"] == pytest.approx(1.5, abs=1e-12)
    assert fit["a"] == pytest.approx(np.log(3e-4), abs=1e-10)
    assert fit["b_ci"] < 1e-10 and fit["r2"] == pytest.approx(1.0)


def test_fit_interval_matches_the_textbook_formula():
    # log y = 2 + 0.8 log x + e with known residuals: se(b) = sqrt(SSE / (n - 2) / Sxx), CI = t_{0.975, n-2} se
    x = np.log(np.array([1e1, 1e2, 1e3, 1e4, 1e5]))
    e = np.array([0.1, -0.2, 0.15, 0.0, -0.05])
    e -= e.mean() + (x - x.mean()) @ e / ((x - x.mean()) @ (x - x.mean())) * (x - x.mean())  # orthogonal to 1, x
    fit = fit_power_law(np.exp(x), np.exp(2 + 0.8 * x + e))
    se = np.sqrt(e @ e / 3 / ((x - x.mean()) @ (x - x.mean())))
    assert fit["b"] == pytest.approx(0.8, abs=1e-12)
    assert fit["b_se"] == pytest.approx(se, rel=1e-10)
    assert fit["b_ci"] == pytest.approx(3.182446305284263 * se, rel=1e-9)  # t_{0.975, 3}
    with pytest.raises(ValueError):
        fit_power_law([1, 10], [1, 10])


def test_log_sizes_span_the_range():
    assert log_sizes(1000, 100_000, 5) == [1000, 3162, 10000, 31623, 100000]


def test_quick_curve_writes_csv_json_and_png(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(BENCH / "bench_scaling.py"), "--quick", "--only", "entropy", "--out",
                           str(out), "--repeat", "1", "--min-run", "0"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader((out / "entropy.csv").open()))
    assert {r["axis"] for r in rows} == {"T", "V"} and len(rows) == 10
    assert all(float(r["seconds"]) > 0 for r in rows)
    result = json.loads((out / "entropy.json").read_text())
    assert "load average" in result["uptime_before"]
    assert all(s["fit"]["n"] == 5 and np.isfinite(s["fit"]["b"]) for s in result["series"])
    assert (out / "entropy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_of_fewer_than_three_sizes_has_no_fit(tmp_path, monkeypatch):
    # one large size on its own (e.g. --gpoe-sizes 1000000): the times and checks are written, no exponent
    import argparse

    import bench_scaling

    monkeypatch.setenv("TOOLBOX_NUM_THREADS", "1")
    args = argparse.Namespace(out=str(tmp_path), figures=str(tmp_path), quick=False, repeat=1)
    series = [{"name": "ray", "axis": "N", "rows": [{"size": 1_000_000, "seconds": 431.7}]}]
    result = bench_scaling.report("gpoe", {}, series, {"all_identical": True}, ["load average: 1", "load average: 2"],
                                  args)
    assert result["series"][0]["fit"] is None and result["series"][0]["largest_size"] == 1_000_000
    assert json.loads((tmp_path / "gpoe.json").read_text())["checks"] == {"all_identical": True}
    assert list(csv.DictReader((tmp_path / "gpoe.csv").open()))[0]["seconds"] == "431.7"
    assert (tmp_path / "gpoe.png").exists()
