"""Tier 1: the cross-frame branch (paper eq. 6) in kernels/, against a plain per-frame implementation."""
import math

import pytest
import torch

from comfyui_i2v_adapter.kernels.first_frame_attention import FirstFrameBranch, I2VAdapter, first_frame_attention
from comfyui_i2v_adapter.kernels.unet_layout import SD15, SDXL, self_attention_layers


def per_frame_eq6_branch(branch, hidden, k, v, frames, heads):
    """Attn(X_i W'_Q, K_1, V_1) W'_O written out frame by frame, head by head."""
    out = torch.empty_like(hidden)
    wq, wo, bo = branch.to_q_ff.weight, branch.to_out_ff.weight, branch.to_out_ff.bias
    d = hidden.shape[-1] // heads
    for i in range(hidden.shape[0]):
        first = i - i % frames
        q = hidden[i] @ wq.T
        per_head = []
        for h in range(heads):
            s = slice(h * d, (h + 1) * d)
            weights = torch.softmax(q[:, s] @ k[first, :, s].T / math.sqrt(d), dim=-1)
            per_head.append(weights @ v[first, :, s])
        out[i] = torch.cat(per_head, dim=-1) @ wo.T + bo
    return out


@pytest.mark.parametrize("frames", [2, 3, 16])
@pytest.mark.parametrize("heads", [1, 4, 8])
@pytest.mark.parametrize("videos", [1, 2], ids=["cond", "cond+uncond"])
def test_branch_equals_per_frame_reference(frames, heads, videos, seeded):
    dim, tokens = 32, 12
    branch = FirstFrameBranch(dim)
    torch.nn.init.normal_(branch.to_out_ff.weight)
    torch.nn.init.normal_(branch.to_out_ff.bias)
    hidden, k, v = (torch.randn(videos * frames, tokens, dim) for _ in range(3))
    got = branch(hidden, k[::frames], v[::frames], frames, heads)
    want = per_frame_eq6_branch(branch, hidden, k, v, frames, heads)
    assert (got - want).abs().max().item() <= 1e-5


def test_first_frame_keys_are_read_once_per_video(seeded):
    seen = []

    def spy(q, k, v, heads):
        seen.append((tuple(q.shape), tuple(k.shape)))
        return torch.zeros_like(q)
    frames, videos = 16, 2
    q = torch.randn(videos * frames, 10, 8)
    first_frame_attention(q, q[::frames], q[::frames], frames, heads=2, attention=spy)
    assert seen == [((videos, frames * 10, 8), (videos, 10, 8))]


def test_identity_initialised_branch_adds_exactly_nothing(seeded):
    """W'_Q = W_Q and W'_O = 0: attn1 with the branch is attn1 without it, bit for bit."""
    dim, heads, frames = 64, 4, 4
    attn1 = torch.nn.MultiheadAttention(dim, heads, bias=False, batch_first=True)
    branch = FirstFrameBranch(dim)
    branch.reset_to_identity(attn1.in_proj_weight[:dim])
    x = torch.randn(2 * frames, 9, dim)
    plain = attn1(x, x, x, need_weights=False)[0]
    k, v = x @ attn1.in_proj_weight[dim:2 * dim].T, x @ attn1.in_proj_weight[2 * dim:].T
    assert torch.equal(plain + branch(x, k[::frames], v[::frames], frames, heads), plain)
    assert torch.equal(branch.to_q_ff.weight, attn1.in_proj_weight[:dim])


def test_batch_must_hold_whole_videos():
    q = torch.randn(5, 4, 8)
    with pytest.raises(ValueError, match="videos of 2 frames"):
        first_frame_attention(q, q[:2], q[:2], frames=2, heads=2)
    with pytest.raises(ValueError, match="at least 2"):
        first_frame_attention(q, q[:5], q[:5], frames=1, heads=2)
    with pytest.raises(ValueError, match="into 3 videos"):
        first_frame_attention(q[:4], q[:3], q[:3], frames=2, heads=2)


@pytest.mark.parametrize("family, count", [(SD15, 24_793_280), (SDXL, 204_883_200)])
def test_trainable_parameters_at_real_shapes(family, count):
    with torch.device("meta"):
        adapter = I2VAdapter(family)
    assert sum(p.numel() for p in adapter.parameters()) == count


def test_attention_layout_of_each_family():
    widths = lambda family: sorted(dim for _, dim in self_attention_layers(family))
    assert widths(SD15) == [320] * 5 + [640] * 5 + [1280] * 6
    assert widths(SDXL) == [640] * 10 + [1280] * 60
    assert self_attention_layers(SD15)[0][0] == "down_blocks.0.attentions.0.transformer_blocks.0.attn1"
    assert self_attention_layers(SD15)[6][0] == "mid_block.attentions.0.transformer_blocks.0.attn1"
