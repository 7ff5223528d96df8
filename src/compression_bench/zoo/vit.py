"""ViTTiny: a small vision transformer for 1x28x28 images (opt-in, see :mod:`.models`).

A convolutional stem in place of the usual patchifying convolution (two 3x3 convolutions of
stride 2, the first with BatchNorm and GELU: a 28x28 image becomes 7x7 = 49 tokens, as 4x4 patches
would give), learned position embeddings, four pre-norm encoder blocks (multi-head self-attention,
MLP with GELU) and mean pooling into a linear head; 0.16 M parameters. The stem is what makes a
transformer this small learn from 10,000 images (Xiao et al., 2021, "Early Convolutions Help
Transformers See Better"): with the same recipe, 85.65% on the default profile's validation split
against 82.2% with a 4x4 patch convolution (2026-12-06).

Written so that every tool of the suite can trace it:

* every projection is an explicit ``nn.Linear`` (one fused ``qkv``, one ``proj`` per attention, ``fc1``
  and ``fc2`` per MLP), which dynamic and static INT8 quantize and Torch-Pruning's dependency graph
  sees; no ``nn.MultiheadAttention`` and no ``scaled_dot_product_attention``;
* no data-dependent control flow and no shapes read from the input: the head split is
  ``unflatten(-1, (3, num_heads, head_dim))`` on module attributes, so ``torch.fx.symbolic_trace``
  (FX INT8), ``torch.export``, ONNX export and OpenVINO trace one graph;
* every attention module declares its heads (``num_heads``, ``head_dim``, its ``qkv`` Linear): structured
  pruning removes whole heads and updates ``num_heads``
  (:func:`compression_bench.compression.pruning.attention_modules`).
"""
from __future__ import annotations

import torch
import torch.nn as nn


class Attention(nn.Module):
    """Multi-head self-attention over (batch, tokens, dim). Pruning removes whole heads: ``num_heads``
    changes, ``head_dim`` does not."""

    def __init__(self, dim: int, num_heads: int, head_dim: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.scale = head_dim ** -0.5
        self.qkv = nn.Linear(dim, 3 * num_heads * head_dim)
        self.proj = nn.Linear(num_heads * head_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, N, 3 * H * d) -> (3, B, H, N, d)
        qkv = self.qkv(x).unflatten(-1, (3, self.num_heads, self.head_dim)).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).flatten(2))  # heads joined again: (B, N, H * d)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm encoder block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, num_heads: int, head_dim: int, mlp_hidden: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads, head_dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def conv_stem(in_chans: int, dim: int, stem_width: int) -> nn.Sequential:
    """Two 3x3 convolutions of stride 2 (``in_chans`` -> ``stem_width`` with BatchNorm and GELU, then ->
    ``dim``): each token sees a 7x7 neighbourhood of pixels, overlapping its neighbours'."""
    return nn.Sequential(nn.Conv2d(in_chans, stem_width, 3, stride=2, padding=1, bias=False),
                         nn.BatchNorm2d(stem_width), nn.GELU(),
                         nn.Conv2d(stem_width, dim, 3, stride=2, padding=1))


class ViT(nn.Module):
    """Patch embedding (a 4x4 patch convolution, or with ``stem_width`` a :func:`conv_stem` of the same
    stride 4), position embedding, ``depth`` blocks, final LayerNorm, mean over the tokens, linear head."""

    def __init__(self, image_size: int = 28, patch: int = 4, in_chans: int = 1, num_classes: int = 10,
                 dim: int = 64, depth: int = 4, num_heads: int = 4, mlp_hidden: int = 128,
                 stem_width: int | None = None):
        super().__init__()
        if image_size % patch:
            raise ValueError(f"image size {image_size} is not a multiple of the patch size {patch}")
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not a multiple of num_heads {num_heads}")
        if stem_width is not None and patch != 4:
            raise ValueError(f"the convolutional stem has stride 4; patch={patch}")
        tokens = (image_size // patch) ** 2
        self.patch_embed = (nn.Conv2d(in_chans, dim, patch, stride=patch) if stem_width is None
                            else conv_stem(in_chans, dim, stem_width))
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, dim))
        self.blocks = nn.Sequential(*[Block(dim, num_heads, dim // num_heads, mlp_hidden) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed  # (B, tokens, dim)
        x = self.norm(self.blocks(x))
        return self.head(x.mean(dim=1))


def vit_tiny() -> nn.Module:
    """ViTTiny: a 1x28x28 image through a convolutional stem (width 32) into 49 tokens of 64, 4 blocks
    of 4 heads of 16, MLP 128."""
    return ViT(image_size=28, patch=4, in_chans=1, num_classes=10, dim=64, depth=4, num_heads=4, mlp_hidden=128,
               stem_width=32)


def block_widths(model: nn.Module) -> list[dict[str, int]]:
    """Per encoder block of a :class:`ViT`: its heads, head size, MLP width and embedding width (what
    structured pruning keeps)."""
    return [dict(heads=b.attn.num_heads, head_dim=b.attn.head_dim, mlp=b.mlp.fc1.out_features,
                 dim=b.norm1.normalized_shape[0]) for b in model.blocks]
