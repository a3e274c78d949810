"""Coverage (#19): the corners of toolbox.core that the pipelines' tests do not reach: atomic writes that fail,
JSON conversion of dataclasses / NaN, run-folder name collisions, the memory guard's fallbacks, global seeding,
the dispatch helpers, device resolution and the executor's argument checks."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from toolbox.core import device, dispatch, executor, guards, io, rng
from toolbox.core.errors import UserInputError


# ---- io ----------------------------------------------------------------------------------------------------------
def test_failed_atomic_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a.json"
    io.atomic_write_text(target, "old")
    with pytest.raises(TypeError):
        io.atomic_write_bytes(target, "not bytes")  # fails inside the write
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]  # the .a.json.*.tmp file is gone


@dataclasses.dataclass
class _Point:
    x: float
    tags: tuple


def test_to_jsonable_dataclasses_arrays_and_non_finite(tmp_path):
    obj = {"p": _Point(1.5, ("a", Path("/x"))), 3: np.array([1.0, np.nan]), "t": torch.tensor(2),
           "inf": float("-inf"), "np": np.float32(0.25)}
    assert io.to_jsonable(obj) == {"p": {"x": 1.5, "tags": ["a", "/x"]}, "3": [1.0, None], "t": 2, "inf": None,
                                   "np": 0.25}
    path = io.write_jsonl(tmp_path / "rows.jsonl", [{"a": np.int64(1)}, {"a": float("nan")}])
    assert path.read_text() == '{"a": 1}\n{"a": null}\n'
    io.write_json(tmp_path / "d.json", obj)
    assert io.read_json(tmp_path / "d.json")["p"]["tags"] == ["a", "/x"]
    io.write_csv(tmp_path / "t.csv", [{"a": 1, "b": None}, {"b": math.inf, "c": "z"}])
    assert (tmp_path / "t.csv").read_text() == "a,b,c\n1,,\n,,z\n"  # columns in first-seen order, None/inf empty


def test_new_run_dir_never_reuses_a_folder(tmp_path, monkeypatch):
    class FrozenClock:
        @staticmethod
        def now():
            import datetime as dt

            return dt.datetime(2024, 5, 6, 7, 8, 9)

    monkeypatch.setattr(io, "datetime", FrozenClock)
    made = [io.new_run_dir("demo", tmp_path) for _ in range(3)]
    assert [p.name for p in made] == ["demo-20240506-070809", "demo-20240506-070809-2", "demo-20240506-070809-3"]
    assert all(p.is_dir() for p in made)


# ---- guards ------------------------------------------------------------------------------------------------------
def test_available_memory_without_proc_meminfo(monkeypatch):
    import builtins

    real_open = builtins.open

    def no_proc(path, *a, **k):
        if str(path) == "/proc/meminfo":
            raise OSError("no /proc here")
        return real_open(path, *a, **k)

    monkeypatch.setattr(builtins, "open", no_proc)
    assert guards.available_memory() == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def test_human_bytes_units_and_the_refusal_line(monkeypatch):
    assert guards.human_bytes(1023) == "1023 B"
    assert guards.human_bytes(1536) == "1.5 KiB"
    assert guards.human_bytes(3 * 2**40) == "3.0 TiB"
    assert guards.human_bytes(5 * 2**50) == "5.0 PiB"
    monkeypatch.setattr(guards, "available_memory", lambda: 10 * 2**30)  # usable: 8 GiB
    guards.check_memory(8 * 2**30, "fits")
    with pytest.raises(UserInputError) as exc:
        guards.check_memory(9 * 2**30, "a big run", "use fewer points")
    assert str(exc.value) == ("a big run needs about 9.0 GiB of memory, more than the 8.0 GiB this machine has "
                              "available; use fewer points")


# ---- rng ---------------------------------------------------------------------------------------------------------
@pytest.fixture
def keep_global_rngs():
    """Leave Python's, numpy's and torch's global generators as they were for the tests that follow."""
    state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    yield
    random.setstate(state[0])
    np.random.set_state(state[1])
    torch.set_rng_state(state[2])


def test_seed_everything_seeds_python_numpy_and_torch(keep_global_rngs):
    def draws():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    rng.seed_everything(2**40 + 7)
    first = draws()
    rng.seed_everything(2**40 + 7)
    assert draws() == first
    np.random.seed((2**40 + 7) % 2**32)  # numpy's legacy generator takes the seed modulo 2^32
    assert float(np.random.rand()) == first[1]
    rng.seed_everything(8)
    assert draws() != first


# ---- dispatch / device -------------------------------------------------------------------------------------------
def test_dispatch_helpers_on_cpu_tensors():
    assert dispatch.dtype_code(torch.zeros(1)) == 0 and dispatch.dtype_code(torch.zeros(1, dtype=torch.bfloat16)) == 1
    with pytest.raises(ValueError, match="float32 or bfloat16, got float64"):
        dispatch.dtype_code(torch.zeros(1, dtype=torch.float64))
    t = torch.arange(6.0).reshape(2, 3).t()  # not contiguous
    assert dispatch.ptr(None) == 0 and dispatch.ptr(t) == t.data_ptr()
    view = dispatch.as_numpy(t)
    assert dispatch.as_numpy(None) is None and view.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(view, [[0, 3], [1, 4], [2, 5]])
    assert not dispatch.native_cuda(t)


def test_kernels_reference_switch(monkeypatch):
    from toolbox.core import native

    monkeypatch.setenv("TOOLBOX_KERNELS", "reference")
    assert not dispatch.use_native() and not dispatch.native_cpu(torch.zeros(2))
    monkeypatch.setenv("TOOLBOX_KERNELS", "native")
    assert dispatch.use_native() == native.available()
    assert dispatch.native_cpu(torch.zeros(2)) == native.available()
    assert not dispatch.native_cpu(torch.zeros(2, dtype=torch.float64))  # dtype not in the kernel's list


def test_resolve_device(monkeypatch):
    with pytest.raises(UserInputError, match="--device must be one of auto, cpu, cuda, got 'tpu'"):
        device.resolve_device("tpu")
    assert device.resolve_device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device.resolve_device("auto") == "cpu"
    with pytest.raises(UserInputError, match="torch sees no CUDA GPU"):
        device.resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device.resolve_device("auto") == "cuda" and device.resolve_device("cuda") == "cuda"


# ---- executor ----------------------------------------------------------------------------------------------------
def _square(x):
    return x * x


def test_executor_checks_and_single_task_runs_inline():
    with pytest.raises(UserInputError, match="backend must be one of serial, process, ray, got 'mpi'"):
        executor.map_tasks(_square, [1, 2], backend="mpi")
    with pytest.raises(UserInputError, match="workers must be >= 1, got 0"):
        executor.map_tasks(_square, [1, 2], workers=0)
    seen = []
    # one task never starts a pool, whatever the backend
    assert executor.map_tasks(_square, [7], backend="ray", progress=lambda d, t: seen.append((d, t))) == [49]
    assert seen == [(1, 1)]
    assert executor.default_workers() == len(os.sched_getaffinity(0))


def test_ray_backend_without_ray_is_a_user_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kw):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(UserInputError, match=r"pip install 'toolbox\[ray\]'"):
        executor.map_tasks(_square, [1, 2], backend="ray")


def test_json_dumps_rejects_nothing_it_converted():
    text = io.dumps_json({"a": [np.inf, 1]})
    assert json.loads(text) == {"a": [None, 1]}


# ---- provenance --------------------------------------------------------------------------------------------------
def test_git_commit_in_a_checkout_outside_one_and_without_git(tmp_path, monkeypatch):
    import subprocess

    from toolbox.core import provenance as prov

    root = Path(prov.__file__).resolve().parents[2]
    prov.git_commit.cache_clear()
    try:
        got = prov.git_commit()
        if (root / ".git").exists():  # a checkout: HEAD's commit, '+dirty' with local changes to tracked files
            head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                  check=True).stdout.strip()
            assert got in (head, head + "+dirty")
        else:
            assert got is None
        # an installed package (no .git two levels above the module): None
        fake = tmp_path / "site-packages" / "toolbox" / "core" / "provenance.py"
        monkeypatch.setattr(prov, "__file__", str(fake))
        prov.git_commit.cache_clear()
        assert prov.git_commit() is None
        # a checkout where git cannot run: None, not an exception
        (tmp_path / "site-packages" / ".git").mkdir(parents=True)

        def no_git(*a, **k):
            raise FileNotFoundError("git")

        monkeypatch.setattr(prov.subprocess, "run", no_git)
        prov.git_commit.cache_clear()
        assert prov.git_commit() is None
        assert prov.provenance(seed=5, device="cpu", argv=["toolbox", "x"])["git_commit"] is None
    finally:
        monkeypatch.undo()
        prov.git_commit.cache_clear()
