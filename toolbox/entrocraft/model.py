"""Policies for `train-rl`: a small causal GPT trained from scratch, or a Hugging Face causal LM from a local folder.

Both expose the same surface: `policy(ids [B, L]) -> logits [B, L, V]` and a tokenizer with encode / decode /
pad_id / eos_id / vocab_size. Prompts are left-padded to the task's prompt length so every batch is a rectangle.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from toolbox.core.errors import UserInputError


class CharTokenizer:
    """Characters of the task's alphabet plus PAD (0), BOS (1) and EOS (2)."""

    pad_id, bos_id, eos_id = 0, 1, 2

    def __init__(self, alphabet: str):
        self.alphabet = alphabet
        self._ids = {c: i + 3 for i, c in enumerate(alphabet)}

    @property
    def vocab_size(self) -> int:
        return len(self.alphabet) + 3

    def encode(self, text: str) -> list[int]:
        try:
            return [self._ids[c] for c in text]
        except KeyError as exc:
            raise UserInputError(f"character {exc.args[0]!r} is not in the task alphabet") from None

    def encode_prompt(self, text: str) -> list[int]:
        return [self.bos_id, *self.encode(text)]

    def decode(self, ids) -> str:
        return "".join(self.alphabet[i - 3] for i in ids if i >= 3)


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int
    max_len: int
    d_model: int = 64
    n_layer: int = 2
    n_head: int = 4


class _Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.attn = nn.MultiheadAttention(cfg.d_model, cfg.n_head, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, 4 * cfg.d_model), nn.GELU(), nn.Linear(4 * cfg.d_model, cfg.d_model))

    def forward(self, x, causal_mask):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=causal_mask, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    """A pre-LayerNorm causal transformer with learned positions (about 100K parameters at the defaults)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.max_len, cfg.d_model)
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.normal_(p, std=0.02)
        for name, p in self.named_parameters():
            if name.endswith("out_proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layer))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        length = ids.shape[1]
        if length > self.cfg.max_len:
            raise ValueError(f"sequence length {length} exceeds max_len {self.cfg.max_len}")
        x = self.tok(ids) + self.pos(torch.arange(length, device=ids.device))
        mask = torch.triu(torch.full((length, length), float("-inf"), device=ids.device), diagonal=1)
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.ln_f(x))


class HFTokenizer:
    """Adapter over a Hugging Face tokenizer (no special tokens inside prompts; EOS ends an answer)."""

    def __init__(self, tok):
        self.tok = tok
        self.eos_id = tok.eos_token_id if tok.eos_token_id is not None else 0
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else self.eos_id
        self.bos_id = tok.bos_token_id

    @property
    def vocab_size(self) -> int:
        return len(self.tok)

    def encode(self, text: str) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=False))

    def encode_prompt(self, text: str) -> list[int]:
        return ([self.bos_id] if self.bos_id is not None else []) + self.encode(text)

    def decode(self, ids) -> str:
        return self.tok.decode([i for i in ids if i not in (self.pad_id, self.eos_id)], skip_special_tokens=True)


class HFPolicy(nn.Module):
    """logits of a Hugging Face causal LM (plain forward, no cache)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids, use_cache=False).logits


def load_hf(path: str | Path):
    """(policy, tokenizer) from a local folder; nothing is downloaded."""
    path = Path(path)
    if not path.is_dir():
        raise UserInputError(f"--model {path}: not a folder with a Hugging Face model")
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise UserInputError("--model needs the optional dependency: pip install 'toolbox[hf]'") from None
    try:
        tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, torch_dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise UserInputError(f"--model {path}: cannot load ({str(exc).splitlines()[0]})") from None
    return HFPolicy(model), HFTokenizer(tok)


def pad_prompts(prompts: list[list[int]], length: int, pad_id: int) -> torch.Tensor:
    """Left-pad token lists to one length -> LongTensor [B, length]."""
    if any(len(p) > length for p in prompts):
        raise UserInputError(f"a prompt is longer than {length} tokens")
    return torch.tensor([[pad_id] * (length - len(p)) + p for p in prompts], dtype=torch.long)


@torch.no_grad()
def sample(policy, prompt_ids: torch.Tensor, max_new: int, eos_id: int, pad_id: int, temperature: float = 1.0,
           top_p: float = 1.0, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Autoregressive sampling with temperature / nucleus (top-p). Returns (sequences [B, P + R], response_mask [B, R]):
    the mask covers the answer tokens up to and including EOS; after EOS the sequence is padded."""
    if temperature <= 0 or not 0 < top_p <= 1:
        raise UserInputError(f"temperature must be > 0 and top_p in (0, 1], got {temperature}, {top_p}")
    seq = prompt_ids
    done = torch.zeros(prompt_ids.shape[0], dtype=torch.bool, device=prompt_ids.device)
    mask = []
    for _ in range(max_new):
        logits = policy(seq)[:, -1].float() / temperature
        probs = torch.softmax(logits, dim=-1)
        if top_p < 1.0:
            sorted_p, order = probs.sort(dim=-1, descending=True)
            keep = sorted_p.cumsum(-1) - sorted_p < top_p  # the smallest prefix with mass >= top_p
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_p * keep)
        u = torch.rand(probs.shape[0], 1, generator=generator, device=probs.device)  # inverse-CDF draw
        nxt = (probs.cumsum(-1) / probs.sum(-1, keepdim=True) < u).sum(-1).clamp_max(probs.shape[-1] - 1)
        nxt = torch.where(done, torch.full_like(nxt, pad_id), nxt)
        mask.append(~done)
        done = done | (nxt == eos_id)
        seq = torch.cat([seq, nxt[:, None]], dim=1)
        if bool(done.all()):
            break
    return seq, torch.stack(mask, dim=1)
