"""Tier 2: Apply Motion Module's noise schedule and GroupNorm settings inside a real ComfyUI, and the warning when an
adapter trained on one schedule samples on another."""
import logging

import pytest
import torch

from comfyui_i2v_adapter.kernels.motion_module_file import read_motion_module
from comfyui_i2v_adapter.tests.support.graphs import FRAMES, apply_adapter, random_adapter, sample, video_latent

pytestmark = pytest.mark.comfyui


def with_motion(model, path, beta_schedule="autoselect", groupnorm="autoselect", scale=1.0):
    from comfyui_i2v_adapter.nodes.temporal_layer_nodes import ApplyMotionModule
    return ApplyMotionModule.execute(model, read_motion_module(path), scale, beta_schedule, groupnorm).result[0]


def alphas_cumprod(model):
    sigmas = model.get_model_object("model_sampling").sigmas.double()
    return 1 / (1 + sigmas ** 2)


@pytest.mark.parametrize("layout", ["v1", "v2", "v3"])
def test_autoselect_samples_sd15_motion_modules_on_animatediffs_schedule(sd15, motion_files, layout):
    """diffusers' `linear` betas (ComfyUI's sqrt_linear), as AnimateDiff and the official release: ᾱ at t = 961 to
    1e-6 of diffusers' own scheduler."""
    from diffusers import DDPMScheduler

    model, _, _ = sd15
    official = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="linear").alphas_cumprod.double()
    patched = alphas_cumprod(with_motion(model, motion_files[layout]))
    assert abs(patched[961] - official[961]) < 1e-6 and (patched - official).abs().max() < 1e-6
    assert abs(patched[961].sqrt() - 0.050) < 5e-4 and abs(alphas_cumprod(model)[961].sqrt() - 0.085) < 5e-4


def test_use_existing_keeps_the_models_schedule_and_the_sd_default_is_diffusers_scaled_linear(sd15, motion_files):
    from diffusers import DDPMScheduler

    model, _, _ = sd15
    scaled = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear").alphas_cumprod.double()
    assert torch.equal(alphas_cumprod(with_motion(model, motion_files["v2"], "use existing")), alphas_cumprod(model))
    assert (alphas_cumprod(with_motion(model, motion_files["v2"], "linear (SD default)")) - scaled).abs().max() < 1e-6
    assert (alphas_cumprod(model) - scaled).abs().max() < 1e-6


def test_the_schedule_changes_sampling_and_a_plain_clone_keeps_the_old_one(sd15, motion_files):
    model, clip, vae = sd15
    latent = video_latent(vae)
    existing = sample(with_motion(model, motion_files["v2"], "use existing"), clip, latent)
    animatediff = sample(with_motion(model, motion_files["v2"]), clip, latent)
    assert (existing - animatediff).abs().max() > 1e-3
    assert torch.equal(alphas_cumprod(model.clone()), alphas_cumprod(model))


def change_per_frame(model, clip, latent, frame):
    moved = {**latent, "samples": latent["samples"].clone()}
    moved["samples"][frame] += 0.5
    run = lambda lat: sample(model, clip, lat, steps=1, denoise=0.5)
    return (run(moved) - run(latent)).abs().amax(dim=(1, 2, 3))


@pytest.fixture(scope="module")
def moving_latent():
    torch.manual_seed(5)
    return {"samples": torch.randn(FRAMES, 4, 8, 8)}


def test_v1_modules_normalise_across_frames_and_v2_per_frame(sd15, motion_files, moving_latent):
    """At motion scale 0 the motion modules add nothing, so frames meet only in a GroupNorm across frames."""
    model, clip, _ = sd15
    v1 = change_per_frame(with_motion(model, motion_files["v1"], scale=0.0), clip, moving_latent, frame=2)
    v2 = change_per_frame(with_motion(model, motion_files["v2"], scale=0.0), clip, moving_latent, frame=2)
    forced = change_per_frame(with_motion(model, motion_files["v2"], groupnorm="across frames", scale=0.0), clip,
                              moving_latent, frame=2)
    per_frame = change_per_frame(with_motion(model, motion_files["v1"], groupnorm="per frame", scale=0.0), clip,
                                 moving_latent, frame=2)
    assert (v1 > 1e-4).all() and (forced > 1e-4).all()
    assert torch.equal(v2[[0, 1, 3]], torch.zeros(3)) and torch.equal(per_frame[[0, 1, 3]], torch.zeros(3))


def test_across_frames_each_video_of_the_batch_is_normalised_alone(sd15, motion_files, moving_latent):
    """cond and uncond are two videos in one batch: each gives what it gives sampled alone (CFG 1 runs cond only;
    with CFG the uncond video joins the batch, and the cond half must not change)."""
    import comfy.patcher_extension

    model, clip, _ = sd15
    patched = with_motion(model, motion_files["v1"], scale=0.0)
    outputs = {}

    def record(executor, x, timesteps, context, y, control, transformer_options, **kwargs):
        out = executor(x, timesteps, context, y, control, transformer_options, **kwargs)
        cond = transformer_options["cond_or_uncond"].index(0)
        outputs.setdefault(len(transformer_options["cond_or_uncond"]), out[cond * FRAMES:(cond + 1) * FRAMES])
        return out
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "record", record)
    sample(patched, clip, moving_latent, steps=1, cfg=1.0)
    sample(patched, clip, moving_latent, steps=1, cfg=3.0)
    assert torch.allclose(outputs[1], outputs[2], atol=1e-5)


def test_weight_patches_on_groupnorm_weights_still_apply_across_frames(sd15, motion_files, moving_latent):
    """The view shares the norm's parameters, so a LoRA or merge patch on them applies as on the plain model. The
    clones are made while `patched` is loaded (its motion modules injected), as a LoRA node re-run on a cached
    model does: a zero patch samples exactly as before, so the modules are back in place."""
    model, clip, _ = sd15
    patched = with_motion(model, motion_files["v1"])
    run = lambda m: sample(m, clip, moving_latent, steps=1, denoise=0.5)
    before = run(patched)
    for delta, changes in ((0.0, False), (0.5, True)):
        weighted = patched.clone()
        weighted.add_patches({"diffusion_model.out.0.weight": (torch.full((320,), delta),)}, strength_patch=1.0)
        assert bool((run(weighted) - before).abs().max() > 1e-4) is changes
    assert torch.equal(run(patched), before)


def test_a_patch_on_the_norms_applies_whatever_model_was_loaded_when_the_node_ran(sd15, motion_files, moving_latent):
    """ComfyUI records on each module whether its weights are patched for the loaded model. The views share that
    record with their norms: built while the plain model is loaded (every module saying "patched"), a merge patch on
    a norm still applies, as when nothing was loaded."""
    import comfy.model_management

    model, clip, _ = sd15
    run = lambda m: sample(m, clip, moving_latent, steps=1, denoise=0.5)

    def merged():
        weighted = with_motion(model, motion_files["v1"]).clone()
        weighted.add_patches({"diffusion_model.out.0.weight": (torch.full((320,), 0.5),)}, strength_patch=1.0)
        return weighted
    comfy.model_management.unload_all_models()
    expected = run(merged())
    run(model)
    assert torch.equal(run(merged()), expected)


def test_an_official_adapter_on_sds_default_schedule_warns_and_on_animatediffs_does_not(sd15, motion_files, caplog):
    model, clip, vae = sd15
    latent = video_latent(vae)
    official = random_adapter()  # no metadata: the official release, trained on AnimateDiff's schedule
    with caplog.at_level(logging.WARNING):
        sample(apply_adapter(model, official, latent), clip, latent, steps=1)
    assert "was trained with the sqrt_linear (AnimateDiff) noise schedule, but the MODEL samples with linear (SD " \
           "default)" in caplog.text
    assert caplog.text.count("noise schedule") == 1
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        sample(apply_adapter(with_motion(model, motion_files["v1"]), official, latent), clip, latent, steps=1)
    assert "noise schedule" not in caplog.text


def test_two_files_on_another_schedule_warn_once(sd15, look_back_file, caplog):
    from comfyui_i2v_adapter.kernels.look_back_file import read_look_back
    from comfyui_i2v_adapter.nodes.temporal_layer_nodes import ApplyLookBackLayers

    model, clip, vae = sd15
    latent = video_latent(vae)
    both = ApplyLookBackLayers.execute(apply_adapter(model, random_adapter(), latent), read_look_back(look_back_file),
                                       latent).result[0]
    with caplog.at_level(logging.WARNING):
        sample(both, clip, latent, steps=1)
    warnings = [r.getMessage() for r in caplog.records if "noise schedule" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith(
        "Apply I2V-Adapter: this I2V-Adapter and Apply Look-Back Layers: these look-back layers were trained with the "
        "sqrt_linear (AnimateDiff) noise schedule")


def test_autoselect_keeps_a_schedule_set_upstream(sd15, motion_files):
    """ModelSamplingDiscrete (v_prediction, lcm) before Apply Motion Module is the user's choice: kept."""
    from comfy_extras.nodes_model_advanced import ModelSamplingDiscrete

    model, _, _ = sd15
    for sampling in ("v_prediction", "lcm"):
        upstream = ModelSamplingDiscrete().patch(model, sampling, False)[0]
        patched = with_motion(upstream, motion_files["v2"])
        assert patched.get_model_object("model_sampling") is upstream.get_model_object("model_sampling")
    assert alphas_cumprod(with_motion(model, motion_files["v2"]))[961].sqrt() < 0.06  # AnimateDiff's otherwise


def test_animatelcm_modules_are_told_apart_and_sample_with_lcm(sd15, motion_files, tmp_path):
    """AnimateLCM's files have no position encodings (AnimateDiff-Evolved's rule): 64 frames, and autoselect gives
    LCM sampling, as ComfyUI's ModelSamplingDiscrete "lcm" sets it."""
    from comfy_extras.nodes_model_advanced import LCM
    from safetensors.torch import load_file, save_file

    v3 = load_file(str(motion_files["v3"]))
    save_file({k: v for k, v in v3.items() if "pos_encoder" not in k}, str(tmp_path / "AnimateLCM_sd15_t2v.safetensors"))
    motion = read_motion_module(tmp_path / "AnimateLCM_sd15_t2v.safetensors")
    assert (motion.version, motion.max_frames) == ("AnimateLCM", 64)
    model, _, _ = sd15
    sampling = with_motion(model, tmp_path / "AnimateLCM_sd15_t2v.safetensors").get_model_object("model_sampling")
    assert isinstance(sampling, LCM) and len(sampling.sigmas) == 50
