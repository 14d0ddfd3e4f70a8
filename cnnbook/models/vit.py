"""Vision Transformer (Dosovitskiy et al., 2020, "An image is worth 16x16 words").

A Transformer encoder (Vaswani et al., 2017) applied to an image cut into patches. No
convolution hierarchy, no pooling, no locality built in: the network is told only that the
input is a sequence of tokens, and learns which tokens to look at. Built from named parts a
learner can read, in the order the data flows through them:

* ``PatchEmbedding``: cut the image into ``p x p`` patches and map each (flattened) patch
  linearly to a ``dim``-vector. That is exactly a ``p x p`` convolution with stride ``p``
  (``patchify`` + ``nn.Linear`` gives the same numbers, see the tests).
* a learned **class token** prepended to the sequence, whose final state is classified;
* learned **position embeddings** added to every token (attention itself ignores order);
* ``MultiHeadSelfAttention``: queries, keys and values from one linear layer, scaled
  dot-product attention ``softmax(q k^T / sqrt(d)) v`` in each of ``heads`` subspaces,
  heads concatenated and projected. It returns the attention weights as well (for maps and
  rollout); it equals ``nn.MultiheadAttention`` with the same weights;
* ``EncoderBlock``: pre-norm residual blocks, ``x + attn(LN(x))`` then ``x + MLP(LN(x))``,
  the MLP ``dim -> mlp_dim -> dim`` with GELU;
* ``VisionTransformer``: the whole network, read from ``VIT_CONFIGS``.

With the ``vit_b_16`` settings it has torchvision's 86,567,656 parameters, and
``from_torchvision_state_dict`` renames torchvision's weights into ours (same outputs).
"""
from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["patchify", "PatchEmbedding", "scaled_dot_product_attention",
           "MultiHeadSelfAttention", "MLP", "EncoderBlock", "VisionTransformer", "VIT_CONFIGS",
           "vit", "vit_tiny", "vit_b_16", "from_torchvision_state_dict"]


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, C*p*p): the non-overlapping ``p x p`` patches, row by row,
    each flattened in the order (channel, row, column) that a conv kernel uses."""
    b, c, h, w = images.shape
    p = patch_size
    if h % p or w % p:
        raise ValueError(f"a {h}x{w} image cannot be cut into {p}x{p} patches: "
                         f"the sides must be multiples of {p}")
    x = images.reshape(b, c, h // p, p, w // p, p)          # split rows and columns
    x = x.permute(0, 2, 4, 1, 3, 5)                          # (B, H/p, W/p, C, p, p)
    return x.reshape(b, (h // p) * (w // p), c * p * p)


class PatchEmbedding(nn.Module):
    """Image -> sequence of patch tokens: a ``p x p`` conv with stride ``p``, then flatten.

    Each output position of the strided conv sees exactly one patch, and its kernel is a
    linear map of the flattened patch: the conv *is* "flatten the patches, apply one
    ``nn.Linear``", computed faster. Output (B, N, dim) with N = (H/p)(W/p).
    """

    def __init__(self, in_channels: int = 3, dim: int = 768, patch_size: int = 16):
        super().__init__()
        if patch_size < 1:
            raise ValueError(f"patch_size must be at least 1, got {patch_size}")
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        if x.shape[-2] % p or x.shape[-1] % p:
            raise ValueError(f"image size {tuple(x.shape[-2:])} is not a multiple of the "
                             f"patch size {p}")
        return self.proj(x).flatten(2).transpose(1, 2)     # (B, dim, h, w) -> (B, h*w, dim)

    def as_linear(self) -> nn.Linear:
        """The same map as an ``nn.Linear`` on ``patchify``'s flattened patches."""
        w = self.proj.weight
        lin = nn.Linear(w[0].numel(), w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(w.reshape(w.shape[0], -1))
            lin.bias.copy_(self.proj.bias)
        return lin


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 dropout: float = 0.0, training: bool = False):
    """``softmax(q k^T / sqrt(d)) v`` written out; returns (output, attention weights).

    ``q, k, v``: (..., N, d). Dividing by ``sqrt(d)`` keeps the dot products of random
    d-vectors at unit scale, so the softmax does not saturate as d grows.
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])   # (..., N, N)
    weights = scores.softmax(dim=-1)                             # each row sums to 1
    attended = F.dropout(weights, dropout, training) if dropout else weights
    return attended @ v, weights


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention, written out.

    One linear layer gives queries, keys and values (``qkv``, rows in that order, as
    ``nn.MultiheadAttention``'s ``in_proj_weight``); each is split into ``heads`` slices of
    ``dim / heads``; every head attends on its own; the heads are concatenated and mixed by
    ``proj``. ``forward`` returns ``(output, weights)``, the weights (B, heads, N, N). With
    ``need_weights=False`` it calls PyTorch's fused kernel instead (same result, faster,
    no weights), unless ``fused`` is False (``torch.utils.flop_counter`` does not count the
    fused kernel on a CPU, so FLOP counts need ``fused=False``).
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        self.dim, self.heads, self.dropout = dim, heads, dropout
        self.fused = True
        self.qkv = nn.Linear(dim, 3 * dim, bias=bias)
        self.proj = nn.Linear(dim, dim, bias=bias)

    def forward(self, x: torch.Tensor, need_weights: bool = True):
        b, n, d = x.shape
        # (B, N, 3*dim) -> (3, B, heads, N, dim/heads)
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        p = self.dropout if self.training else 0.0
        if need_weights or not self.fused:
            out, weights = scaled_dot_product_attention(q, k, v, p, self.training)
            weights = weights if need_weights else None
        else:
            out, weights = F.scaled_dot_product_attention(q, k, v, dropout_p=p), None
        out = out.transpose(1, 2).reshape(b, n, d)                # concatenate the heads
        return self.proj(out), weights


class MLP(nn.Sequential):
    """The Transformer's feed-forward part: Linear(dim, mlp_dim), GELU, Linear back."""

    def __init__(self, dim: int, mlp_dim: int, dropout: float = 0.0):
        super().__init__(OrderedDict(fc1=nn.Linear(dim, mlp_dim), act=nn.GELU(),
                                     drop1=nn.Dropout(dropout), fc2=nn.Linear(mlp_dim, dim),
                                     drop2=nn.Dropout(dropout)))


class EncoderBlock(nn.Module):
    """Pre-norm Transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``.

    Normalising *before* each sublayer (not after, as the 2017 Transformer did) keeps an
    untouched identity path through the whole network, as in a pre-activation ResNet.
    """

    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float = 0.0,
                 attention_dropout: float = 0.0, eps: float = 1e-6):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = MultiHeadSelfAttention(dim, heads, attention_dropout)
        self.drop = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = MLP(dim, mlp_dim, dropout)

    def forward(self, x: torch.Tensor, need_weights: bool = False):
        a, weights = self.attn(self.norm1(x), need_weights)
        x = x + self.drop(a)
        x = x + self.mlp(self.norm2(x))
        return x, weights


# name -> settings: ViT-B/16, B/32, L/16 from Table 1 of Dosovitskiy et al. (2020); the tiny
# CIFAR model is ours (32 px, 4x4 patches: 64 tokens + the class token; smaller than DeiT's
# "ViT-Ti", which has dim 192 and 12 blocks, so that it trains on a CPU).
VIT_CONFIGS = {
    "vit_tiny": dict(image_size=32, patch_size=4, dim=128, depth=6, heads=4, mlp_dim=256),
    "vit_b_16": dict(image_size=224, patch_size=16, dim=768, depth=12, heads=12, mlp_dim=3072),
    "vit_b_32": dict(image_size=224, patch_size=32, dim=768, depth=12, heads=12, mlp_dim=3072),
    "vit_l_16": dict(image_size=224, patch_size=16, dim=1024, depth=24, heads=16, mlp_dim=4096),
}


class VisionTransformer(nn.Module):
    """patches -> [class token; tokens] + positions -> ``depth`` encoder blocks -> LayerNorm
    -> the class token's state -> linear classifier.

    ``forward(x, return_attention=True)`` also returns each block's attention weights,
    a list of (B, heads, N+1, N+1) tensors (token 0 is the class token).
    """

    def __init__(self, image_size: int = 224, patch_size: int = 16, dim: int = 768,
                 depth: int = 12, heads: int = 12, mlp_dim: int = 3072, num_classes: int = 1000,
                 in_channels: int = 3, dropout: float = 0.0, attention_dropout: float = 0.0):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} must be a multiple of patch_size {patch_size}")
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self.image_size, self.patch_size = image_size, patch_size
        self.num_patches = (image_size // patch_size) ** 2
        self.patch_embed = PatchEmbedding(in_channels, dim, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.empty(1, self.num_patches + 1, dim))
        self.pos_drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(EncoderBlock(dim, heads, mlp_dim, dropout, attention_dropout)
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """Small truncated-normal weights (std 0.02) for linear layers and positions, as the
        reference code; the class token and the classifier start at zero."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        fan_in = self.patch_embed.proj.weight[0].numel()
        nn.init.trunc_normal_(self.patch_embed.proj.weight, std=math.sqrt(1 / fan_in))
        nn.init.zeros_(self.patch_embed.proj.bias)
        for m in self.blocks.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's input: class token + patch tokens, plus position embeddings."""
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise ValueError(f"this ViT takes {self.image_size}x{self.image_size} images (its "
                             f"position embeddings are learned per patch), got "
                             f"{x.shape[-2]}x{x.shape[-1]}")
        t = self.patch_embed(x)
        cls = self.cls_token.expand(t.shape[0], -1, -1)
        return self.pos_drop(torch.cat([cls, t], dim=1) + self.pos_embed)

    def set_fused_attention(self, fused: bool) -> "VisionTransformer":
        """Use PyTorch's fused attention kernel when no weights are asked for (the default),
        or always the written-out attention (``False``: for FLOP counters)."""
        for block in self.blocks:
            block.attn.fused = bool(fused)
        return self

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        t = self.tokens(x)
        maps = []
        for block in self.blocks:
            t, w = block(t, need_weights=return_attention)
            maps.append(w)
        logits = self.head(self.norm(t)[:, 0])
        return (logits, maps) if return_attention else logits


def vit(name: str = "vit_b_16", **kwargs) -> VisionTransformer:
    """A ViT from ``VIT_CONFIGS`` (keyword arguments override the table or go to the class)."""
    if name not in VIT_CONFIGS:
        raise ValueError(f"no ViT {name!r}: choose from {sorted(VIT_CONFIGS)}")
    return VisionTransformer(**{**VIT_CONFIGS[name], **kwargs})


def vit_tiny(num_classes: int = 10, **kwargs) -> VisionTransformer:
    """A small ViT for 32 px CIFAR images: 4x4 patches (64 tokens), dim 128, 6 blocks, 4 heads,
    MLP 256; 0.81 M parameters, about as costly per image as ResNet-20 on a CPU."""
    return vit("vit_tiny", num_classes=num_classes, **kwargs)


def vit_b_16(**kwargs) -> VisionTransformer:
    """ViT-B/16 at 224 px: 12 blocks, dim 768, 12 heads, MLP 3072; 86,567,656 parameters."""
    return vit("vit_b_16", **kwargs)


def from_torchvision_state_dict(state: dict) -> dict:
    """Rename the keys of a torchvision ``VisionTransformer`` state dict to ours.

    The tensors are the same; only the names differ (torchvision's attention is an
    ``nn.MultiheadAttention``, whose ``in_proj`` rows are q, k, v in the order of our ``qkv``).
    """
    fixed = {"class_token": "cls_token", "conv_proj.weight": "patch_embed.proj.weight",
             "conv_proj.bias": "patch_embed.proj.bias", "encoder.pos_embedding": "pos_embed",
             "encoder.ln.weight": "norm.weight", "encoder.ln.bias": "norm.bias",
             "heads.head.weight": "head.weight", "heads.head.bias": "head.bias"}
    inside = {"ln_1": "norm1", "ln_2": "norm2", "self_attention.in_proj_weight": "attn.qkv.weight",
              "self_attention.in_proj_bias": "attn.qkv.bias",
              "self_attention.out_proj.weight": "attn.proj.weight",
              "self_attention.out_proj.bias": "attn.proj.bias",
              "mlp.0": "mlp.fc1", "mlp.3": "mlp.fc2"}
    out = {}
    for key, value in state.items():
        if key in fixed:
            out[fixed[key]] = value
            continue
        prefix = "encoder.layers.encoder_layer_"
        if not key.startswith(prefix):
            raise KeyError(f"unexpected key in a torchvision ViT state dict: {key!r}")
        index, rest = key[len(prefix):].split(".", 1)
        for theirs, ours in inside.items():
            if rest.startswith(theirs):
                rest = ours + rest[len(theirs):]
                break
        else:
            raise KeyError(f"unexpected key in a torchvision ViT state dict: {key!r}")
        out[f"blocks.{index}.{rest}"] = value
    return out
