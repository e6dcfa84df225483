"""Tier 3: the pack inside ComfyUI computes what the official I2V-Adapter release computes.

Random weights written in the official layout (the bundle animatediff_v15_v1_ipplus.pth with the checkpoint's UNet,
AnimateDiff v1 motion modules and IP-Adapter attention weights; i2v_module.pth; h94's IP-Adapter Plus; a CLIP image
encoder) are run by the official code in its own environment (tests/official/run_official.py) and by our nodes on
ComfyUI's stock samplers, on the same inputs: the UNet's noise prediction at three timesteps, the Frame Similarity
Prior's start, and a whole 25-step DDIM run at CFG 7.5. Then each of the four settings that make the official model
(Content-Adapter, AnimateDiff's noise schedule, GroupNorm across frames, the prior's start) is turned off in turn, to
show that the comparison notices it.
"""
import math

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from skimage import data

from comfyui_i2v_adapter.kernels.noise_schedule import ANIMATEDIFF
from comfyui_i2v_adapter.kernels.unet_layout import SD15
from comfyui_i2v_adapter.tests.support.graphs import random_adapter
from comfyui_i2v_adapter.tests.support.official import BUNDLE, official_bundle, run_official, write_official_layout
from comfyui_i2v_adapter.tests.support.random_models import (random_ip_adapter_plus, small_clip_vision,
                                                             small_clip_vision_config, write_ip_adapter_bin)

pytestmark = [pytest.mark.comfyui, pytest.mark.official]
FRAMES = 16        # the official pipeline's degradation assumes 16 frames
LATENT_SIDE = 8    # 64 px
CLIP_WIDTH = 64    # a small CLIP image encoder; both sides load the same weights
TIMESTEPS = (961, 501, 21)
SCALE = 0.18215    # SD1.5's latent scale: the official code works on scaled latents, ComfyUI's LATENT on raw ones
TOLERANCE = {"noise prediction": 1e-4, "start": 1e-5, "final": 1e-3}


def relative_error(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return float((ours.double() - theirs.double()).abs().max() / theirs.double().abs().max())


def frames_first(video: torch.Tensor) -> torch.Tensor:
    """Official [b, c, f, h, w] -> ComfyUI's [b·f, c, h, w] for b = 1."""
    return video[0].movedim(1, 0)


@pytest.fixture(scope="module")
def setup(module_tmp, comfy_base, motion_files, comfyui):
    """The files in both layouts, the inputs, and what the official code computed from them."""
    from comfyui_i2v_adapter.tests.conftest import OFFICIAL

    work = module_tmp
    adapter = random_adapter(seed=11)
    h94 = random_ip_adapter_plus(SD15, image_features=CLIP_WIDTH)
    write_ip_adapter_bin(work / "ip-adapter-plus_sd15.bin", h94)
    clip_vision = small_clip_vision(CLIP_WIDTH)
    Image.fromarray(data.astronaut()).resize((224, 224), Image.Resampling.BICUBIC).save(work / "reference.png")
    motion = torch.load(motion_files["v1"], weights_only=True)["state_dict"]
    ip_half = {k: v.half() for k, v in h94.items()}
    checkpoint = load_file(str(comfy_base / "models/checkpoints/random_sd15.safetensors"))
    bundle = official_bundle(checkpoint, motion, ip_half)
    del checkpoint
    layout = work / "official"
    layout.mkdir()
    write_official_layout(layout, bundle, adapter.state_dict, work / "ip-adapter-plus_sd15.bin",
                          small_clip_vision_config(CLIP_WIDTH), clip_vision.get_sd(), work / "reference.png")
    del bundle

    g = torch.Generator().manual_seed(3)
    first = torch.randn(1, 4, 1, LATENT_SIDE, LATENT_SIDE, generator=g)
    inputs = {"first_frame": first, "text_cond": torch.randn(1, 77, 768, generator=g),
              "text_uncond": torch.randn(1, 77, 768, generator=g)}
    alphas = ANIMATEDIFF.alphas_cumprod()
    for t in TIMESTEPS:
        noisy = alphas[t].sqrt().float() * first.repeat(1, 1, FRAMES, 1, 1) + (1 - alphas[t]).sqrt().float() * \
            torch.randn(1, 4, FRAMES, LATENT_SIDE, LATENT_SIDE, generator=g)
        noisy[:, :, 0] = first[:, :, 0]
        inputs[f"noisy_{t}"] = noisy
    spec = {"frames": FRAMES, "timesteps": list(TIMESTEPS), "seed": 7, "noise_seed": 8, "steps": 25, "cfg": 7.5}
    official = run_official(layout, *OFFICIAL, inputs, spec)
    return {"work": work, "bundle": layout / "sd15/unet" / BUNDLE, "adapter_path": layout / "i2v_module.pth",
            "clip_vision": clip_vision, "inputs": inputs,
            "official": official}


def our_model(sd15, setup, beta_schedule="autoselect", groupnorm="autoselect", content=True):
    """The recipe's MODEL: motion modules and Content-Adapter weights from the bundle, as the official release."""
    from comfyui_i2v_adapter.kernels.adapter_file import read_adapter
    from comfyui_i2v_adapter.kernels.content_adapter_file import read_content_adapter
    from comfyui_i2v_adapter.kernels.motion_module_file import read_motion_module
    from comfyui_i2v_adapter.nodes.content_adapter_nodes import ApplyContentAdapter
    from comfyui_i2v_adapter.nodes.i2v_adapter_nodes import ApplyI2VAdapter
    from comfyui_i2v_adapter.nodes.temporal_layer_nodes import ApplyMotionModule

    work = setup["work"]
    model = ApplyMotionModule.execute(sd15[0], read_motion_module(setup["bundle"]), 1.0, beta_schedule,
                                      groupnorm).result[0]
    model = ApplyI2VAdapter.execute(model, read_adapter(setup["adapter_path"]), reference_latent(setup), 1.0).result[0]
    if content:
        image = torch.from_numpy(np.asarray(Image.open(work / "reference.png").convert("RGB")) / 255.0).float()[None]
        model = ApplyContentAdapter.execute(model, read_content_adapter(work / "ip-adapter-plus_sd15.bin", setup["bundle"]),
                                            setup["clip_vision"], image, 1.0).result[0]
    return model


def reference_latent(setup) -> dict:
    return {"samples": setup["inputs"]["first_frame"][:, :, 0] / SCALE}


def conditioning(setup):
    return [[setup["inputs"]["text_cond"], {}]], [[setup["inputs"]["text_uncond"], {}]]


def recording(model):
    """A clone that records each UNet call's input and output, [uncond, cond] in the official order."""
    import comfy.patcher_extension
    calls = []

    def record(executor, x, timesteps, context, y, control, transformer_options, **kwargs):
        out = executor(x, timesteps, context, y, control, transformer_options, **kwargs)
        order = [transformer_options["cond_or_uncond"].index(side) for side in (1, 0)]
        chunks = lambda t: torch.stack([t.chunk(len(order))[i] for i in order])
        calls.append((chunks(x), chunks(out)))
        return out
    model = model.clone()
    model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "parity", record)
    return model, calls


def our_noise_prediction(model, setup, t) -> torch.Tensor:
    """One step from the official noisy input at timestep t: a latent of zeros plus noise scaled so that the UNet
    gets exactly that input. Returns [uncond, cond] noise predictions as [2, c, f, h, w]."""
    import comfy.sample
    import comfy.samplers

    model, calls = recording(model)
    sigma = float(model.get_model_object("model_sampling").sigmas[t])
    noise = frames_first(setup["inputs"][f"noisy_{t}"]) * math.sqrt(1 + sigma ** 2) / sigma
    positive, negative = conditioning(setup)
    comfy.sample.sample_custom(model, noise, 7.5, comfy.samplers.sampler_object("euler"), torch.tensor([sigma, 0.0]),
                               positive, negative, torch.zeros_like(noise), seed=0, disable_pbar=True)
    return calls[0][1].movedim(1, 2)


def our_ddim_run(model, setup, start_from_prior=True) -> tuple[torch.Tensor, torch.Tensor]:
    """The recipe's sampling from the official mask and noise: (the UNet's first input, the final latents), scaled
    and laid out as the official's [c, f, h, w]."""
    import comfy.sample

    from comfyui_i2v_adapter.kernels.frame_similarity_prior import degrade
    from comfyui_i2v_adapter.nodes.video_latent import with_reference_first

    official = setup["official"]
    reference = reference_latent(setup)["samples"]
    keep = frames_first(official["mask"])[1:].bool()
    later = degrade(reference, keep, 9, 18.0) if start_from_prior else torch.zeros_like(keep, dtype=torch.float32)
    latent = with_reference_first(reference, later)
    model, calls = recording(model)
    positive, negative = conditioning(setup)
    samples = comfy.sample.sample(model, frames_first(official["noise"]), 25, 7.5, "ddim", "ddim_uniform", positive,
                                  negative, latent["samples"], denoise=1.0, noise_mask=latent["noise_mask"], seed=0,
                                  disable_pbar=True)
    return calls[0][0][1].movedim(0, 1), (samples * SCALE).movedim(0, 1)


@pytest.mark.parametrize("t", TIMESTEPS)
def test_the_noise_prediction_is_the_officials(sd15, setup, t):
    error = relative_error(our_noise_prediction(our_model(sd15, setup), setup, t), setup["official"][f"eps_{t}"])
    print(f"noise prediction at t = {t}: relative max error {error:.2e}")
    assert error <= TOLERANCE["noise prediction"]


def test_the_frame_similarity_prior_degrades_and_starts_as_the_official(sd15, setup):
    from comfyui_i2v_adapter.kernels.frame_similarity_prior import degrade
    official = setup["official"]
    keep = frames_first(official["mask"])[1:].bool()
    degraded = degrade(reference_latent(setup)["samples"], keep, 9, 18.0) * SCALE
    assert relative_error(degraded, frames_first(official["degraded"])[1:]) <= TOLERANCE["start"]


def test_a_whole_ddim_run_ends_where_the_officials_does(sd15, setup):
    start, final = our_ddim_run(our_model(sd15, setup), setup)
    official = setup["official"]
    start_error, final_error = relative_error(start, official["start"][0]), relative_error(final, official["final"][0])
    print(f"DDIM run: start relative max error {start_error:.2e}, final {final_error:.2e}")
    assert start_error <= TOLERANCE["start"] and final_error <= TOLERANCE["final"]
    assert torch.equal(final[:, 0], reference_latent(setup)["samples"][0] * SCALE)  # frame 0: the clean reference


def test_turning_off_any_of_the_official_settings_breaks_parity(sd15, setup):
    """Without the Content-Adapter or with GroupNorm per frame the noise prediction differs; on SD's default schedule
    or from pure noise the start (and so the whole run) does."""
    official = setup["official"]
    eps = lambda model: relative_error(our_noise_prediction(model, setup, 961), official["eps_961"])
    start = lambda model, prior=True: relative_error(our_ddim_start(model, setup, prior), official["start"][0])
    errors = {"no Content-Adapter": eps(our_model(sd15, setup, content=False)),
              "GroupNorm per frame": eps(our_model(sd15, setup, groupnorm="per frame")),
              "SD's default noise schedule": start(our_model(sd15, setup, beta_schedule="use existing")),
              "pure noise instead of the prior": start(our_model(sd15, setup), prior=False)}
    for setting, error in errors.items():
        print(f"{setting}: relative max error {error:.2e}")
    assert all(error > 1e-2 for error in errors.values()), errors


def our_ddim_start(model, setup, start_from_prior) -> torch.Tensor:
    """The first UNet input of the run (the start latent), without running the rest."""
    try:
        our_ddim_run(_stop_after_first_call(model), setup, start_from_prior)
    except _FirstCall as first:
        return first.x
    raise AssertionError("the sampler never called the UNet")


class _FirstCall(Exception):
    def __init__(self, x):
        self.x = x


def _stop_after_first_call(model):
    import comfy.patcher_extension

    def stop(executor, x, timesteps, context, y, control, transformer_options, **kwargs):
        side = transformer_options["cond_or_uncond"].index(0)
        raise _FirstCall(x.chunk(len(transformer_options["cond_or_uncond"]))[side].movedim(0, 1))
    model = model.clone()
    model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "stop", stop)
    return model
