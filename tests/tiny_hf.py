"""A tiny randomly initialised GPT-2 and a character tokenizer saved to a local folder (nothing is downloaded)."""
import pytest
import torch


def save_tiny_gpt2(path, alphabet: str, n_embd: int = 32, **config) -> None:
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, **{c: i + 3 for i, c in enumerate(alphabet)}}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Split(tokenizers.Regex("."), "isolated")
    tok.decoder = tokenizers.decoders.Fuse()
    hf_tok = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>",
                                                  bos_token="<bos>")
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=len(vocab), n_positions=32, n_embd=n_embd, n_layer=1, n_head=2, **config)
    transformers.GPT2LMHeadModel(cfg).save_pretrained(path)
    hf_tok.save_pretrained(path)
