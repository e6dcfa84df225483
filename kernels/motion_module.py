"""AnimateDiff motion modules (v1, v2, v3, SDXL beta) in the original release's module layout.

Each module is a temporal transformer at one point of the UNet: the tokens at one pixel across the frames of
a video attend to each other, with a sinusoidal position encoding over frames. Its output is added to its
input, scaled by the motion scale (1 = as trained, 0 = no temporal effect).
"""
import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .attention import Attention, sdpa_attention
from .module_tree import attach
from .unet_layout import UNetFamily, motion_module_sites

HEADS = 8


def sinusoidal_encoding(frames: int, channels: int) -> torch.Tensor:
    """[1, frames, channels], the encoding AnimateDiff stores in every `pos_encoder.pe`."""
    position = torch.arange(frames).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, channels, 2) * (-math.log(10000.0) / channels))
    pe = torch.zeros(1, frames, channels)
    pe[0, :, 0::2] = torch.sin(position * div_term)
    pe[0, :, 1::2] = torch.cos(position * div_term)
    return pe


class PositionalEncoding(nn.Module):
    def __init__(self, channels: int, max_frames: int):
        super().__init__()
        self.register_buffer("pe", sinusoidal_encoding(max_frames, channels))


class GEGLU(nn.Module):
    def __init__(self, dim_in: int, dim_out: int, operations, dtype, device):
        super().__init__()
        self.proj = operations.Linear(dim_in, dim_out * 2, dtype=dtype, device=device)

    def forward(self, x):
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim: int, operations, dtype, device):
        super().__init__()
        self.net = nn.ModuleList([GEGLU(dim, dim * 4, operations, dtype, device), nn.Identity(),
                                  operations.Linear(dim * 4, dim, dtype=dtype, device=device)])

    def forward(self, x):
        for layer in self.net:
            x = layer(x)
        return x


class TemporalSelfAttention(nn.Module):
    def __init__(self, dim: int, max_frames: int, operations, dtype, device):
        super().__init__()
        linear = lambda bias: operations.Linear(dim, dim, bias=bias, dtype=dtype, device=device)
        self.to_q, self.to_k, self.to_v = linear(False), linear(False), linear(False)
        self.to_out = nn.ModuleList([linear(True)])
        self.pos_encoder = PositionalEncoding(dim, max_frames)

    def forward(self, x: torch.Tensor, attention: Attention) -> torch.Tensor:
        """x: [sequences, frames, dim]."""
        x = x + self.pos_encoder.pe[:, :x.shape[1]].to(x)
        return self.to_out[0](attention(self.to_q(x), self.to_k(x), self.to_v(x), HEADS))


class TemporalTransformerBlock(nn.Module):
    def __init__(self, dim: int, max_frames: int, operations, dtype, device):
        super().__init__()
        self.attention_blocks = nn.ModuleList(
            [TemporalSelfAttention(dim, max_frames, operations, dtype, device) for _ in range(2)])
        self.norms = nn.ModuleList([operations.LayerNorm(dim, dtype=dtype, device=device) for _ in range(2)])
        self.ff = FeedForward(dim, operations, dtype, device)
        self.ff_norm = operations.LayerNorm(dim, dtype=dtype, device=device)

    def forward(self, x, attention):
        for attend, norm in zip(self.attention_blocks, self.norms):
            x = attend(norm(x), attention) + x
        return self.ff(self.ff_norm(x)) + x


class TemporalTransformer(nn.Module):
    def __init__(self, channels: int, max_frames: int, blocks: int, operations, dtype, device):
        super().__init__()
        self.norm = operations.GroupNorm(32, channels, eps=1e-6, dtype=dtype, device=device)
        self.proj_in = operations.Linear(channels, channels, dtype=dtype, device=device)
        self.transformer_blocks = nn.ModuleList(
            [TemporalTransformerBlock(channels, max_frames, operations, dtype, device) for _ in range(blocks)])
        self.proj_out = operations.Linear(channels, channels, dtype=dtype, device=device)


class MotionModule(nn.Module):
    """One AnimateDiff VanillaTemporalModule."""

    def __init__(self, channels: int, max_frames: int, blocks: int = 1, operations=nn, dtype=None, device=None):
        super().__init__()
        self.max_frames = max_frames
        self.temporal_transformer = TemporalTransformer(channels, max_frames, blocks, operations, dtype, device)

    def forward(self, x: torch.Tensor, frames: int, scale: float = 1.0,
                attention: Attention = sdpa_attention) -> torch.Tensor:
        """x: [videos*frames, C, H, W], videos one after another."""
        if frames > self.max_frames:
            raise ValueError(f"this motion module handles at most {self.max_frames} frames at once (its position "
                             f"encoding's length) but got {frames}; use fewer frames or context windows")
        tt = self.temporal_transformer
        # proj_in and proj_out act per token, so one rearrange each way (frames next to each other per pixel).
        y = tt.proj_in(rearrange(tt.norm(x), "(v f) c h w -> (v h w) f c", f=frames))
        for block in tt.transformer_blocks:
            y = block(y, attention)
        delta = rearrange(tt.proj_out(y), "(v h w) f c -> (v f) c h w", h=x.shape[2], w=x.shape[3])
        return x + delta if scale == 1.0 else torch.add(x, delta, alpha=scale)


class MotionModules(nn.Module):
    """Every motion module of a UNet family, keyed as in the original AnimateDiff checkpoints."""

    def __init__(self, family: UNetFamily, max_frames: int, mid_block: bool, blocks: int = 1, operations=nn,
                 dtype=None, device=None):
        super().__init__()
        self.family, self.max_frames, self.has_mid_block = family, max_frames, mid_block
        self.sites = [path for path, _ in motion_module_sites(family, mid_block)]
        for path, channels in motion_module_sites(family, mid_block):
            attach(self, path, MotionModule(channels, max_frames, blocks, operations, dtype, device))

    def sites_and_modules(self) -> list[tuple[str, MotionModule]]:
        return [(path, self.get_submodule(path)) for path in self.sites]
