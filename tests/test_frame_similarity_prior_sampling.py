"""Tier 2: the Frame Similarity Prior and the colour anchor inside a real ComfyUI, sampling a random SD1.5."""
import math

import pytest
import torch

from comfyui_i2v_adapter.kernels.frame_similarity_prior import gaussian_blur
from comfyui_i2v_adapter.tests.support.graphs import FRAMES, SIZE, apply_adapter, encode, random_adapter, sample
from comfyui_i2v_adapter.tests.support.images import astronaut

pytestmark = pytest.mark.comfyui
STEPS = 10
Z = 6.0  # standard errors: a false alarm below 1e-8 per pixel and statistic
SCHEDULERS = ["simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal", "linear_quadratic",
              "kl_optimal"]  # ComfyUI v0.3.64's


class FirstUNetCall(Exception):
    """Raised by the probe to stop sampling once the first UNet input is seen."""


def prior(vae, frames=FRAMES, steps=STEPS, t0=1.0, p=0.5, blur_kernel=9, blur_sigma=18.0, space="latent", seed=0,
          image=None, width=SIZE, height=SIZE):
    from comfyui_i2v_adapter.nodes.frame_similarity_prior import FrameSimilarityPrior
    image = astronaut() if image is None else image
    return FrameSimilarityPrior.execute(vae, image, frames, width, height, steps, t0, p, blur_kernel, blur_sigma,
                                        space, seed).result


def with_unet_probe(model, probe):
    import comfy.patcher_extension
    probed = model.clone()
    probed.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "probe", probe)
    return probed


def first_unet_input(model, clip, latent, steps, denoise, seed=0, scheduler="normal"):
    """The first UNet input (cond chunk) and its sigma, as KSampler (cfg 3) runs it, without running the UNet."""
    import nodes
    seen = {}

    def probe(executor, x, timesteps, context, y, control, transformer_options, **kwargs):
        seen["x"], seen["sigma"] = x[:latent["samples"].shape[0]].clone(), float(transformer_options["sigmas"][0])
        raise FirstUNetCall
    with pytest.raises(FirstUNetCall):
        nodes.common_ksampler(with_unet_probe(model, probe), seed, steps, 3.0, "euler", scheduler,
                              encode(clip, "an astronaut"), encode(clip, "blurry"), latent, denoise=denoise)
    return seen["x"], seen["sigma"]


def sampler_noise(latent, seed):
    import comfy.sample
    return comfy.sample.prepare_noise(latent["samples"], seed)


def schedule(model, scheduler, steps):
    import comfy.samplers
    return comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), scheduler, steps)


@pytest.mark.parametrize("t0", [0.8, 0.6, 0.3])
def test_the_sampler_starts_from_the_degraded_reference_plus_the_schedules_sigma_at_t0(sd15, t0):
    """VE form: x = D(x) + σ0·ε with σ0 the full schedule's sigma at step steps - round(steps·t0)."""
    model, clip, vae = sd15
    latent, steps, denoise = prior(vae, t0=t0)
    x, sigma = first_unet_input(model, clip, latent, steps, denoise, seed=7)
    sigma0 = float(schedule(model, "normal", STEPS)[STEPS - steps])
    assert steps == round(STEPS * t0) and sigma == pytest.approx(sigma0, rel=1e-6)
    start = x * math.sqrt(sigma0 ** 2 + 1)  # undo the UNet input scaling
    expected = model.model.process_latent_in(latent["samples"]) + sigma0 * sampler_noise(latent, 7)
    assert torch.allclose(start[1:], expected[1:], atol=1e-5)


def test_t0_1_is_comfyuis_own_full_denoise_start_where_the_image_survives_at_the_last_alpha(sd15):
    """At the maximum sigma ComfyUI starts from latent + sqrt(1 + σ²)·ε: the UNet sees α_T·D(x) + ε."""
    model, clip, vae = sd15
    latent, steps, denoise = prior(vae, t0=1.0)
    assert (steps, denoise) == (STEPS, 1.0)
    x, sigma = first_unet_input(model, clip, latent, steps, denoise, seed=3)
    alpha = 1 / math.sqrt(1 + sigma ** 2)
    assert sigma == pytest.approx(float(model.get_model_object("model_sampling").sigma_max))
    expected = alpha * model.model.process_latent_in(latent["samples"]) + sampler_noise(latent, 3)
    assert torch.allclose(x[1:], expected[1:], atol=1e-5)


def test_t0_1_with_ddim_uniform_is_the_official_start_at_timestep_961(sd15):
    """The official release noises at DDIM's first timestep (961 of 25 steps); ComfyUI's ddim_uniform starts there,
    below the maximum sigma, so the start is D(x) + σ(961)·ε: the official add_noise divided by α."""
    model, clip, vae = sd15
    latent, steps, denoise = prior(vae, steps=25, t0=1.0)
    x, sigma = first_unet_input(model, clip, latent, steps, denoise, seed=5, scheduler="ddim_uniform")
    model_sampling = model.get_model_object("model_sampling")
    assert int(model_sampling.timestep(torch.tensor(sigma))) == 961
    expected = model.model.process_latent_in(latent["samples"]) + sigma * sampler_noise(latent, 5)
    assert torch.allclose(x[1:] * math.sqrt(sigma ** 2 + 1), expected[1:], atol=1e-5)


@pytest.mark.parametrize("t0", [0.1, 0.6])
def test_starting_latents_have_the_priors_mean_and_variance_per_pixel(sd15, t0):
    """Over masks and noises (seeds × frames, all independent), each pixel of x_t0 / α has mean s·(p·x + (1-p)·b)
    and variance σ0² + s²·p(1-p)(x - b)², x the reference latent, b its blur, s the latent scale. t0 = 0.1 starts
    at the last sigma, where the mask dominates the variance; t0 = 0.6 where the noise does."""
    model, clip, vae = sd15
    frames, seeds, p = 129, 6, 0.5
    starts = []
    for seed in range(seeds):
        latent, steps, denoise = prior(vae, frames=frames, t0=t0, p=p, seed=seed)
        x, sigma = first_unet_input(model, clip, latent, steps, denoise, seed=1000 + seed)
        starts.append(x[1:] * math.sqrt(sigma ** 2 + 1))
    starts = torch.cat(starts).double()
    count = starts.shape[0]
    reference = model.model.process_latent_in(latent["samples"][:1]).double()
    blurred = gaussian_blur(reference, 9, 18.0)
    gap = reference - blurred
    mean = p * reference + (1 - p) * blurred
    variance = sigma ** 2 + p * (1 - p) * gap ** 2
    # The fourth central moment of the two-Gaussian mixture sets the spread of the sample variance.
    fourth = sum(weight * (d ** 4 + 6 * d ** 2 * sigma ** 2 + 3 * sigma ** 4)
                 for weight, d in ((p, (1 - p) * gap), (1 - p, -p * gap)))
    assert ((starts.mean(0) - mean).abs() <= Z * (variance / count).sqrt()).all()
    assert ((starts.var(0) - variance).abs() <= Z * ((fourth - variance ** 2) / count).sqrt()).all()
    mask_share = (p * (1 - p) * gap ** 2).sum() / variance.sum()
    assert mask_share > 0.5 if t0 == 0.1 else mask_share < 0.05


def test_the_same_seed_gives_the_same_latent(sd15):
    _, _, vae = sd15
    first, again, other = prior(vae, seed=4)[0], prior(vae, seed=4)[0], prior(vae, seed=5)[0]
    assert torch.equal(first["samples"], again["samples"]) and torch.equal(first["noise_mask"], again["noise_mask"])
    assert not torch.equal(first["samples"][1:], other["samples"][1:])
    assert torch.equal(first["samples"][0], other["samples"][0])
    assert first["noise_mask"][0].eq(0).all() and first["noise_mask"][1:].eq(1).all()


def test_pixel_space_degrades_the_picture_then_encodes_each_frame(sd15):
    from comfyui_i2v_adapter.kernels.frame_similarity_prior import degraded_frames
    _, _, vae = sd15
    latent = prior(vae, space="pixel", blur_kernel=31, blur_sigma=18.0, seed=2)[0]["samples"]
    pixels = degraded_frames(astronaut_at_size().movedim(-1, 1), FRAMES - 1, 0.5, 31, 18.0, seed=2).movedim(1, -1)
    assert torch.allclose(latent[1:], vae.encode(pixels), atol=1e-5)
    assert torch.equal(latent[0], vae.encode(astronaut_at_size())[0])


def astronaut_at_size():
    from comfyui_i2v_adapter.nodes.video_latent import reference_image
    return reference_image(astronaut(), SIZE, SIZE, "test")


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_ksampler_and_basic_scheduler_start_at_the_full_schedules_sigma_at_t0(sd15, scheduler):
    """KSampler (steps, denoise) and BasicScheduler (for SamplerCustom) fed the node's outputs run exactly the
    last round(steps·t0) steps of the full schedule, for every scheduler. At t0 = 1 (denoise 1) KSampler runs the
    whole schedule and BasicScheduler its last steps + 1 sigmas, which differ only where ddim_uniform makes the
    schedule longer than `steps` (7 and 30 here): ComfyUI's own behaviour."""
    import comfy.samplers
    from comfy_extras.nodes_custom_sampler import BasicScheduler

    from comfyui_i2v_adapter.kernels.frame_similarity_prior import sampler_start
    model = sd15[0]
    for full in (7, 25, 30):
        for t0 in (1.0, 0.9, 0.8, 0.7, 0.6, 0.37, 0.05):
            steps, denoise = sampler_start(full, t0)
            whole = schedule(model, scheduler, full)
            ksampler = comfy.samplers.KSampler(model, steps, "cpu", "euler", scheduler, denoise).sigmas
            basic = BasicScheduler().get_sigmas(model, scheduler, steps, denoise)[0]
            assert torch.equal(ksampler, whole if denoise == 1.0 else whole[-(steps + 1):]), (full, t0)
            assert torch.equal(basic, whole[-(steps + 1):]), (full, t0)


def test_every_scheduler_of_this_comfyui_is_covered(comfyui):
    import comfy.samplers
    assert set(comfy.samplers.SCHEDULER_NAMES) == set(SCHEDULERS)


@pytest.mark.parametrize("t0", [1.0, 0.6])
def test_model_calls_at_t0_are_the_schedulers_count(sd15, t0):
    model, clip, vae = sd15
    full = 5
    latent, steps, denoise = prior(vae, frames=2, steps=full, t0=t0)
    calls = []

    def count(executor, *args, **kwargs):
        calls.append(1)
        return executor(*args, **kwargs)
    sample(with_unet_probe(model, count), clip, latent, steps=steps, denoise=denoise)
    assert len(calls) == steps == round(full * t0) == len(schedule(model, "normal", full)[-(steps + 1):]) - 1


def test_prior_with_the_i2v_adapter_keeps_frame0_exact(sd15):
    model, clip, vae = sd15
    latent, steps, denoise = prior(vae, t0=0.6, steps=4)
    sampled = sample(apply_adapter(model, random_adapter(), latent), clip, latent, steps=steps, denoise=denoise)
    assert torch.equal(sampled[0], latent["samples"][0])
    assert all((sampled[i] - latent["samples"][i]).abs().max() > 1e-3 for i in range(1, FRAMES))


def anchored(model, latent, strength):
    from comfyui_i2v_adapter.nodes.colour_drift import AnchorLatentColour
    return AnchorLatentColour.execute(model, latent, strength).result[0]


def channel_gap(sampled, reference):
    """Largest gap between a later frame's per-channel mean or std and frame 0's."""
    statistics = lambda t: torch.cat([t.mean((-2, -1)), t.std((-2, -1), correction=0)], -1)
    return (statistics(sampled[1:]) - statistics(reference[:1])).abs().max().item()


def test_the_colour_anchor_pulls_later_frames_channel_statistics_to_frame0s(sd15):
    """Euler's last step returns the last x0 prediction, so at strength 1 every later frame ends with frame 0's
    channel statistics; 0 is the plain model, bit for bit; 0.5 lies between."""
    model, clip, vae = sd15
    latent, steps, denoise = prior(vae, frames=3, t0=0.5, steps=2)
    reference = latent["samples"][:1]
    plain = sample(model, clip, latent, steps=steps, denoise=denoise)
    assert torch.equal(sample(anchored(model, latent, 0.0), clip, latent, steps=steps, denoise=denoise), plain)
    full = sample(anchored(model, latent, 1.0), clip, latent, steps=steps, denoise=denoise)
    half = sample(anchored(model, latent, 0.5), clip, latent, steps=steps, denoise=denoise)
    assert channel_gap(full, reference) < 1e-4
    assert channel_gap(full, reference) < channel_gap(half, reference) < channel_gap(plain, reference)


def test_the_colour_anchor_refuses_a_reference_of_another_size(sd15):
    model, clip, vae = sd15
    small, steps, denoise = prior(vae, steps=2)
    large = prior(vae, steps=2, width=96, height=96)[0]
    with pytest.raises(ValueError, match="reference latent is 64×64 px .* but the video latent is 96×96 px"):
        sample(anchored(model, small, 1.0), clip, large, steps=steps, denoise=denoise)


def test_the_colour_match_node_matches_decoded_frames_to_frame0(sd15):
    from comfyui_i2v_adapter.kernels.colour_match import match_colours_to_first_frame
    from comfyui_i2v_adapter.nodes.colour_drift import ColourMatch
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(20, 16, 16, 3, generator=generator) * torch.linspace(0.5, 1, 20).view(-1, 1, 1, 1)
    matched = ColourMatch.execute(images).result[0]
    assert torch.allclose(matched[17:], match_colours_to_first_frame(torch.cat([images[:1], images[17:]]))[1:])
    assert torch.allclose(matched[:17], match_colours_to_first_frame(images[:17]))


def test_the_colour_match_node_matches_every_frame_to_a_colour_reference(sd15):
    """A long video's clips matched to the first clip's picture (resized and centre-cropped to the frames), frame 0
    included: the colours a clip's frame 0 picked up through the VAE are not handed on."""
    from comfyui_i2v_adapter.kernels.colour_match import match_colours_to_first_frame
    from comfyui_i2v_adapter.nodes.colour_drift import ColourMatch
    from comfyui_i2v_adapter.nodes.video_latent import fitted_picture
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(20, 16, 24, 3, generator=generator) * torch.linspace(0.5, 1, 20).view(-1, 1, 1, 1)
    picture = torch.rand(1, 40, 30, 3, generator=generator) ** 2
    matched = ColourMatch.execute(images, picture).result[0]
    template = fitted_picture(picture, 24, 16, "test")
    assert torch.allclose(matched[:16], match_colours_to_first_frame(torch.cat([template, images[:16]]))[1:])
    assert torch.allclose(matched[16:], match_colours_to_first_frame(torch.cat([template, images[16:]]))[1:])
    assert not torch.allclose(matched[0], images[0], atol=1e-2)


def test_the_mask_seed_never_changes_by_itself(comfyui):
    """No control widget: the masks stay the same from one queue to the next until the user changes the seed."""
    from comfyui_i2v_adapter.nodes.frame_similarity_prior import FrameSimilarityPrior
    (seed,) = [i for i in FrameSimilarityPrior.define_schema().inputs if i.id == "mask_seed"]
    assert seed.control_after_generate is False


def test_the_colour_match_node_takes_frames_of_any_size(sd15):
    """A pixel-only node: frames cropped or upscaled to sizes the VAE never made are matched too."""
    from comfyui_i2v_adapter.nodes.colour_drift import ColourMatch
    generator = torch.Generator().manual_seed(2)
    images = torch.rand(3, 15, 21, 3, generator=generator)
    matched = ColourMatch.execute(images, torch.rand(1, 40, 30, 3, generator=generator)).result[0]
    assert matched.shape == images.shape and not torch.allclose(matched, images, atol=1e-2)


# Bad inputs, each with the message that says what to change.

def test_t0_outside_0_1_is_refused(sd15):
    with pytest.raises(ValueError, match=r"t0 0.0 is outside \(0, 1\]"):
        prior(sd15[2], t0=0.0)


def test_p_outside_0_1_is_refused(sd15):
    with pytest.raises(ValueError, match=r"p 1.5 is outside \[0, 1\]"):
        prior(sd15[2], p=1.5)


@pytest.mark.parametrize("kernel", [8, 0, -1])
def test_an_even_or_non_positive_blur_kernel_is_refused(sd15, kernel):
    with pytest.raises(ValueError, match=rf"blur_kernel {kernel} must be a positive odd number"):
        prior(sd15[2], blur_kernel=kernel)


def test_a_batch_of_reference_images_uses_the_first_and_says_so(sd15, caplog):
    images = torch.cat([astronaut(), astronaut().flip(1)])
    latent = prior(sd15[2], image=images)[0]
    assert "I2V Frame Similarity Prior: the image batch holds 2 images; the first one is the reference." in caplog.text
    assert torch.equal(latent["samples"][0], prior(sd15[2])[0]["samples"][0])


def test_a_size_that_is_not_a_multiple_of_the_vae_factor_is_refused(sd15):
    with pytest.raises(ValueError, match="width 68 is not a multiple of 8 .* use 64 or 72"):
        prior(sd15[2], width=68)
