"""The two small models of the CPU experiment (note Sec. 8), with the official noise sites as module boundaries.

cnn: conv3x3(C->16) ReLU conv3x3(16->W) ReLU maxpool2 -> `depth` residual blocks (the noise site is a block's
     input, as the official ResNet code) -> global average pool -> linear head. 1-D inputs use Conv1d.
vit: patch embedding + CLS + learned positions -> `depth` pre-norm blocks x + attn(norm1(x)), x + mlp(norm2(x))
     (the noise site is attn's input, i.e. after norm1, as the official ViT) -> norm -> CLS -> linear head.
Attribute names follow timm (blocks[i].attn, num_prefix_tokens, head), so `noise.noise_site` serves both.
No batch normalisation: without a noise, a sample's prediction never depends on its batch.
"""
from __future__ import annotations

import torch
from torch import nn

from toolbox.core.errors import UserInputError

MODELS = ("cnn", "vit")
DEFAULT_DEPTH = {"cnn": 2, "vit": 4}
HEAD = "head"  # the noise site after the last block, before the classifier


def block_index(model: str, depth: int, layer: int | str) -> int:
    """The block index of a noise site: an index, or HEAD (= the model's depth; 0 means the default depth)."""
    return (depth or DEFAULT_DEPTH.get(model, 0)) if layer == HEAD else int(layer)


class ResidualBlock(nn.Module):
    def __init__(self, width: int, conv):
        super().__init__()
        self.conv1 = conv(width, width, 3, padding=1)
        self.conv2 = conv(width, width, 3, padding=1)

    def forward(self, x):
        return torch.relu(x + self.conv2(torch.relu(self.conv1(x))))


class SmallCNN(nn.Module):
    def __init__(self, in_channels: int, classes: int, spatial_dims: int = 2, width: int = 32, depth: int = 2):
        super().__init__()
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv1d
        pool = nn.MaxPool2d if spatial_dims == 2 else nn.MaxPool1d
        self.stem = nn.Sequential(conv(in_channels, 16, 3, padding=1), nn.ReLU(), conv(16, width, 3, padding=1),
                                  nn.ReLU(), pool(2))
        self.blocks = nn.ModuleList(ResidualBlock(width, conv) for _ in range(depth))
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x.flatten(2).mean(-1))


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int = 2):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class SmallViT(nn.Module):
    num_prefix_tokens = 1

    def __init__(self, in_channels: int, classes: int, input_size: tuple[int, ...], patch: int, dim: int = 64,
                 depth: int = 4, heads: int = 4):
        super().__init__()
        if any(s % patch for s in input_size):
            raise UserInputError(f"input size {input_size} is not divisible by the patch size {patch}")
        conv = nn.Conv2d if len(input_size) == 2 else nn.Conv1d
        tokens = 1
        for s in input_size:
            tokens *= s // patch
        self.patch_embed = conv(in_channels, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(0.02 * torch.randn(1, tokens + 1, dim))
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])


def build_model(name: str, input_shape: tuple[int, ...], classes: int, depth: int | None = None) -> nn.Module:
    """`cnn` or `vit` for inputs [C, *spatial] (1-D or 2-D); depth None takes the default (2 for cnn, 4 for vit)."""
    channels, spatial = input_shape[0], tuple(input_shape[1:])
    if len(spatial) not in (1, 2):
        raise UserInputError(f"inputs must be [C, L] or [C, H, W], got shape {input_shape}")
    if name == "cnn":
        return SmallCNN(channels, classes, len(spatial), depth=depth or DEFAULT_DEPTH[name])
    if name == "vit":
        patch = 2 if max(spatial) <= 16 else 4
        return SmallViT(channels, classes, spatial, patch, depth=depth or DEFAULT_DEPTH[name])
    raise UserInputError(f"model must be one of {', '.join(MODELS)}, got {name!r}")
