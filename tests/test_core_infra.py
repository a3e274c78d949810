import json
import os
import subprocess
import sys
from dataclasses import dataclass, field

import numpy as np
import pytest

from toolbox.core import config, executor, io, rng
from toolbox.core.errors import UserInputError


def seeded_task(seed: int) -> list[float]:
    """A pure task: the result depends on the seed alone."""
    return rng.numpy_generator(seed, 7).normal(size=3).round(12).tolist()


def test_executor_serial_and_process_give_identical_results():
    seeds = list(range(6))
    serial = executor.map_tasks(seeded_task, seeds, backend="serial")
    process = executor.map_tasks(seeded_task, seeds, backend="process", workers=2)
    assert serial == process == [seeded_task(s) for s in seeds]


def test_executor_reports_progress_and_rejects_unknown_backend():
    seen = []
    executor.map_tasks(seeded_task, [1, 2, 3], progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    with pytest.raises(UserInputError):
        executor.map_tasks(seeded_task, [1], backend="spark")


@pytest.mark.dist
def test_executor_ray_local_instance_matches_serial():
    ray = pytest.importorskip("ray")
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import the tests folder
    try:
        seeds = list(range(4))
        assert executor.map_tasks(seeded_task, seeds, backend="ray", workers=2) == \
            executor.map_tasks(seeded_task, seeds, backend="serial")
    finally:
        ray.shutdown()


@dataclass
class Inner:
    rate: float = 0.1
    steps: int = 3


@dataclass
class Settings:
    name: str = "a"
    size: int = 4
    weights: list[float] = field(default_factory=lambda: [1.0, 2.0])
    inner: Inner = field(default_factory=Inner)
    flag: bool = False


def test_config_layers_merge_in_order(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('size = 8\nname = "file"\n[inner]\nrate = 0.5\n')
    cfg = config.resolve(Settings(), f, ["inner.steps=9", "name=cli", "weights=[3, 4]"], {"size": 16, "flag": None})
    assert cfg == Settings(name="cli", size=16, weights=[3.0, 4.0], inner=Inner(rate=0.5, steps=9))


def test_config_errors_are_user_errors(tmp_path):
    with pytest.raises(UserInputError, match="unknown setting"):
        config.resolve(Settings(), sets=["colour=red"])
    with pytest.raises(UserInputError, match="size: input should be a valid integer"):
        config.resolve(Settings(), sets=["size=big"])
    with pytest.raises(UserInputError, match="key=value"):
        config.parse_set(["size"])
    with pytest.raises(UserInputError, match="not found"):
        config.load_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("size = = 3")
    with pytest.raises(UserInputError, match="not valid TOML"):
        config.load_toml(bad)


def test_config_toml_round_trip():
    import tomllib

    cfg = Settings(inner=Inner(rate=0.25))
    assert config.merge(Settings(), tomllib.loads(config.dumps_toml(cfg))) == cfg


def test_atomic_writes_and_json_conversion(tmp_path):
    p = io.write_json(tmp_path / "a" / "r.json", {"x": np.float32(1.5), "arr": np.arange(3), "bad": float("nan")})
    assert json.loads(p.read_text()) == {"x": 1.5, "arr": [0, 1, 2], "bad": None}
    io.write_csv(tmp_path / "m.csv", [{"a": 1, "b": 2.5}, {"a": 3}])
    assert (tmp_path / "m.csv").read_text() == "a,b\n1,2.5\n3,\n"
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("old")

    class Boom:
        def __bytes__(self):
            raise RuntimeError

    with pytest.raises(TypeError):
        io.atomic_write_bytes(target, Boom())
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["keep.txt"]


def test_new_run_dir_never_reuses_a_folder(tmp_path):
    a = io.new_run_dir("run", tmp_path)
    b = io.new_run_dir("run", tmp_path)
    assert a != b and a.is_dir() and b.is_dir()


def test_library_imports_without_cli_dependencies(tmp_path):
    code = "import toolbox, toolbox.core.io, toolbox.core.executor, toolbox.demo, sys; " \
           "assert 'typer' not in sys.modules and 'rich' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)  # the installed package, not the source
