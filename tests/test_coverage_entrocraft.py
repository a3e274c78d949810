"""Coverage (#19): the rejection epilogue's checks and its reference path, the Hugging Face adapters (with
stand-ins: transformers is optional) and the TRL hook's input checks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from toolbox.core.errors import UserInputError
from toolbox.entrocraft import trl_adapter
from toolbox.entrocraft.epilogue import rejection_epilogue, rejection_epilogue_reference
from toolbox.entrocraft.model import GPTConfig, HFPolicy, HFTokenizer, TinyGPT, load_hf, pad_prompts, sample


# ---- the rejection epilogue ------------------------------------------------------------------------------------
def _epilogue_inputs():
    h = torch.tensor([0.2, 0.4, 0.9, 1.1, 0.3, 0.5], dtype=torch.float32)
    seq = torch.tensor([0, 0, 1, 1, 2, 2])
    adv = torch.tensor([1.0, -0.5, 0.0], dtype=torch.float32)
    groups = torch.tensor([0, 1, 1])
    return h, seq, adv, groups


def test_epilogue_checks_its_inputs():
    h, seq, adv, _ = _epilogue_inputs()
    with pytest.raises(UserInputError, match="token-mean or seq-mean"):
        rejection_epilogue(h, seq, adv, (0.1, 0.2), aggregation="max")
    with pytest.raises(ValueError, match="group_ids must be"):
        rejection_epilogue(h, seq, adv, (0.1, 0.2), group_ids=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="finite h_low <= h_high"):
        rejection_epilogue(h, seq, adv, (0.5, 0.1))
    with pytest.raises(ValueError, match="must be finite"):
        rejection_epilogue(h, seq, torch.tensor([1.0, float("nan"), 0.0]), (0.1, 0.2))


@pytest.mark.parametrize("band,mode", [((0.1, 0.2), 1), ((0.9, 1.0), -1), ((0.5, 0.7), 0)])
def test_epilogue_groups_inferred_and_reference_path_agree(band, mode, monkeypatch):
    """token-mean entropy = 3.4 / 6 = 0.5667; m = +1 above the band, -1 below, 0 inside; keep iff m * A >= 0; the
    group count is inferred from group_ids (max + 1) when not given. The reference path (TOOLBOX_KERNELS=reference)
    gives the same answer as the default one."""
    h, seq, adv, groups = _epilogue_inputs()
    keep = mode * adv.numpy() >= 0
    kept = np.bincount(groups.numpy(), weights=keep, minlength=2)
    results = [rejection_epilogue(h, seq, adv, band, group_ids=groups)]
    monkeypatch.setenv("TOOLBOX_KERNELS", "reference")
    results.append(rejection_epilogue(h, seq, adv, band, group_ids=groups))
    results.append(rejection_epilogue_reference(h, seq, adv, band, group_ids=groups, groups=2))
    for res in results:
        assert float(res.entropy) == pytest.approx(3.4 / 6, rel=1e-6)
        assert int(res.mode) == mode
        np.testing.assert_array_equal(res.accept.numpy(), keep)
        np.testing.assert_array_equal(res.kept_per_group.numpy(), kept)


def test_epilogue_seq_mean_weights_sequences_equally(monkeypatch):
    h, seq, adv, _ = _epilogue_inputs()
    monkeypatch.setenv("TOOLBOX_KERNELS", "reference")
    res = rejection_epilogue(h, seq, adv, (0.0, 10.0), aggregation="seq-mean")
    assert float(res.entropy) == pytest.approx(np.mean([0.3, 1.0, 0.4]), rel=1e-6)
    assert int(res.mode) == 0 and res.kept_per_group is None and res.accept.all()


# ---- Hugging Face adapters, with stand-ins for transformers' objects --------------------------------------------
class _FakeTokenizer:
    """A character tokenizer shaped like a transformers tokenizer (ids 0..2 special)."""

    def __init__(self, eos=2, pad=None, bos=1):
        self.eos_token_id, self.pad_token_id, self.bos_token_id = eos, pad, bos

    def __len__(self):
        return 29

    def encode(self, text, add_special_tokens=True):
        return [ord(c) - ord("a") + 3 for c in text]

    def decode(self, ids, skip_special_tokens=False):
        return "".join(chr(i - 3 + ord("a")) for i in ids if i >= 3)


def test_hf_tokenizer_adapter():
    tok = HFTokenizer(_FakeTokenizer(eos=2, pad=None, bos=1))
    assert (tok.eos_id, tok.pad_id, tok.bos_id, tok.vocab_size) == (2, 2, 1, 29)  # pad falls back to EOS
    assert tok.encode("abc") == [3, 4, 5] and tok.encode_prompt("abc") == [1, 3, 4, 5]
    assert tok.decode([1, 3, 4, 2, 2]) == "ab"  # pad / EOS dropped
    no_bos = HFTokenizer(_FakeTokenizer(eos=None, pad=7, bos=None))
    assert (no_bos.eos_id, no_bos.pad_id) == (0, 7) and no_bos.encode_prompt("b") == [4]


class _Out:
    def __init__(self, logits):
        self.logits = logits


class _LMWrapper(torch.nn.Module):
    """A causal LM with transformers' calling convention: model(input_ids=..., use_cache=False).logits."""

    def __init__(self, gpt):
        super().__init__()
        self.gpt = gpt

    def forward(self, input_ids, use_cache=True):
        assert use_cache is False
        return _Out(self.gpt(input_ids))


def test_uncached_sampling_equals_incremental_decoding():
    """HFPolicy has no forward_cached, so `sample` runs the full sequence each step: with the same generator it must
    draw exactly the tokens of the KV-cached TinyGPT path (the same logits up to float rounding)."""
    torch.manual_seed(0)
    gpt = TinyGPT(GPTConfig(vocab_size=12, max_len=16, d_model=32, n_layer=2, n_head=4)).eval()
    prompts = pad_prompts([[1, 5, 6], [1, 7]], 3, pad_id=0)
    assert prompts.tolist() == [[1, 5, 6], [0, 1, 7]]
    cached = sample(gpt, prompts, 8, eos_id=2, pad_id=0, top_p=0.9, generator=torch.Generator().manual_seed(3))
    full = sample(HFPolicy(_LMWrapper(gpt)), prompts, 8, eos_id=2, pad_id=0, top_p=0.9,
                  generator=torch.Generator().manual_seed(3))
    assert torch.equal(cached[0], full[0]) and torch.equal(cached[1], full[1])
    seq, mask = cached
    assert seq.shape[0] == 2 and torch.equal(seq[:, :3], prompts) and mask.shape == (2, seq.shape[1] - 3)
    with pytest.raises(ValueError, match="exceeds max_len"):
        gpt.forward_cached(torch.zeros(1, 17, dtype=torch.long))


def test_model_input_errors(tmp_path):
    with pytest.raises(UserInputError, match="longer than 2 tokens"):
        pad_prompts([[1, 2, 3]], 2, pad_id=0)
    with pytest.raises(UserInputError, match="temperature must be > 0"):
        sample(None, torch.zeros(1, 1, dtype=torch.long), 2, 2, 0, temperature=0.0)
    with pytest.raises(UserInputError, match="not a folder"):
        load_hf(tmp_path / "absent")
    try:
        import transformers  # noqa: F401
    except ImportError:
        with pytest.raises(UserInputError, match=r"pip install 'toolbox\[hf\]'"):
            load_hf(tmp_path)


def test_trl_hook_input_errors_and_lazy_attribute():
    batch = {"advantages": torch.zeros(2, 3), "completion_mask": torch.ones(2, 3)}
    with pytest.raises(UserInputError, match=r"one advantage per rollout \(shape \[B\]\), got shape \(2, 3\)"):
        trl_adapter.apply_entrocraft(batch, torch.ones(2, 3), (0.1, 0.2))
    batch["advantages"] = torch.tensor([0.5, -0.5])
    with pytest.raises(UserInputError, match="needs token_entropy or a precomputed entropy"):
        trl_adapter.apply_entrocraft(batch, None, (0.1, 0.2))
    out, entropy, res = trl_adapter.apply_entrocraft(batch, None, (0.1, 0.2), entropy=0.05)  # below the band: m = -1
    assert entropy == 0.05 and res.mode == -1 and out["advantages"].tolist() == [0.0, -0.5]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        trl_adapter.nope  # noqa: B018


def test_trainer_class_is_imported_lazily():
    """The module imports without trl; only looking up EntrocraftGRPOTrainer imports it (and fails without it)."""
    try:
        import trl  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="trl"):
            trl_adapter.EntrocraftGRPOTrainer  # noqa: B018
    else:
        from trl import GRPOTrainer

        assert issubclass(trl_adapter.EntrocraftGRPOTrainer, GRPOTrainer)
