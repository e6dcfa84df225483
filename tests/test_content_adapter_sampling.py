"""Tier 2: Apply Content-Adapter inside a real ComfyUI, with ComfyUI's own CLIP vision model, on the random SD1.5."""
import pytest
import torch

from comfyui_i2v_adapter.kernels.content_adapter_file import read_content_adapter
from comfyui_i2v_adapter.kernels.unet_layout import SD15, SDXL
from comfyui_i2v_adapter.tests.support.graphs import FRAMES, apply_adapter, random_adapter, sample, video_latent
from comfyui_i2v_adapter.tests.support.images import astronaut
from comfyui_i2v_adapter.tests.support.random_models import random_ip_adapter_plus, write_ip_adapter_bin

pytestmark = pytest.mark.comfyui
WIDTH = 64  # the test's small CLIP vision model; IP-Adapter Plus reads ViT-H's 1280


@pytest.fixture(scope="module")
def clip_vision(comfyui):
    from comfyui_i2v_adapter.tests.support.random_models import small_clip_vision
    return small_clip_vision(WIDTH)


@pytest.fixture(scope="module")
def content_adapter(tmp_path_factory):
    path = tmp_path_factory.mktemp("ipadapter") / "ip-adapter-plus_sd15.bin"
    write_ip_adapter_bin(path, random_ip_adapter_plus(SD15, image_features=WIDTH))
    return read_content_adapter(path)


def apply(model, adapter, clip_vision, image=None, weight=1.0):
    from comfyui_i2v_adapter.nodes.content_adapter_nodes import ApplyContentAdapter
    return ApplyContentAdapter.execute(model, adapter, clip_vision, astronaut() if image is None else image,
                                       weight).result[0]


def outputs_by_side(model, clip, latent):
    """The UNet's output for the cond and the uncond video of the first step."""
    import comfy.patcher_extension
    sides = {}

    def record(executor, x, timesteps, context, y, control, transformer_options, **kwargs):
        out = executor(x, timesteps, context, y, control, transformer_options, **kwargs)
        for chunk, side in enumerate(transformer_options["cond_or_uncond"]):
            sides.setdefault(side, out[chunk * FRAMES:(chunk + 1) * FRAMES].clone())
        return out
    model = model.clone()
    model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "record", record)
    sample(model, clip, latent, steps=1)
    return sides


def test_the_image_conditions_the_cond_side_and_zero_pixels_the_uncond_side(sd15, clip_vision, content_adapter):
    model, clip, vae = sd15
    latent = video_latent(vae)
    plain = outputs_by_side(model, clip, latent)
    astronaut_sides = outputs_by_side(apply(model, content_adapter, clip_vision), clip, latent)
    flipped_sides = outputs_by_side(apply(model, content_adapter, clip_vision, astronaut().flip(2)), clip, latent)
    for side in (0, 1):
        assert (astronaut_sides[side] - plain[side]).abs().amax(dim=(1, 2, 3)).min() > 1e-4  # every frame
    assert (astronaut_sides[0] - flipped_sides[0]).abs().max() > 1e-4
    assert torch.equal(astronaut_sides[1], flipped_sides[1])  # the unconditional side never sees the image


def test_weight_scales_the_image_attention_and_zero_is_the_plain_model(sd15, clip_vision, content_adapter):
    model, clip, vae = sd15
    latent = video_latent(vae)
    plain = sample(model, clip, latent)
    assert apply(model, content_adapter, clip_vision, weight=0.0) is model
    one, half = (sample(apply(model, content_adapter, clip_vision, weight=w), clip, latent) for w in (1.0, 0.5))
    assert (half - plain).abs().max() > 1e-4 and (one - half).abs().max() > 1e-4


def test_stacks_with_the_i2v_adapter_and_motion_modules_in_any_order(sd15, clip_vision, content_adapter, motion_files):
    from comfyui_i2v_adapter.kernels.motion_module_file import read_motion_module
    from comfyui_i2v_adapter.nodes.temporal_layer_nodes import ApplyMotionModule

    model, clip, vae = sd15
    latent, adapter, motion = video_latent(vae), random_adapter(), read_motion_module(motion_files["v1"])
    steps = {"content": lambda m: apply(m, content_adapter, clip_vision),
             "i2v": lambda m: apply_adapter(m, adapter, latent),
             "motion": lambda m: ApplyMotionModule.execute(m, motion, 1.0, "autoselect", "autoselect").result[0]}
    results = []
    for order in (("content", "i2v", "motion"), ("motion", "i2v", "content"), ("i2v", "content", "motion")):
        patched = model
        for step in order:
            patched = steps[step](patched)
        results.append(sample(patched, clip, latent))
    assert torch.equal(results[0], results[1]) and torch.equal(results[0], results[2])
    assert torch.equal(results[0][0], latent["samples"][0])


def test_a_previous_attn2_replace_is_kept_and_extended(sd15, clip_vision, content_adapter):
    """Two Content-Adapters (or ComfyUI_IPAdapter_plus before ours) chain: the second adds to the first's output."""
    model, clip, vae = sd15
    latent = video_latent(vae)
    once = apply(model, content_adapter, clip_vision, weight=0.5)
    twice = apply(once, content_adapter, clip_vision, weight=0.5)
    single = apply(model, content_adapter, clip_vision, weight=1.0)
    chained, direct = outputs_by_side(twice, clip, latent), outputs_by_side(single, clip, latent)
    for side in (0, 1):
        assert (chained[side] - direct[side]).abs().max() / direct[side].abs().max() < 1e-5


def test_an_sdxl_content_adapter_on_sd15_is_refused_before_encoding(sd15, clip_vision, tmp_path):
    from safetensors.torch import save_file
    save_file(random_ip_adapter_plus(SDXL, image_features=WIDTH), str(tmp_path / "ip-adapter-plus_sdxl_vit-h.safetensors"))
    model, _, _ = sd15
    with pytest.raises(ValueError, match="is for SDXL but the MODEL is SD1.5: use ip-adapter-plus_sd15"):
        apply(model, read_content_adapter(tmp_path / "ip-adapter-plus_sdxl_vit-h.safetensors"), clip_vision)


def test_an_sd15_content_adapter_on_sdxl_is_refused(content_adapter, clip_vision):
    from comfyui_i2v_adapter.tests.support.random_models import meta_sdxl_model
    with pytest.raises(ValueError, match="is for SD1.5 but the MODEL is SDXL: use ip-adapter-plus_sdxl_vit-h"):
        apply(meta_sdxl_model(), content_adapter, clip_vision)


def test_a_clip_vision_model_of_another_width_is_refused_naming_both(sd15, tmp_path, comfyui):
    from comfyui_i2v_adapter.tests.support.random_models import small_clip_vision
    model, _, _ = sd15
    write_ip_adapter_bin(tmp_path / "plus.bin", random_ip_adapter_plus(SD15, image_features=1280))
    with pytest.raises(ValueError, match="gives features of 96 wide, but this Content-Adapter reads ViT-H, 1280 wide"):
        apply(model, read_content_adapter(tmp_path / "plus.bin"), small_clip_vision(96))
