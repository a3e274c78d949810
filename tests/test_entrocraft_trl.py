"""The Entrocraft adapter for TRL's GRPOTrainer: the batch-level hook on synthetic batches, and two real training
steps with a tiny randomly initialised GPT-2 on CPU (skipped without trl). Nothing is downloaded."""
import numpy as np
import pytest
import torch

from toolbox.entrocraft.control import BandSchedule
from toolbox.entrocraft.trl_adapter import apply_entrocraft, loss_mask
from tiny_hf import save_tiny_gpt2

ADV = torch.tensor([1.2, -0.5, 0.0, -1.1, 0.7, 0.0, -0.2, 0.4])


def _batch():
    mask = torch.ones(8, 5, dtype=torch.long)
    mask[1, 3:] = 0
    return {"advantages": ADV.clone(), "completion_mask": mask, "num_items_in_batch": mask.sum()}


@pytest.mark.parametrize("band,mode", [((0.1, 0.2), 1), ((0.8, 0.9), -1), ((0.4, 0.6), 0)])
def test_hook_keeps_exactly_m_times_a_nonnegative(band, mode):
    batch = _batch()
    h = torch.full((8, 5), 0.5)
    h[1, 3:] = 100.0  # padding: must not enter the batch entropy
    out, entropy, res = apply_entrocraft(batch, h, band)
    assert entropy == pytest.approx(0.5) and res.mode == mode
    keep = mode * ADV.numpy() >= 0
    np.testing.assert_array_equal(res.accept, keep)
    np.testing.assert_array_equal(out["advantages"].numpy(), np.where(keep, ADV.numpy(), 0.0))
    lm = loss_mask(out)
    assert torch.equal(lm.sum(1) > 0, torch.as_tensor(keep) & (batch["completion_mask"].sum(1) > 0))
    assert torch.equal(lm, batch["completion_mask"] * torch.as_tensor(keep).long()[:, None])
    assert int(out["num_items_in_batch"]) == int(lm.sum())
    assert torch.equal(batch["advantages"], ADV)  # the input batch is not modified


def test_hook_respects_existing_tool_mask_and_seq_mean():
    batch = _batch()
    batch["tool_mask"] = torch.ones(8, 5, dtype=torch.long)
    batch["tool_mask"][0, :2] = 0
    h = torch.arange(40, dtype=torch.float32).reshape(8, 5) / 40
    out, entropy, res = apply_entrocraft(batch, h, (10.0, 11.0), aggregation="seq-mean")
    lm = loss_mask(batch).float()
    assert entropy == pytest.approx(float(((h * lm).sum(1) / lm.sum(1)).mean()), rel=1e-6)
    assert res.mode == -1 and out["tool_mask"][0, :2].sum() == 0
    assert torch.equal(out["tool_mask"][3], torch.ones(5, dtype=torch.long))  # A < 0 kept under m = -1
    assert out["tool_mask"][0].sum() == 0  # A > 0 rejected


def _count_a(completions, **kwargs):
    return [float(c.count("a")) for c in completions]


@pytest.mark.parametrize("band,mode", [((50.0, 60.0), -1), ((0.0, 1e-3), 1)])
def test_trl_grpo_trainer_two_steps(tmp_path, band, mode):
    pytest.importorskip("trl")
    datasets = pytest.importorskip("datasets")
    from trl import GRPOConfig

    from toolbox.entrocraft.trl_adapter import EntrocraftGRPOTrainer

    save_tiny_gpt2(tmp_path / "m", "abcd", n_embd=16, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                   bos_token_id=2, eos_token_id=1, pad_token_id=0)
    data = datasets.Dataset.from_list([{"prompt": p} for p in ["ab", "cd", "ba", "dc", "aa", "bb", "cc", "dd"]])
    args = GRPOConfig(output_dir=str(tmp_path / "out"), per_device_train_batch_size=8, num_generations=4,
                      max_completion_length=6, max_steps=2, learning_rate=1e-3, logging_steps=1, report_to="none",
                      use_cpu=True, save_strategy="no", beta=0.0, seed=0, temperature=1.0,
                      dataloader_num_workers=0, disable_tqdm=True)
    trainer = EntrocraftGRPOTrainer(model=str(tmp_path / "m"), reward_funcs=_count_a, args=args, train_dataset=data,
                                    entrocraft_schedule=BandSchedule(kind="constant", start=band, end=band,
                                                                     total_steps=2))
    trainer.train()
    hist = trainer.entrocraft_history
    assert [h["step"] for h in hist] == [0, 1] and all(h["mode"] == mode for h in hist)
    assert all(h["total"] == 8 and 0 < h["entropy"] < np.log(7) + 1e-6 for h in hist)
    last = trainer.entrocraft_last
    np.testing.assert_array_equal(last["accept"], mode * last["advantages"] >= 0)
    logs = [r for r in trainer.state.log_history if "entrocraft/accepted_fraction" in r]
    assert len(logs) == 2, trainer.state.log_history
    for r, h in zip(logs, hist):
        assert r["entrocraft/mode"] == mode and r["entrocraft/band_low"] == band[0]
        assert r["entrocraft/accepted_fraction"] == pytest.approx(h["kept"] / h["total"])
        assert np.isfinite(r["loss"])
    # Eq. 5 through TRL's own loss: the filtered batch gives the same loss as a batch of the kept rollouts only
    # (rejected rows add nothing and the dapo normaliser counts kept tokens only).
    g = torch.Generator().manual_seed(1)
    full = {"prompt_ids": torch.randint(3, 7, (8, 3), generator=g), "prompt_mask": torch.ones(8, 3, dtype=torch.long),
            "completion_ids": torch.randint(3, 7, (8, 5), generator=g), **_batch()}
    out, _, res = apply_entrocraft(full, torch.full((8, 5), 1.0), band)
    assert 0 < res.kept < 8
    kept = torch.as_tensor(res.accept)
    only = {k: v[kept] for k, v in full.items() if k != "num_items_in_batch"}
    only["num_items_in_batch"] = only["completion_mask"].sum()
    trainer.model.eval()
    with torch.no_grad():
        assert float(trainer._compute_loss(trainer.model, out)) == pytest.approx(
            float(trainer._compute_loss(trainer.model, only)), rel=1e-5)
