"""End-to-end `toolbox sample-diffusion` through typer's CliRunner, and the demo entry."""
import json

from typer.testing import CliRunner

from toolbox.cli.main import app

runner = CliRunner()


def test_cli_entropy_and_rates_json(tmp_path):
    out = tmp_path / "run"
    res = runner.invoke(app, ["sample-diffusion", "entropy", "rates", "simulate", "--json", "--out", str(out),
                              "--particles", "3000", "--steps", "200", "--set", "t_hi=2.0",
                              "--set", "rates_points=101", "--set", "direction=reverse", "--seed", "3"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["schema_version"] == 1
    fwd, rev = doc["entropy"]["ift"]
    assert abs(fwd["z"]) < 4 and abs(rev["z"]) < 4 and abs(rev["z_discrete"]) < 4
    assert abs(doc["rates"]["pi_0"] - 0.84504) < 1e-5
    for name in ("config.toml", "summary.json", "entropy/ift.csv", "entropy/ift_convergence.png",
                 "entropy/entropy_histograms_reverse.png", "rates/rates.png", "rates/rates.csv",
                 "simulate/samples.npz", "simulate/trajectories.png"):
        assert (out / name).is_file(), name
    assert "rates_points = 101" in (out / "config.toml").read_text()


def test_cli_phase_diagram_and_fp(tmp_path):
    out = tmp_path / "pd"
    res = runner.invoke(app, ["sample-diffusion", "phase-diagram", "fp-potential", "--json", "--out", str(out),
                              "--particles", "2000", "--set", "fp_samples=1000", "--set", "fp_points=40",
                              "--set", "fp_times=[0.42]"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    tests = {t["phase"]: t for t in doc["phase-diagram"]["unstable_test"]}
    assert tests["unstable symmetry breaking"]["diverged"] == 0
    assert (out / "phase-diagram/phase_diagram.png").is_file() and (out / "fp-potential/franz_parisi.png").is_file()


def test_cli_bad_input_is_one_line_exit_2(tmp_path):
    for args in (["sample-diffusion", "nonsense"], ["sample-diffusion", "simulate", "--data", "nope"],
                 ["sample-diffusion", "simulate", "--set", "scheme=exact", "--set", "direction=reverse"],
                 ["sample-diffusion", "simulate", "--set", "particles=abc"],
                 ["sample-diffusion", "simulate", "--data", "empirical"]):
        res = runner.invoke(app, [*args, "--out", str(tmp_path / "bad")])
        assert res.exit_code == 2, (args, res.output)
        assert "Traceback" not in res.output


def test_cli_empirical_file(tmp_path):
    import numpy as np

    pts = tmp_path / "train.npy"
    np.save(pts, np.random.default_rng(0).normal(size=(30, 2)))
    res = runner.invoke(app, ["sample-diffusion", "simulate", "--json", "--data", "empirical", "--out",
                              str(tmp_path / "emp"), "--particles", "200", "--steps", "100",
                              "--set", f"points={pts}", "--set", "t_lo=0.01", "--set", "t_hi=2.0",
                              "--set", "direction=reverse"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["simulate"]["backend"] in ("cpu", "reference")
