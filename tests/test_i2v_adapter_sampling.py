"""Tier 2: the Apply I2V-Adapter patch inside a real ComfyUI, sampling a random-weight SD1.5 checkpoint."""
import pytest
import torch

from comfyui_i2v_adapter.kernels.adapter_file import read_adapter
from comfyui_i2v_adapter.kernels.unet_layout import SDXL
from comfyui_i2v_adapter.tests.support.graphs import FRAMES, random_adapter, sample, video_latent
from comfyui_i2v_adapter.tests.support.graphs import apply_adapter as apply

pytestmark = pytest.mark.comfyui


def test_zero_adapter_samples_bit_for_bit_like_the_plain_model(sd15):
    """W'_O = 0: every generated frame equals the unpatched model's, bit for bit (fp32, same seed). The SD1.5
    base has no temporal layers, so frames 1.. are untouched by the pinning of frame 0, which is exact."""
    model, clip, vae = sd15
    latent = video_latent(vae)
    plain = sample(model, clip, latent)
    patched = sample(apply(model, random_adapter(trained=False), latent), clip, latent)
    assert torch.equal(patched[1:], plain[1:])
    assert torch.equal(patched[0], latent["samples"][0])


def test_adapter_changes_later_frames_and_frame0_stays_the_reference(sd15):
    model, clip, vae = sd15
    latent = video_latent(vae)
    plain = sample(model, clip, latent)
    patched = sample(apply(model, random_adapter(), latent), clip, latent)
    assert torch.equal(patched[0], latent["samples"][0])
    assert all((patched[i] - plain[i]).abs().max() > 1e-3 for i in range(1, FRAMES))
    assert torch.isfinite(patched).all()


def test_strength_0_pins_frame_0_and_runs_no_branch(sd15):
    """At strength 0 the model samples as the plain one (frame 0 pinned) and carries no branch to compute."""
    model, clip, vae = sd15
    latent = video_latent(vae)
    zero = apply(model, random_adapter(), latent, strength=0.0)
    patches = zero.model_options["transformer_options"].get("patches", {})
    assert not patches.get("attn1_patch") and not patches.get("attn1_output_patch")
    assert not zero.get_additional_models_with_key("i2v_adapter")
    sampled, plain = sample(zero, clip, latent), sample(model, clip, latent)
    assert torch.equal(sampled[0], latent["samples"][0]) and torch.equal(sampled[1:], plain[1:])


def test_every_unet_call_sees_the_clean_reference_at_the_shared_timestep(sd15):
    """Frame 0 of every video in the batch (cond and uncond) enters the UNet as the exact reference latent,
    not a noised or sigma-scaled copy, at the same timestep as the other frames."""
    import comfy.patcher_extension
    model, clip, vae = sd15
    latent = video_latent(vae)
    patched = apply(model, random_adapter(), latent)
    expected = model.model.process_latent_in(latent["samples"][:1])
    calls = []

    def probe(executor, x, timesteps, context, y, control, transformer_options, **kwargs):
        chunks = len(transformer_options["cond_or_uncond"])
        calls.append((chunks, [torch.equal(x[c * FRAMES], expected[0]) for c in range(chunks)],
                      bool((timesteps == timesteps[0]).all())))
        return executor(x, timesteps, context, y, control, transformer_options, **kwargs)
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "probe", probe)
    sample(patched, clip, latent)
    assert len(calls) == 2 and all(chunks == 2 for chunks, *_ in calls)
    assert all(all(clean) and same_t for _, clean, same_t in calls)


def test_official_pth_and_its_conversion_sample_the_same(sd15, tmp_path):
    from comfyui_i2v_adapter.kernels.adapter_file import convert_official
    model, clip, vae = sd15
    torch.save({"state_dict": random_adapter(seed=3).state_dict}, tmp_path / "i2v_module.pth")
    converted = convert_official(tmp_path / "i2v_module.pth", tmp_path / "i2v_module.safetensors")
    latent = video_latent(vae)
    from_pth = sample(apply(model, read_adapter(tmp_path / "i2v_module.pth"), latent), clip, latent)
    from_safetensors = sample(apply(model, converted, latent), clip, latent)
    assert torch.equal(from_pth, from_safetensors)


def test_an_sdxl_adapter_on_sd15_is_refused(sd15):
    model, _, vae = sd15
    with pytest.raises(ValueError, match="This I2V-Adapter is for SDXL but the MODEL is SD1.5"):
        apply(model, random_adapter(SDXL), video_latent(vae))


def test_an_sd15_adapter_on_sdxl_is_refused(sd15):
    from comfyui_i2v_adapter.tests.support.random_models import meta_sdxl_model
    _, _, vae = sd15
    with pytest.raises(ValueError, match="This I2V-Adapter is for SD1.5 but the MODEL is SDXL"):
        apply(meta_sdxl_model(), random_adapter(), video_latent(vae))


def test_a_one_frame_latent_is_refused_before_sampling(sd15):
    model, clip, vae = sd15
    latent = video_latent(vae)
    single = {"samples": latent["samples"][:1]}
    with pytest.raises(ValueError, match="at least 2 frames .* the sampler got 1"):
        sample(apply(model, random_adapter(), latent), clip, single)


def test_a_reference_of_another_size_is_refused_with_both_sizes(sd15):
    model, clip, vae = sd15
    small, large = video_latent(vae, size=64), video_latent(vae, size=96)
    with pytest.raises(ValueError, match="reference latent is 64×64 px .* video latent is 96×96 px"):
        sample(apply(model, random_adapter(), small), clip, large)


def test_applying_twice_is_refused(sd15):
    model, _, vae = sd15
    latent = video_latent(vae)
    with pytest.raises(ValueError, match="already has an I2V-Adapter"):
        apply(apply(model, random_adapter(), latent), random_adapter(), latent)
