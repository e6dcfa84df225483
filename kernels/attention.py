"""The attention function the kernels call. Hosts pass their own (ComfyUI its optimized backend) with the same
signature: q, k, v as [batch, tokens, heads*dim], returning [batch, q tokens, heads*dim]."""
from typing import Callable

import torch
import torch.nn.functional as F
from einops import rearrange

Attention = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int], torch.Tensor]


def sdpa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    q, k, v = (rearrange(t, "b n (h d) -> b h n d", h=heads) for t in (q, k, v))
    return rearrange(F.scaled_dot_product_attention(q, k, v), "b h n d -> b n (h d)")
