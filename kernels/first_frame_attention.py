"""The I2V-Adapter's cross-frame branch (paper eq. 6): every frame also queries the first frame.

    out_i = Attn(Q_i, K_i, V_i) W_O  +  Attn(X_i W'_Q, K_1, V_1) W'_O

The first term is the frozen self-attention the host computes. This module computes the second term:
`K_1, V_1` are the frozen key/value projections of each video's frame 0, one per video; the frames are folded
into the query axis so the branch costs one extra attention, not F copies of K_1 and V_1.
"""
import torch
from torch import nn

from .attention import Attention, sdpa_attention
from .module_tree import attach
from .unet_layout import UNetFamily, self_attention_layers


def first_frame_attention(q: torch.Tensor, k_first: torch.Tensor, v_first: torch.Tensor, frames: int, heads: int,
                          attention: Attention = sdpa_attention) -> torch.Tensor:
    """Attn(q_i, K_1, V_1) for every frame i of every video in the batch.

    q: [videos*frames, N, C] branch queries, videos laid out one after another (ComfyUI batches cond and uncond
    videos this way). k_first, v_first: [videos, M, C] the keys and values of each video's frame 0.
    """
    if frames < 2 or q.shape[0] % frames or q.shape[0] // frames != k_first.shape[0]:
        raise ValueError(f"a batch of {q.shape[0]} cannot be split into {k_first.shape[0]} videos of {frames} frames "
                         "(need at least 2)")
    videos, tokens = k_first.shape[0], q.shape[1]
    folded = q.reshape(videos, frames * tokens, q.shape[2])
    return attention(folded, k_first, v_first, heads).reshape(q.shape)


class FirstFrameBranch(nn.Module):
    """W'_Q (no bias) and W'_O (with bias) beside one attn1, under the official release's names."""

    def __init__(self, dim: int, operations=nn, dtype=None, device=None):
        super().__init__()
        self.to_q_ff = operations.Linear(dim, dim, bias=False, dtype=dtype, device=device)
        self.to_out_ff = operations.Linear(dim, dim, bias=True, dtype=dtype, device=device)

    @torch.no_grad()
    def reset_to_identity(self, to_q_weight: torch.Tensor) -> None:
        """W'_Q from the frozen W_Q, W'_O zero: the branch adds exactly nothing until trained."""
        self.to_q_ff.weight.copy_(to_q_weight)
        self.to_out_ff.weight.zero_()
        self.to_out_ff.bias.zero_()

    def forward(self, hidden: torch.Tensor, k_first: torch.Tensor, v_first: torch.Tensor, frames: int, heads: int,
                attention: Attention = sdpa_attention) -> torch.Tensor:
        """hidden: the normed attn1 input X; k_first, v_first: attn1's frozen projections of each video's frame 0."""
        return self.to_out_ff(first_frame_attention(self.to_q_ff(hidden), k_first, v_first, frames, heads, attention))


class I2VAdapter(nn.Module):
    """One FirstFrameBranch per attn1 of a UNet family, arranged so that `state_dict()` keys are the
    official ones (`down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q_ff.weight`, ...)."""

    def __init__(self, family: UNetFamily, operations=nn, dtype=None, device=None):
        super().__init__()
        self.family = family
        self.layer_paths = []
        for path, dim in self_attention_layers(family):
            attach(self, path, FirstFrameBranch(dim, operations, dtype, device))
            self.layer_paths.append(path)

    def branches(self) -> list[tuple[str, FirstFrameBranch]]:
        return [(path, self.get_submodule(path)) for path in self.layer_paths]
