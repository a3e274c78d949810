import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolbox.cli.main import app
from toolbox.core import native

runner = CliRunner()


def test_help_lists_general_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "doctor" in result.output and "demo" in result.output


def test_help_is_fast_and_lazy(tmp_path):
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", "import sys; sys.argv=['toolbox','--help']\n"
                          "from toolbox.cli.main import app\n"
                          "heavy=[m for m in ('torch','gensim','gpytorch','scipy','matplotlib') if m in sys.modules]\n"
                          "print(heavy)"], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == "[]"
    assert time.perf_counter() - start < 10


def test_doctor_json_is_one_document():
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["schema_version"] == 1
    # versions against the modules and the installed distribution themselves
    import importlib.metadata
    import importlib.util
    import platform

    import numpy
    import torch

    assert doc["toolbox"] == importlib.metadata.version("toolbox")
    assert doc["python"] == "{}.{}.{}".format(*sys.version_info[:3]) and doc["platform"] == platform.platform()
    assert doc["numpy"] == numpy.__version__ and doc["torch"] == torch.__version__
    assert doc["torch_cuda"] == torch.version.cuda and doc["torch_threads"] == torch.get_num_threads()
    # native availability: is the compiled module on the path, and does it import
    has_core = importlib.util.find_spec("toolbox._core") is not None
    assert doc["native_extension"] is has_core is native.available()
    assert (doc["native_import_error"] is None) is has_core
    if has_core:
        from toolbox import _core

        built = dict(_core.build_info())
        assert doc["cuda_compiled"] is bool(built["cuda"]) and doc["threads"] == built["threads"] >= 1
        assert doc["cuda_archs"] == built["cuda_archs"] and doc["cuda_version"] == built["cuda_version"]
    # CUDA kernels are usable only when compiled in and torch sees a GPU; the reason is given when they are not
    assert isinstance(doc["cuda_usable"], bool)
    assert not doc["cuda_usable"] or (doc["cuda_compiled"] and torch.cuda.is_available())
    assert ("cuda_device" in doc) is doc["cuda_usable"] and ("cuda_unusable_reason" in doc) is not doc["cuda_usable"]
    assert doc["engines"] == {"ray": importlib.util.find_spec("ray") is not None}


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="no nvcc on this machine")
def test_build_with_nvcc_reports_cuda_compiled():
    info = native.build_info()
    assert info["cuda"] is True, "nvcc is installed but the CUDA kernels were not compiled into toolbox._core"
    assert "90" in info["cuda_archs"] and "80" in info["cuda_archs"]


def test_demo_kernels_runs_and_writes_summary(tmp_path):
    result = runner.invoke(app, ["demo", "--only", "kernels", "--out", str(tmp_path), "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["pipelines"][0]["status"] == "ok"
    assert json.loads((tmp_path / "summary.json").read_text())["pipelines"][0]["philox_known_answers"] is True


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    result = runner.invoke(app, ["demo", "--only", "nope", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown pipeline" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["demo", "--device", "tpu", "--only", "kernels", "--out", str(tmp_path)])
    assert result.exit_code == 2


def test_console_script_json_stdout_is_clean(tmp_path):
    exe = Path(sys.executable).parent / "toolbox"
    if not exe.exists():
        pytest.skip("console script not installed next to this Python")
    out = subprocess.run([exe, "doctor", "--json"], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert "\x1b[" not in out.stdout
    json.loads(out.stdout)


def test_bad_input_after_the_run_folder_was_made_leaves_no_empty_folder(tmp_path):
    target = tmp_path / "new-run"
    result = runner.invoke(app, ["sample-diffusion", "no-such-section", "--out", str(target)])
    assert result.exit_code == 2
    assert not target.exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "mine.txt").write_text("user data")
    result = runner.invoke(app, ["sample-diffusion", "no-such-section", "--out", str(kept)])
    assert result.exit_code == 2 and (kept / "mine.txt").read_text() == "user data"


def test_demo_entry_missing_its_reference_fails(tmp_path, monkeypatch):
    """A demo whose computed figure misses its reference is not 'ok': status mismatch, the figure in the headline,
    exit 1; a figure within its tolerance passes."""
    import sys
    import types

    from toolbox import demo

    fake = types.ModuleType("fake_demo")
    fake.run_demo = lambda out, seed, device, log: {"headline": "x", "checks": [
        demo.check("total", 5723, 5722), demo.check("rate", 0.5 + 1e-9, 0.5, 1e-6)]}
    monkeypatch.setitem(sys.modules, "fake_demo", fake)
    monkeypatch.setitem(demo.DEMOS, "fake", "fake_demo")
    result = runner.invoke(app, ["demo", "--only", "fake", "--only", "kernels", "--out", str(tmp_path / "d"),
                                 "--json"])
    assert result.exit_code == 1
    entries = {r["pipeline"]: r for r in json.loads(result.stdout)["pipelines"]}
    assert entries["kernels"]["status"] == "ok" and entries["fake"]["status"] == "mismatch"
    assert entries["fake"]["headline"] == "reference mismatch: total = 5723 (reference 5722 +- 0.0)"
    assert demo.missed_checks({"checks": [demo.check("nan", float("nan"), 0.0, 1.0)]})
