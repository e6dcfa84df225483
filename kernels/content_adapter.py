"""The Content-Adapter (I2V-Adapter paper, sec. 3.2): IP-Adapter Plus with decoupled cross-attention.

A Resampler (diffusers' IPAdapterPlusImageProjection) turns the penultimate hidden states of a CLIP image encoder
into image tokens; beside every attn2, `to_k_ip` and `to_v_ip` project them, and the attention of the text
queries to them is added to the text attention before attn2's output projection:

    out = Attn(Q, K_text, V_text) + weight · Attn(Q, tokens W_k_ip, tokens W_v_ip)

The official release always runs it at weight 1, its unconditional side on the CLIP features of all-zero
(normalised) pixel values.
"""
from dataclasses import dataclass

import torch
from torch import nn

from .attention import Attention, sdpa_attention
from .module_tree import attach
from .unet_layout import UNetFamily, cross_attention_layers

DIM_HEAD = 64  # IP-Adapter Plus's Resampler heads are 64 wide (h94's files and diffusers agree)


@dataclass(frozen=True)
class ResamplerShape:
    image_features: int   # width of the CLIP hidden states it reads (1280 for ViT-H)
    hidden: int
    depth: int
    queries: int          # image tokens it makes (16)


class ImageKeyValue(nn.Module):
    """to_k_ip and to_v_ip beside one attn2 (no biases, as attn2's own to_k and to_v)."""

    def __init__(self, context_dim: int, dim: int, dtype=None, device=None):
        super().__init__()
        self.to_k_ip = nn.Linear(context_dim, dim, bias=False, dtype=dtype, device=device)
        self.to_v_ip = nn.Linear(context_dim, dim, bias=False, dtype=dtype, device=device)


class ContentAdapter(nn.Module):
    """The Resampler under `image_proj` and an ImageKeyValue at every attn2's diffusers path, so that the
    `…attn2.to_k_ip.weight` keys are the official bundle's."""

    def __init__(self, family: UNetFamily, shape: ResamplerShape, dtype=None, device=None):
        from diffusers.models.embeddings import IPAdapterPlusImageProjection  # here: diffusers imports slowly

        super().__init__()
        self.family, self.shape = family, shape
        self.image_proj = IPAdapterPlusImageProjection(
            embed_dims=shape.image_features, output_dims=family.context_dim, hidden_dims=shape.hidden,
            depth=shape.depth, dim_head=DIM_HEAD, heads=shape.hidden // DIM_HEAD, num_queries=shape.queries
        ).to(dtype=dtype, device=device)
        self.layer_paths = []
        for path, dim in cross_attention_layers(family):
            attach(self, path, ImageKeyValue(family.context_dim, dim, dtype, device))
            self.layer_paths.append(path)

    def image_tokens(self, features: torch.Tensor) -> torch.Tensor:
        """[images, CLIP tokens, width] penultimate CLIP hidden states -> [images, queries, context_dim]."""
        if features.shape[-1] != self.shape.image_features:
            raise ValueError(f"the image encoder gives features {features.shape[-1]} wide but this Content-Adapter "
                             f"reads {self.shape.image_features}")
        return self.image_proj(features.to(self.image_proj.latents))

    def keys_values(self, tokens: torch.Tensor) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        """(attn2 path, K_ip, V_ip) of every layer for `tokens` [images, queries, context_dim]."""
        out = []
        for path in self.layer_paths:
            layer = self.get_submodule(path)
            out.append((path, layer.to_k_ip(tokens), layer.to_v_ip(tokens)))
        return out


def image_attention(q: torch.Tensor, k_ip: torch.Tensor, v_ip: torch.Tensor, heads: int,
                    attention: Attention = sdpa_attention) -> torch.Tensor:
    """Attn(Q, K_ip, V_ip) for a batch of videos laid out one after another.

    q: [videos*frames, N, C] attn2 queries. k_ip, v_ip: [videos, T, C], the image tokens' keys and values of each
    video (every frame of a video attends to the same tokens, so the frames are folded into the query axis).
    """
    videos = k_ip.shape[0]
    if q.shape[0] % videos:
        raise ValueError(f"a batch of {q.shape[0]} frames cannot be split into {videos} videos")
    folded = q.reshape(videos, -1, q.shape[2])
    return attention(folded, k_ip, v_ip, heads).reshape(q.shape)
