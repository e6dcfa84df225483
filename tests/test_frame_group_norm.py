"""GroupNorm across each video's frames (AnimateDiff v1, the official I2V-Adapter release): the view of a norm equals
`torch.nn.GroupNorm` on the 5-D `b c f h w` tensor, also through ComfyUI's casting ops (tier 2)."""
import pytest
import torch
from einops import rearrange

from comfyui_i2v_adapter.kernels.frame_group_norm import VideoBatch, across_frames


def five_d(norm, x, videos):
    return rearrange(norm(rearrange(x, "(v f) c h w -> v c f h w", v=videos)), "v c f h w -> (v f) c h w")


def random_norm(norm):
    torch.manual_seed(0)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    return norm


def test_the_view_equals_groupnorm_on_the_5d_video_and_shares_the_parameters():
    norm = random_norm(torch.nn.GroupNorm(8, 32, eps=1e-6))
    batch = VideoBatch()
    view = across_frames(norm, batch)
    x = torch.randn(3 * 4, 32, 5, 6)
    assert torch.equal(view(x), norm(x))  # outside a video call: per frame
    batch.videos = 3
    assert torch.allclose(view(x), five_d(norm, x, 3), atol=1e-6)
    assert not torch.allclose(view(x), norm(x), atol=1e-3)
    assert view.weight is norm.weight and view.state_dict().keys() == norm.state_dict().keys()
    torch.nn.Sequential(view).to(torch.float64)
    assert norm.weight.dtype == torch.float64  # moving the view moves the shared parameters
    view.weight_function = [abs]
    norm.patched = True
    assert norm.weight_function == [abs] and view.patched  # one state: what a host records on either, both see
    assert not hasattr(norm, "video_batch")


def test_gradients_through_the_view_are_the_5d_groupnorms():
    """The trainer takes gradients through it: the same as through the 5-D GroupNorm (float64), and the values
    without gradients (inference's statistics) are the same as with."""
    norm = random_norm(torch.nn.GroupNorm(4, 16)).double()
    batch = VideoBatch()
    batch.videos = 2
    x = torch.randn(2 * 3, 16, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: across_frames(norm, batch)(x), (x,))
    with torch.no_grad():
        assert torch.allclose(across_frames(norm, batch)(x), five_d(norm, x, 2), atol=1e-12)


def test_a_batch_that_is_not_whole_videos_is_an_error():
    batch = VideoBatch()
    batch.videos = 2
    with pytest.raises(ValueError, match="a batch of 5 frames cannot be split into 2 videos"):
        across_frames(torch.nn.GroupNorm(2, 4), batch)(torch.randn(5, 4, 2, 2))


@pytest.mark.comfyui
@pytest.mark.parametrize("operations", ["disable_weight_init", "manual_cast"])
def test_comfyuis_groupnorm_ops_with_weight_casting_and_weight_patches(comfyui, operations):
    """ComfyUI's GroupNorm classes, also casting fp16 weights per call (its low-VRAM and manual-cast path) and
    applying a weight patch per call (a LoRA or merge on a norm, low-VRAM)."""
    import comfy.ops

    from comfyui_i2v_adapter.nodes.frame_group_norm_patch import host_affine

    norm = random_norm(getattr(comfy.ops, operations).GroupNorm(8, 32, eps=1e-6))
    reference = torch.nn.GroupNorm(8, 32, eps=1e-6)
    reference.load_state_dict(norm.state_dict())
    norm.half()
    norm.comfy_cast_weights = True
    batch = VideoBatch(host_affine)
    batch.videos = 2
    x = torch.randn(2 * 3, 32, 4, 4)
    expected = five_d(reference.half().float(), x, 2)
    assert torch.allclose(across_frames(norm, batch)(x), expected, atol=1e-5)
    norm.weight_function, norm.bias_function = [lambda w: w * 2], [lambda b: b - 1]
    with torch.no_grad():
        reference.weight.mul_(2), reference.bias.sub_(1)
    assert torch.allclose(across_frames(norm, batch)(x), five_d(reference, x, 2), atol=1e-5)
