"""`toolbox train-rl --model DIR` with a tiny Hugging Face causal LM built and saved offline (nothing downloaded),
run through the CLI in a subprocess: the outputs' values, not only their presence."""
from __future__ import annotations

import csv
import json
import math
import subprocess
import sys

import pytest
from tiny_hf import save_tiny_gpt2  # skips without tokenizers / transformers

from toolbox.entrocraft.tasks import make_task

TOOLBOX = [sys.executable, "-m", "toolbox.cli.main"]
STEPS = 3


def test_train_rl_with_a_local_tiny_gpt2(tmp_path):
    pytest.importorskip("transformers", reason="--model needs transformers (pip install 'toolbox[hf]')")
    alphabet = make_task("letterset").alphabet
    save_tiny_gpt2(tmp_path / "hf", alphabet, n_embd=16)   # 1 layer, 2 heads: a few thousand parameters
    vocab = len(alphabet) + 3                               # <pad>, <eos>, <bos> + one token per character
    sets = {"task": "letterset", "sft_steps": 2, "sft_batch": 8, "prompts_per_step": 4, "group_size": 4,
            "eval_prompts": 4, "eval_n": 3, "eval_every": STEPS, "ckpt_every": STEPS, "minibatches": 1}
    args = [x for k, v in sets.items() for x in ("--set", f"{k}={v}")]
    res = subprocess.run([*TOOLBOX, "train-rl", "--json", "--model", str(tmp_path / "hf"), "--control", "none",
                          "--steps", str(STEPS), "--out", str(tmp_path / "run"), *args],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads(res.stdout)
    assert doc["steps"] == STEPS and doc["task"] == "letterset"
    with (tmp_path / "run" / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == list(range(STEPS))
    for r in rows:
        # token entropy of a softmax over V tokens lies in [0, log V]; a random init sits near the top
        assert 0.0 <= float(r["entropy"]) <= math.log(vocab) + 1e-6
        assert 0.0 <= float(r["accuracy"]) <= 1.0
        assert float(r["reward"]) == pytest.approx(2 * float(r["accuracy"]) - 1)   # rewards are +-1
        assert int(r["kept"]) == sets["prompts_per_step"] * sets["group_size"]        # GRPO keeps every rollout
        assert math.isfinite(float(r["pg_loss"])) and math.isfinite(float(r["kl"]))
    assert float(rows[0]["entropy"]) > 0.5 * math.log(vocab)   # 2 warm-start steps leave it close to uniform
    with (tmp_path / "run" / "eval.csv").open() as fh:
        evals = list(csv.DictReader(fh))
    assert sorted({int(e["updates"]) for e in evals}) == [0, STEPS]
    for e in evals:
        passk = [float(e[f"pass@{k}"]) for k in range(1, 4)]
        assert passk == sorted(passk) and 0.0 <= passk[0] == pytest.approx(float(e["mean_at_n"]))
        assert 0.0 <= float(e["token_entropy"]) <= math.log(vocab) + 1e-6
