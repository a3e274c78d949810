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
        self.n_head = cfg.n_head
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, 4 * cfg.d_model), nn.GELU(), nn.Linear(4 * cfg.d_model, cfg.d_model))

    def forward(self, x, cache=None):
        """x [B, L, D]; cache = (k, v) of the earlier positions or None. Returns (x, (k, v))."""
        b, length, d = x.shape
        q, k, v = (t.view(b, length, self.n_head, d // self.n_head).transpose(1, 2)
                   for t in self.qkv(self.ln1(x)).split(d, dim=2))
        if cache is not None:
            k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
        att = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=cache is None)
        x = x + self.proj(att.transpose(1, 2).reshape(b, length, d))
        return x + self.mlp(self.ln2(x)), (k, v)


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
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layer))

    def forward_cached(self, ids: torch.Tensor, cache=None):
        """Logits of ids [B, L] that follow the cached positions; returns (logits, cache) for incremental decoding."""
        start = 0 if cache is None else cache[0][0].shape[2]
        if start + ids.shape[1] > self.cfg.max_len:
            raise ValueError(f"sequence length {start + ids.shape[1]} exceeds max_len {self.cfg.max_len}")
        x = self.tok(ids) + self.pos(torch.arange(start, start + ids.shape[1], device=ids.device))
        new_cache = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, None if cache is None else cache[i])
            new_cache.append(kv)
        return self.head(self.ln_f(x)), new_cache

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.forward_cached(ids)[0]


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
    cached = hasattr(policy, "forward_cached")
    cache, step_ids = None, prompt_ids
    for _ in range(max_new):
        if cached:  # incremental decoding: only the new token goes through the model
            out, cache = policy.forward_cached(step_ids, cache)
        else:
            out = policy(seq)
        logits = out[:, -1].float() / temperature
        probs = torch.softmax(logits, dim=-1)
        if top_p < 1.0:
            sorted_p, order = probs.sort(dim=-1, descending=True)
            keep = sorted_p.cumsum(-1) - sorted_p < top_p  # the smallest prefix with mass >= top_p
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_p * keep)
        u = torch.rand(probs.shape[0], 1, generator=generator).to(probs.device)  # inverse-CDF draw (CPU bits)
        nxt = (probs.cumsum(-1) / probs.sum(-1, keepdim=True) < u).sum(-1).clamp_max(probs.shape[-1] - 1)
        nxt = torch.where(done, torch.full_like(nxt, pad_id), nxt)
        mask.append(~done)
        done = done | (nxt == eos_id)
        seq = torch.cat([seq, nxt[:, None]], dim=1)
        step_ids = nxt[:, None]
        if bool(done.all()):
            break
    return seq, torch.stack(mask, dim=1)
