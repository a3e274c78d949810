"""Every command x every kind of bad input: exit 2, one line, no traceback, nothing written (issue 16)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolbox.cli.main import app

runner = CliRunner()

# The smallest invocation of each command (valid, were it not for the bad input added below).
COMMANDS = {
    "train-rl": ["train-rl"],
    "play-ises": ["play-ises", "mastermind"],
    "bench-ises": ["bench-ises"],
    "fuse-gp run": ["fuse-gp", "run"],
    "sample-diffusion": ["sample-diffusion", "simulate"],
    "map-landscape": ["map-landscape", "synthetic"],
    "train-noisy": ["train-noisy"],
    "audit-noisy": ["audit-noisy"],
    "shape-reward": ["shape-reward"],
    "shape-reward solve": ["shape-reward", "solve"],
    "infer-choice infer": ["infer-choice", "infer"],
    "infer-choice sweep": ["infer-choice", "sweep"],
}
# One integer setting of each command: for a wrong type and an out-of-range value.
INT_SETTING = {
    "train-rl": "steps", "play-ises": "max_actions", "bench-ises": "n_games", "fuse-gp run": "experts",
    "sample-diffusion": "particles", "map-landscape": "k", "train-noisy": "epochs", "audit-noisy": "permutations",
    "shape-reward": "episodes", "shape-reward solve": "horizon", "infer-choice infer": "chains", "infer-choice sweep": "trials",
}
# A file input of each command that reads one, and what a malformed one looks like to it.
FILE_OPTION = {
    "train-rl": ["--set", "band_csv={}", "--schedule", "csv"], "play-ises": ["--config", "{}"],
    "bench-ises": ["--config", "{}"], "fuse-gp run": ["--dataset", "file", "--data", "{}"],
    "sample-diffusion": ["--set", "data=empirical", "--set", "points={}"], "map-landscape": None,
    "train-noisy": ["--config", "{}"], "audit-noisy": ["--checkpoint", "{}"], "shape-reward": ["--config", "{}"],
    "shape-reward solve": ["--mdp", "{}"], "infer-choice infer": ["--choices", "{}"], "infer-choice sweep": ["--config", "{}"],
}


def _cases():
    for name in COMMANDS:
        yield name, "unknown setting", ["--set", "bogus=1"], "unknown setting bogus"
        yield name, "wrong type", ["--set", f"{INT_SETTING[name]}=abc"], "input should be a valid integer"
        yield name, "out of range", ["--set", f"{INT_SETTING[name]}=-1"], "input should be greater than"
        yield name, "bad config", ["--config", "{bad_toml}"], "not valid TOML"
        yield name, "missing config", ["--config", "{missing}"], "config file not found"
        yield name, "bad --out", ["--out", "{afile}/sub"], "is not a folder"
        yield name, "negative seed", ["--seed", "-1"], "Invalid value for '--seed'"
        if FILE_OPTION[name]:
            yield name, "missing file", FILE_OPTION[name], "not found"
            yield name, "binary file", FILE_OPTION[name], ""


def run_case(tmp_path: Path, name: str, kind: str, extra: list[str]):
    """Run one case in tmp_path/work (its inputs made beside it); returns (click result, the work folder)."""
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "afile").write_text("x")
    (tmp_path / "bad.toml").write_text("steps = = 3\n")
    (tmp_path / "binary.bin").write_bytes(bytes(range(256)) * 8)
    target = {"missing file": tmp_path / "missing.dat", "binary file": tmp_path / "binary.bin"}.get(kind, "")
    args = [a.format(target) if "{}" in a else a.format(bad_toml=tmp_path / "bad.toml", missing=tmp_path / "no.toml",
                                                          afile=tmp_path / "afile") for a in extra]
    old = os.getcwd()
    os.chdir(work)
    try:
        return runner.invoke(app, [*COMMANDS[name], *args]), work
    finally:
        os.chdir(old)


@pytest.mark.parametrize("name, kind, extra, needle", list(_cases()),
                         ids=[f"{c[0]}-{c[1]}" for c in _cases()])
def test_bad_input_is_exit_2_one_line_and_writes_nothing(tmp_path, name, kind, extra, needle):
    result, work = run_case(tmp_path, name, kind, extra)
    output = result.output.strip()
    assert result.exit_code == 2, output
    assert needle in output and "Traceback" not in output, output
    if output.startswith("error:"):  # ours; click's usage errors (bad option values) are its own boxed format
        assert len(output.splitlines()) == 1, output
    assert list(work.iterdir()) == [], f"{name} wrote {list(work.iterdir())}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "bad.toml", "binary.bin", "work"]
