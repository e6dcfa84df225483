"""Tier 1: look-back layers (Algorithm 1) in kernels/, and their files."""
import re

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from comfyui_i2v_adapter.kernels.look_back import LookBackLayer, LookBackLayers
from comfyui_i2v_adapter.kernels.look_back_file import read_look_back, write_look_back
from comfyui_i2v_adapter.kernels.tensor_files import FileFormatError
from comfyui_i2v_adapter.kernels.unet_layout import SD15, SDXL

FRAMES = 10


def trained(layer, seed=0):
    torch.manual_seed(seed)
    for p in layer.parameters():
        torch.nn.init.normal_(p, std=0.15)
    return layer


def per_frame_change(layer, x, frame, videos=2):
    moved = x.clone()
    moved[frame] += 1.0
    with torch.no_grad():
        change = (layer(moved, FRAMES) - layer(x, FRAMES)).abs().amax(dim=(1, 2, 3))
    return change.reshape(videos, FRAMES)


def written_out(layer, x, frames):
    """The layer's computation the plain way, as a list of frames and padded copies (the kernel's buffer and its
    padding inside the convolution must give the same numbers)."""
    h = rearrange(x, "(v f) c h w -> v f c h w", f=frames)
    own = rearrange(layer.look_back_own(x), "(v f) c h w -> v f c h w", f=frames)
    past = layer.depth - 1
    updated = [torch.zeros_like(h[:, 0])] * past + [h[:, 0]]
    for i in range(1, frames):
        window = torch.stack(updated[-past:], dim=2)
        updated.append(h[:, i] + own[:, i] + layer.look_back_past(window).squeeze(2))
    u = torch.stack(updated[past:], dim=2)
    mixed = layer.channel_mix(rearrange(u, "v c f h w -> v c (f h w)")).reshape(u.shape)
    k = layer.adapter.kernel_size[0]
    out = u + F.conv3d(F.pad(mixed, (k // 2, k // 2, k // 2, k // 2, k - 1, 0)), layer.adapter.weight,
                       layer.adapter.bias, groups=layer.adapter.groups)
    out[:, :, 0] = h[:, 0]
    return rearrange(out, "v c f h w -> (v f) c h w")


@pytest.mark.parametrize("dense", [False, True], ids=["per-channel", "dense"])
@pytest.mark.parametrize("depth, kernel, adapter_kernel", [(5, 5, 3), (2, 3, 3), (3, 3, 5)])
def test_the_layer_computes_algorithm_1_as_written_out_with_its_gradients(dense, depth, kernel, adapter_kernel):
    layer = trained(LookBackLayer(8, depth, kernel, adapter_kernel, dense))
    x = torch.randn(2 * 6, 8, 5, 7, requires_grad=True)
    fast = layer(x, 6)
    (fast_grad,) = torch.autograd.grad(fast.square().sum(), x)
    plain = written_out(layer, x, 6)
    (plain_grad,) = torch.autograd.grad(plain.square().sum(), x)
    assert torch.allclose(fast, plain, rtol=1e-5, atol=1e-5)
    assert torch.allclose(fast_grad, plain_grad, rtol=1e-4, atol=1e-4 * plain_grad.abs().max().item())


@pytest.mark.parametrize("dense", [False, True], ids=["per-channel", "dense"])
def test_a_fresh_layer_is_the_identity(dense):
    x = torch.randn(2 * FRAMES, 16, 6, 6)
    assert torch.equal(LookBackLayer(16, dense=dense)(x, FRAMES), x)


@pytest.mark.parametrize("dense", [False, True], ids=["per-channel", "dense"])
def test_causal_changing_frame_j_leaves_earlier_frames_untouched(dense):
    layer = trained(LookBackLayer(16, depth=3, kernel=3, dense=dense))
    change = per_frame_change(layer, torch.randn(2 * FRAMES, 16, 6, 6), frame=4)
    assert torch.equal(change[0, :4], torch.zeros(4)) and (change[0, 4:] > 0).all()
    assert torch.equal(change[1], torch.zeros(FRAMES))  # the other video in the batch (cond/uncond)


def test_frame_d_plus_3_responds_to_frame_1_through_the_recurrence():
    """Without updated frames in the window, frame i would see at most d-1 frames back through the look-back conv
    and 2 more through the causal adapter: frame d+3 could not see frame 1."""
    depth = 3
    layer = trained(LookBackLayer(16, depth=depth, kernel=3))
    change = per_frame_change(layer, torch.randn(2 * FRAMES, 16, 6, 6), frame=1)
    assert change[0, 1 + depth + 3] > 1e-4


def test_frame_0_the_reference_is_never_changed():
    layer = trained(LookBackLayer(16, depth=3, kernel=3))
    x = torch.randn(2 * FRAMES, 16, 6, 6)
    out = layer(x, FRAMES)
    assert torch.equal(out[::FRAMES], x[::FRAMES]) and not torch.equal(out, x)


def test_paper_defaults_and_bad_settings():
    layer = LookBackLayer(320)
    assert layer.look_back_past.weight.shape == (320, 1, 4, 5, 5) and layer.adapter.weight.shape == (320, 1, 3, 3, 3)
    with pytest.raises(ValueError, match="kernels odd"):
        LookBackLayer(16, kernel=4)


def test_files_round_trip_with_their_settings(tmp_path):
    layers = LookBackLayers(SD15, depth=3, kernel=3, adapter_kernel=3)
    for _, layer in layers.sites_and_modules():
        trained(layer)
    write_look_back(tmp_path / "lb.safetensors", layers, steps=10)
    loaded = read_look_back(tmp_path / "lb.safetensors")
    assert loaded.family is SD15 and loaded.settings == dict(depth=3, kernel=3, adapter_kernel=3, dense=False)
    rebuilt = loaded.build()
    x = torch.randn(2 * 4, 320, 4, 4)
    site, layer = layers.sites_and_modules()[0]
    assert torch.equal(rebuilt.get_submodule(site)(x, 4), layer(x, 4))
    assert loaded.metadata["steps"] == "10"


def test_weights_for_another_channel_layout_are_refused(tmp_path):
    write_look_back(tmp_path / "xl.safetensors", LookBackLayers(SDXL, depth=2, kernel=1, adapter_kernel=1))
    with safe_open(str(tmp_path / "xl.safetensors"), "pt") as f:
        metadata = dict(f.metadata())
    save_file(load_file(str(tmp_path / "xl.safetensors")), str(tmp_path / "claims_sd15.safetensors"),
              metadata={**metadata, "base": "sd15"})
    with pytest.raises(FileFormatError, match="expected .* for SD1.5 look-back layers"):
        read_look_back(tmp_path / "claims_sd15.safetensors")
    save_file({"x": torch.zeros(1)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(FileFormatError, match="without look-back metadata"):
        read_look_back(tmp_path / "plain.safetensors")


@pytest.mark.parametrize("setting, value, message", [
    ("depth", None, "lb.safetensors: its metadata has no look-back setting 'depth' (the trainer records depth, "
                    "kernel, adapter_kernel): write the file again with training/train_adapter.py"),
    ("kernel", "five", "lb.safetensors: the look-back setting 'kernel' is 'five', not a whole number: write the file "
                       "again with training/train_adapter.py"),
    ("adapter_kernel", "4", "lb.safetensors: its look-back settings are invalid: look-back depth must be ≥ 2 and "
                            "kernels odd and positive (got depth 2, kernel 1, adapter kernel 4)"),
    ("kernel", "-1", "lb.safetensors: its look-back settings are invalid: look-back depth must be ≥ 2 and kernels "
                     "odd and positive (got depth 2, kernel -1, adapter kernel 1)"),
])
def test_a_missing_or_wrong_setting_in_the_file_is_named(tmp_path, setting, value, message):
    write_look_back(tmp_path / "written.safetensors", LookBackLayers(SD15, depth=2, kernel=1, adapter_kernel=1))
    with safe_open(str(tmp_path / "written.safetensors"), "pt") as f:
        metadata = {k: v for k, v in f.metadata().items() if k != setting} | ({setting: value} if value else {})
    save_file(load_file(str(tmp_path / "written.safetensors")), str(tmp_path / "lb.safetensors"), metadata=metadata)
    with pytest.raises(FileFormatError, match=re.escape(message)):
        read_look_back(tmp_path / "lb.safetensors")
