"""train-rl end to end on tiny settings: every control and estimator, the filter inside the trainer, resume
equality, the rollout interface, the CLI (JSON, files, bad input) and a local Hugging Face model."""
from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from toolbox.cli.main import app
from toolbox.core.errors import UserInputError
from toolbox.entrocraft.tasks import make_task
from toolbox.entrocraft.trainer import (CONTROLS, RolloutRequest, TrainConfig, Trainer, _sample_shard,
                                        generate_rollouts, train)
from tiny_hf import save_tiny_gpt2

TINY = dict(sft_steps=10, sft_batch=32, steps=4, prompts_per_step=4, group_size=4, eval_prompts=4, eval_n=3,
            eval_every=2, ckpt_every=2, d_model=32, n_head=2, n_layer=1, minibatches=2)
runner = CliRunner()


def tiny(**kw) -> TrainConfig:
    return TrainConfig(**{**TINY, **kw})


@pytest.mark.parametrize("task", ["countdown", "modarith", "subsetsum"])
def test_tasks_split_and_verify(task):
    t = make_task(task)
    assert not {i.prompt for i in t.train} & {i.prompt for i in t.test}
    assert all(t.verify(i, s) for i in t.train[:100] for s in i.solutions)
    assert not t.verify(t.train[0], "")
    rng = np.random.default_rng(0)
    assert all(len(t.random_answer(i, rng)) <= t.max_answer_len for i in t.train[:50])


def test_countdown_solutions_are_complete():
    t = make_task("countdown")
    inst = next(i for i in t.train + t.test if i.record == ((1, 2, 3), 6))
    assert set(inst.solutions) >= {"1+2+3", "1*2*3", "3*2*1", "2+1+3"}
    assert not t.verify(inst, "1+2+4") and not t.verify(inst, "1+2-3")


def test_user_jsonl_task(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(json.dumps({"prompt": f"{i}+{i}=", "answers": [str(2 * i)]}) for i in range(20)))
    t = make_task("jsonl", prompts=path)
    assert t.verify(t.train[0], t.train[0].solutions[0]) and not t.verify(t.train[0], "x")
    assert t.random_answer is None
    with pytest.raises(UserInputError):
        make_task("jsonl", prompts=tmp_path / "missing.jsonl")
    with pytest.raises(UserInputError, match="verifier"):
        make_task("jsonl", prompts=path, verifier="no_such_module:f")


@pytest.mark.parametrize("control, estimator", [(c, "grpo") for c in CONTROLS]
                         + [("entrocraft", e) for e in ("rloo", "reinforce++", "gspo")] + [("none", "gspo")])
def test_every_control_and_estimator_runs(tmp_path, baseline, control, estimator):
    """Each control on a run with reward signal (modarith after 40 SFT steps: a few correct answers a batch, so
    the advantages are not all 0), checked against what the control does differently from plain GRPO."""
    paper = {"filter_mode": "paper"} if control == "entrocraft" else {}   # Alg. 1's filter over each estimator
    summary, rows = _signal_run(tmp_path, control=control, estimator=estimator, **paper)
    _, base = baseline
    n = SIGNAL["prompts_per_step"] * TINY["group_size"]
    assert len(rows) == 2 and summary["steps"] == 2 and set(summary["eval_final"]) == {1.0, 0.6}
    # step 0 samples from the same warm-started policy with the same seed: identical rollouts for every control
    assert rows[0]["entropy"] == base[0]["entropy"] and rows[0]["accuracy"] == base[0]["accuracy"]
    for r in rows:
        assert np.isfinite(r["entropy"]) and r["entropy"] >= 0
        assert r["kept"] == round(r["accepted_fraction"] * n) and 0 <= r["accepted_fraction"] <= 1
        # the band's mode m: +1 above the band, -1 below it, 0 inside (computed for every control)
        assert r["mode"] == (1 if r["entropy"] > r["h_high"] else -1 if r["entropy"] < r["h_low"] else 0)
        if control != "entrocraft":  # only Entrocraft rejects rollouts
            assert r["accepted_fraction"] == 1 and r["kept"] == n
        if control != "entropic":
            assert np.isnan(r["entropic_alpha"])
    tr = Trainer(tiny(**{**SIGNAL, "sft_steps": 0}, control=control, estimator=estimator), tmp_path / "clip",
                 lambda _: None, 1)
    cfg = tr.cfg
    expected_clip = {"clip-higher": (cfg.clip_low, cfg.clip_higher), "clip-cov": (1.0, 1.0), "kl-cov": (1.0, 1.0)}
    if estimator == "gspo":
        assert tr._clip_range() == (cfg.gspo_clip_low, cfg.gspo_clip_high)
    else:
        assert tr._clip_range() == expected_clip.get(control, (cfg.clip_low, cfg.clip_high))

    if control == "entrocraft":
        # entropy ~1.8 nats, above the band (0.4 .. 0.7): m = +1, keep iff A >= 0. A correct answer in a group makes
        # the group's wrong answers negative, so some step rejects; with group-centred advantages (A = 0 in a
        # uniform group) exactly the wrong answers of mixed groups go: 1 <= rejected <= (G - 1) * correct
        assert all(r["mode"] == 1 for r in rows)
        assert min(r["accepted_fraction"] for r in rows) < 1
        for r in rows:
            correct = round(r["accuracy"] * n)
            if estimator != "reinforce++" and 0 < correct < n:
                assert 1 <= n - r["kept"] <= (TINY["group_size"] - 1) * correct, r
    elif control == "entropy-loss":
        # the bonus -c H raises the entropy against plain GRPO on the same rollouts
        assert rows[0]["policy_entropy"] > base[0]["policy_entropy"] and rows[1]["entropy"] > base[1]["entropy"]
    elif control == "kl-cov":
        # no PPO clip at all (the penalty replaces it), while plain GRPO clips some tokens on these rollouts
        assert all(r["clip_fraction"] == 0 for r in rows) and base[0]["clip_fraction"] > 0
    elif control == "clip-cov":
        # one token per minibatch is detached (int(2e-4 n_tok) = 0 < 1 for n_tok < 5000); a minibatch holds
        # n / minibatches = 32 rollouts of >= 1 token: 0 < clip_fraction <= 1/32 when the clip of 1.0 does not bind
        assert 0 < rows[0]["clip_fraction"] <= 1 / (n // TINY["minibatches"])
    elif control == "w-reinforce":
        # raw rewards, -1 wrong and +0.1 correct: per token max(-A r, -A clip(r)) >= 0.8 (A = -1) or >= -0.12
        # (A = 0.1), so pg_loss >= 0.8 (1 - f) - 0.12 f, f the share of tokens in correct answers (accuracy <= 8%
        # here: f < 0.3 -> > 0.5); plain GRPO's normalised advantages average ~0
        for r, b in zip(rows, base):
            assert r["accuracy"] <= 0.1 and r["pg_loss"] > 0.5 and abs(b["pg_loss"]) < 0.05
    elif control == "entropic":
        # EntroPIC's PI controller on e_t = H_t - target: alpha_0 = kp e_0, alpha_1 = kp e_1 + ki e_0 (float64
        # arithmetic on the logged H: rel 1e-9)
        e0, e1 = (r["entropy"] - cfg.entropic_target for r in rows)
        assert rows[0]["entropic_alpha"] == pytest.approx(cfg.entropic_kp * e0, rel=1e-9)
        assert rows[1]["entropic_alpha"] == pytest.approx(cfg.entropic_kp * e1 + cfg.entropic_ki * e0, rel=1e-9)
    elif control == "none" and estimator == "gspo":
        # GSPO's sequence-ratio clip (3e-4, 4e-4) binds far more often than GRPO's token clip of 0.2
        assert rows[0]["clip_fraction"] > base[0]["clip_fraction"]
    elif control == "none":  # the baseline's own settings: the same numbers again (the run is deterministic)
        strip = lambda rs: [{k: v for k, v in r.items() if k != "seconds"} for r in rs]  # noqa: E731
        np.testing.assert_equal(strip(rows), strip(base))  # NaN == NaN here


SIGNAL = dict(task="modarith", sft_steps=40, prompts_per_step=16, steps=2, ckpt_every=5, eval_every=5)


def _signal_run(out, **kw):
    summary = train(tiny(**SIGNAL, **kw), out, seed=1, log=lambda _: None)
    rows = [{k: float(v) if v not in ("", "nan") else float("nan") for k, v in r.items()}
            for r in csv.DictReader((out / "metrics.csv").open())]
    return summary, rows


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """Plain GRPO (control none) on the same settings and seed."""
    return _signal_run(tmp_path_factory.mktemp("baseline"), control="none", estimator="grpo")


def _capture_update(trainer, mode_band):
    seen = {}
    trainer.band = lambda t: mode_band

    def update(t, seq, mask, seq_of_tok, old_logp, ref_logp, advantage, keep):
        seen.update(advantage=np.asarray(advantage), keep=keep)
        return {"pg_loss": 0.0, "kl": 0.0, "clip_fraction": 0.0, "policy_entropy": 0.0}

    trainer.update = update
    return seen


@pytest.mark.parametrize("band, mode", [((0.0, 0.0), 1), ((50.0, 60.0), -1), ((0.0, 50.0), 0)])
def test_trainer_applies_the_filter(tmp_path, band, mode):
    """Inside the trainer: m from the band, kept rollouts are exactly those with m * A >= 0."""
    tr = Trainer(tiny(task="modarith", sft_steps=40, prompts_per_step=16, filter_mode="paper"), tmp_path,
                 lambda _: None, 0)
    tr.warm_start()
    tr.reference = tr.policy
    seen = _capture_update(tr, band)
    found_signal = False
    for t in range(3):
        row = tr.step(t)
        assert row["mode"] == mode
        a, keep = seen["advantage"], seen["keep"]
        assert keep.tolist() == (mode * a >= 0).tolist()
        found_signal |= bool((a != 0).any())
    assert found_signal


@pytest.mark.parametrize("band, applied", [((0.0, 0.0), 1), ((50.0, 60.0), -1), ((0.0, 50.0), None)])
def test_graded_mode_switches_estimators_and_trains_on_their_rollouts(tmp_path, band, applied):
    """The default rule: out of the band RAFT++ / NSR advantages over the rollouts that carry them (Eq. 5's 1/|S|
    over those, the step damped by |S| / prompts below one signal rollout per prompt: RAFT++ at this low accuracy
    is); deep inside the band (here H ~ 2.5 against a centre of 25, e = -0.9) NSR on most steps, undamped."""
    assert TrainConfig().filter_mode == "graded"
    tr = Trainer(tiny(task="modarith", sft_steps=40, prompts_per_step=16), tmp_path, lambda _: None, 0)
    tr.warm_start()
    tr.reference = tr.policy
    seen = _capture_update(tr, band)
    modes, scales = [], []
    for t in range(6):
        row = tr.step(t)
        a, keep = seen["advantage"], seen["keep"]
        modes.append(row["control_mode"])
        scales.append(row["step_scale"])
        if row["control_mode"] == 0:       # plain GRPO on every rollout
            assert keep.all()
        else:      # the switched estimator's rollouts only: A = m min(1, |S| / prompts) on them, 0 elsewhere
            scale = min(1.0, keep.sum() / 16)
            assert set(np.unique(a[keep])) == {row["control_mode"] * scale} and not a[~keep].any()
            assert row["step_scale"] == scale
    if applied is None:
        assert set(modes) <= {-1, 0} and modes.count(-1) >= 3
    else:
        assert modes == [applied] * 6 and (min(scales) < 1) == (applied == 1)


def test_release_mode_replaces_advantages(tmp_path):
    tr = Trainer(tiny(sft_steps=0, prompts_per_step=16, filter_mode="release"), tmp_path, lambda _: None, 0)
    tr.reference = tr.policy
    seen = _capture_update(tr, (0.0, 0.0))           # always above the band -> RAFT++
    tr.step(0)
    assert seen["keep"].all() and set(np.unique(seen["advantage"])) <= {0.0, 1.0}


def test_resume_reaches_the_same_metrics(tmp_path):
    cfg = tiny(steps=5)
    ref_summary = train(cfg, tmp_path / "straight", seed=3, log=lambda _: None)

    def crash(t, row):
        if t == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "broken", seed=3, log=lambda _: None, on_step=crash)
    resumed = train(cfg, tmp_path / "broken", seed=3, log=lambda _: None, resume=True)
    straight = (tmp_path / "straight" / "metrics.csv").read_text()
    again = (tmp_path / "broken" / "metrics.csv").read_text()
    drop = lambda text: [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(text.splitlines())]
    assert drop(straight) == drop(again)
    assert (tmp_path / "straight" / "eval.csv").read_text() == (tmp_path / "broken" / "eval.csv").read_text()
    assert resumed["eval_final"] == ref_summary["eval_final"]
    with pytest.raises(UserInputError, match="settings differ"):
        train(dataclasses.replace(cfg, lr=0.5), tmp_path / "broken", seed=3, log=lambda _: None, resume=True)


def test_rollout_request_matches_in_process_sampling(tmp_path):
    """The executor entry point rebuilds the policy and draws the same tokens as the in-process path."""
    tr = Trainer(tiny(), tmp_path, lambda _: None, 0)
    prompts = tr._prompt_tensor(tr.task.train[:5]).repeat_interleave(3, 0)
    req = RolloutRequest(tr.model_config, "", {k: v.clone() for k, v in tr.policy.state_dict().items()}, prompts,
                         tr.max_new, tr.tok.eos_id, tr.tok.pad_id, 1.0, 0.9, 123)
    a_seq, a_mask = generate_rollouts(req)
    b_seq, b_mask = _sample_shard(tr.policy.eval(), req)
    assert torch.equal(a_seq, b_seq) and torch.equal(a_mask, b_mask)


def test_bad_settings(tmp_path):
    for kw in ({"control": "magic"}, {"estimator": "ppo2"}, {"group_size": 1}, {"filter_mode": "x"}):
        with pytest.raises(UserInputError):
            Trainer(tiny(**kw), tmp_path, lambda _: None, 0)
    with pytest.raises(UserInputError, match="knots"):
        Trainer(tiny(schedule="piecewise", band_knots="oops"), tmp_path, lambda _: None, 0)


# ---- the CLI
def _invoke(*args):
    return runner.invoke(app, ["train-rl", *args])


def test_cli_train_rl_json_and_files(tmp_path):
    sets = [x for k, v in TINY.items() for x in ("--set", f"{k}={v}")]
    res = _invoke("--json", "--out", str(tmp_path / "run"), "--seed", "2", "--steps", "3", *sets)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["schema_version"] == 1 and doc["control"] == "entrocraft" and doc["steps"] == 3
    for name in ("config.toml", "metrics.csv", "eval.csv", "summary.json", "training.png", "passk.png",
                 "checkpoints/latest.pt"):
        assert (tmp_path / "run" / name).is_file(), name
    res = _invoke("--json", "--out", str(tmp_path / "run"), "--seed", "2", "--resume")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["steps"] == 3
    res = _invoke("--json", "--compare", str(tmp_path / "run"), "--out", str(tmp_path / "cmp"))
    assert res.exit_code == 0, res.output
    assert (tmp_path / "cmp" / "compare.png").is_file() and json.loads(res.stdout)["runs"]


def test_cli_show_schedule_and_theory(tmp_path):
    res = _invoke("--show-schedule", "--json", "--out", str(tmp_path), "--steps", "100")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["schedule"]
    assert rows[50]["h_low"] == pytest.approx(0.5) and rows[50]["h_high"] == pytest.approx(0.6)
    assert (tmp_path / "schedule.png").is_file()
    res = _invoke("--theory-check", "--json")
    assert res.exit_code == 0
    rows = json.loads(res.stdout)["theory"]
    assert rows[0]["actual"] == pytest.approx(-1.5812e-3, abs=2e-7)


@pytest.mark.parametrize("args", [["--control", "magic"], ["--set", "nonsense=1"], ["--set", "steps=abc"],
                                  ["--resume"], ["--seeds", "a,b"], ["--schedule", "csv"],
                                  ["--compare", "/nonexistent-run"]])
def test_cli_bad_input_is_one_line_exit_2(tmp_path, args):
    res = _invoke("--out", str(tmp_path / "o"), *args)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output


def test_hf_model_from_local_folder(tmp_path):
    save_tiny_gpt2(tmp_path / "hf", make_task("countdown").alphabet)
    cfg = tiny(model=str(tmp_path / "hf"), steps=2, sft_steps=5)
    summary = train(cfg, tmp_path / "run", seed=0, log=lambda _: None)
    assert summary["steps"] == 2 and np.isfinite(summary["entropy_final"])
    res = _invoke("--model", str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    assert res.exit_code == 2


def test_cli_several_seeds(tmp_path):
    sets = [x for k, v in {**TINY, "steps": 2}.items() for x in ("--set", f"{k}={v}")]
    res = _invoke("--json", "--out", str(tmp_path), "--seeds", "0,1", "--control", "none", *sets)
    assert res.exit_code == 0, res.output
    runs = json.loads(res.stdout)["runs"]
    assert [r["seed"] for r in runs] == [0, 1] and runs[0]["eval_final"] != runs[1]["eval_final"]
    assert (tmp_path / "seed_1" / "metrics.csv").is_file() and (tmp_path / "compare.csv").is_file()
