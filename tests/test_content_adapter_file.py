"""Tier 1: Content-Adapter files (h94's IP-Adapter Plus, the official bundle's attention weights), the Resampler,
and what is refused."""
import pytest
import torch
from safetensors.torch import save_file

from comfyui_i2v_adapter.kernels.content_adapter import image_attention
from comfyui_i2v_adapter.kernels.content_adapter_file import read_content_adapter, write_content_adapter
from comfyui_i2v_adapter.kernels.tensor_files import FileFormatError
from comfyui_i2v_adapter.kernels.unet_layout import SD15, SDXL, cross_attention_layers
from comfyui_i2v_adapter.tests.support.random_models import random_ip_adapter_plus, write_ip_adapter_bin


@pytest.fixture(scope="module")
def h94_sd15():
    return random_ip_adapter_plus(SD15)


@pytest.fixture
def h94_bin(tmp_path, h94_sd15):
    write_ip_adapter_bin(tmp_path / "ip-adapter-plus_sd15.bin", h94_sd15)
    return tmp_path / "ip-adapter-plus_sd15.bin"


def _bundle_keys(h94: dict, scale: float = 1.0) -> dict:
    """to_k_ip/to_v_ip under their UNet paths, as the official bundle holds them, beside other UNet weights."""
    paths = [path for path, _ in cross_attention_layers(SD15)]
    keys = {f"{paths[(int(k.split('.')[1]) - 1) // 2]}.{k.split('.', 2)[2]}": v.half() * scale
            for k, v in h94.items() if k.startswith("ip_adapter.")}
    return keys | {"down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight": torch.zeros(320, 768),
                   "down_blocks.0.motion_modules.0.temporal_transformer.proj_in.weight": torch.zeros(320, 320)}


def test_the_resampler_is_diffusers_ip_adapter_plus_projection_with_h94s_weights(h94_bin, h94_sd15):
    """Our key mapping loads h94's Resampler into diffusers' IPAdapterPlusImageProjection exactly as diffusers' own
    IP-Adapter loader does."""
    from diffusers.loaders.unet import UNet2DConditionLoadersMixin

    adapter = read_content_adapter(h94_bin)
    assert adapter.family is SD15 and (adapter.shape.queries, adapter.shape.depth, adapter.shape.hidden) == (16, 4, 768)
    host = type("Host", (), {"device": torch.device("cpu"), "dtype": torch.float32})()
    state = {k.removeprefix("image_proj."): v.half() for k, v in h94_sd15.items() if k.startswith("image_proj.")}
    theirs = UNet2DConditionLoadersMixin._convert_ip_adapter_image_proj_to_diffusers(host, state, low_cpu_mem_usage=False)
    features = torch.randn(2, 257, 1280)
    with torch.no_grad():
        assert torch.equal(adapter.build().image_tokens(features), theirs.float()(features))


def test_h94_numbering_maps_to_the_attn2_layers_in_processor_order(h94_bin, h94_sd15):
    adapter = read_content_adapter(h94_bin)
    assert adapter.key_values["mid_block.attentions.0.transformer_blocks.0.attn2.to_k_ip.weight"].equal(
        h94_sd15["ip_adapter.31.to_k_ip.weight"].half())
    assert adapter.key_values["up_blocks.1.attentions.0.transformer_blocks.0.attn2.to_v_ip.weight"].equal(
        h94_sd15["ip_adapter.13.to_v_ip.weight"].half())


def test_safetensors_round_trip_in_h94s_layout(h94_bin, tmp_path):
    adapter = read_content_adapter(h94_bin)
    write_content_adapter(tmp_path / "ip-adapter-plus_sd15.safetensors", adapter)
    again = read_content_adapter(tmp_path / "ip-adapter-plus_sd15.safetensors")
    assert again.h94_state().keys() == adapter.h94_state().keys()
    assert all(torch.equal(again.h94_state()[k], v) for k, v in adapter.h94_state().items())


def test_attention_weights_from_the_official_bundle_replace_the_files(h94_bin, h94_sd15, tmp_path):
    torch.save(_bundle_keys(h94_sd15, scale=2.0), tmp_path / "animatediff_v15_v1_ipplus.pth")
    adapter = read_content_adapter(h94_bin, tmp_path / "animatediff_v15_v1_ipplus.pth")
    plain = read_content_adapter(h94_bin)
    assert adapter.source == "ip-adapter-plus_sd15.bin + animatediff_v15_v1_ipplus.pth"
    assert all(torch.equal(adapter.key_values[k], 2 * plain.key_values[k]) for k in plain.key_values)
    assert torch.equal(adapter.resampler["latents"], plain.resampler["latents"])


def test_sdxl_vit_h_plus_is_recognised(tmp_path):
    save_file(random_ip_adapter_plus(SDXL), str(tmp_path / "ip-adapter-plus_sdxl_vit-h.safetensors"))
    adapter = read_content_adapter(tmp_path / "ip-adapter-plus_sdxl_vit-h.safetensors")
    assert adapter.family is SDXL and adapter.shape.hidden == 1280 and len(adapter.key_values) == 2 * 70


def test_image_attention_folds_frames_and_reads_each_videos_tokens():
    torch.manual_seed(0)
    q, k, v = torch.randn(2 * 3, 5, 16), torch.randn(2, 4, 16), torch.randn(2, 4, 16)
    out = image_attention(q, k, v, heads=2)
    for video in range(2):
        for frame in range(3):
            row = video * 3 + frame
            expected = torch.nn.functional.scaled_dot_product_attention(
                q[row].view(5, 2, 8).transpose(0, 1), k[video].view(4, 2, 8).transpose(0, 1),
                v[video].view(4, 2, 8).transpose(0, 1)).transpose(0, 1).reshape(5, 16)
            assert torch.allclose(out[row], expected, atol=1e-6)


@pytest.mark.parametrize("keys, message", [
    ({"image_proj.proj.weight": torch.zeros(3072, 1024), "ip_adapter.1.to_k_ip.weight": torch.zeros(320, 768)},
     "is an IP-Adapter \\(not Plus"),
    ({"down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k_ip.weight": torch.zeros(320, 768)},
     "no Resampler .* it is the official I2V-Adapter bundle"),
    ({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(320, 4, 3, 3)}, "is not an IP-Adapter"),
])
def test_files_that_are_no_ip_adapter_plus_are_refused(tmp_path, keys, message):
    save_file(keys, str(tmp_path / "wrong.safetensors"))
    with pytest.raises(FileFormatError, match=message):
        read_content_adapter(tmp_path / "wrong.safetensors")


def test_a_bundle_without_ip_weights_is_refused_as_the_attention_source(h94_bin, tmp_path):
    torch.save({"down_blocks.0.motion_modules.0.temporal_transformer.proj_in.weight": torch.zeros(4, 4)},
               tmp_path / "mm_sd_v15.ckpt")
    with pytest.raises(FileFormatError, match="mm_sd_v15.ckpt has no IP-Adapter attention weights"):
        read_content_adapter(h94_bin, tmp_path / "mm_sd_v15.ckpt")


def test_an_sdxl_resampler_with_sd15_attention_weights_is_refused(tmp_path, h94_sd15):
    sdxl = {k: v for k, v in random_ip_adapter_plus(SDXL).items() if k.startswith("image_proj.")}
    save_file(sdxl | {k: v for k, v in h94_sd15.items() if k.startswith("ip_adapter.")}, str(tmp_path / "mixed.safetensors"))
    with pytest.raises(FileFormatError, match="makes tokens 2048 wide but the attention weights are SD1.5's"):
        read_content_adapter(tmp_path / "mixed.safetensors")


def test_a_bin_holding_anything_but_tensors_is_refused(tmp_path):
    import os
    torch.save({"image_proj": {"latents": torch.zeros(1)}, "ip_adapter": {"1.to_k_ip.weight": os.getcwd}},
               tmp_path / "evil.bin")
    with pytest.raises(FileFormatError, match="a safe load \\(weights_only=True\\) refused it"):
        read_content_adapter(tmp_path / "evil.bin")


def test_the_converter_splits_the_official_bundle(h94_bin, h94_sd15, tmp_path):
    """--bundle: the v1 motion modules in the original AnimateDiff layout and the Content-Adapter in h94's layout
    (the bundle's attention weights, h94's Resampler), each read back as from the bundle itself."""
    import subprocess
    import sys
    from pathlib import Path

    from comfyui_i2v_adapter.kernels.motion_module import MotionModules
    from comfyui_i2v_adapter.kernels.motion_module_file import read_motion_module

    with torch.device("meta"):
        shapes = {k: v.shape for k, v in MotionModules(SD15, 24, mid_block=False).state_dict().items()}
    motion = {k: torch.full((1,), float(i)).expand(s) for i, (k, s) in enumerate(shapes.items())}
    torch.save(_bundle_keys(h94_sd15) | motion, tmp_path / "animatediff_v15_v1_ipplus.pth")
    script = Path(__file__).resolve().parents[1] / "training" / "convert_official_i2v.py"
    done = subprocess.run([sys.executable, str(script), "--bundle", str(tmp_path / "animatediff_v15_v1_ipplus.pth"),
                           "--image-proj", str(h94_bin), "--motion-module-out", str(tmp_path / "mm.safetensors"),
                           "--content-adapter-out", str(tmp_path / "plus.safetensors")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "SD1.5 v1 motion modules" in done.stdout and "Content-Adapter (IP-Adapter Plus)" in done.stdout
    split, whole = read_motion_module(tmp_path / "mm.safetensors"), read_motion_module(tmp_path / "animatediff_v15_v1_ipplus.pth")
    assert (split.version, split.max_frames) == ("v1", 24)
    assert all(torch.equal(split.state_dict[k], whole.state_dict[k]) for k in whole.state_dict)
    converted = read_content_adapter(tmp_path / "plus.safetensors")
    direct = read_content_adapter(h94_bin, tmp_path / "animatediff_v15_v1_ipplus.pth")
    assert converted.h94_state().keys() == direct.h94_state().keys()
    assert all(torch.equal(converted.h94_state()[k], v) for k, v in direct.h94_state().items())


@pytest.mark.parametrize("flags, message", [
    (["--bundle", "b.pth"], "--bundle needs --motion-module-out, --content-adapter-out or both"),
    (["--bundle", "b.pth", "--content-adapter-out", "c.safetensors"], "needs --image-proj"),
    (["--motion-module-out", "m.safetensors"], "split --bundle; give it"),
    (["i2v_module.pth"], "give both source and target"),
])
def test_the_converter_refuses_incomplete_commands(flags, message, capsys):
    from comfyui_i2v_adapter.training.convert_official_i2v import main
    with pytest.raises(SystemExit):
        main(flags)
    assert message in capsys.readouterr().err
