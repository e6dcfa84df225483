"""Tier 1: the Frame Similarity Prior's degradation D(x) and schedule arithmetic in kernels/."""
import math

import pytest
import torch

from comfyui_i2v_adapter.kernels.frame_similarity_prior import (check_degradation, check_t0, degraded_frames,
                                                                 gaussian_blur, sampler_start)

Z = 6.0  # standard errors: a false alarm below 1e-8 per element, so none over the few thousand tested here


def reference_latent(seed=0, shape=(1, 4, 12, 10)):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def gaussian_blur_by_hand(x, kernel, sigma):
    """The official code's torchvision GaussianBlur: a normalised exp(-d²/2σ²) kernel, reflected borders."""
    d = torch.arange(kernel, dtype=torch.float64) - (kernel - 1) / 2
    taps = torch.exp(-d ** 2 / (2 * sigma ** 2))
    taps = (taps / taps.sum()).float()
    channels = x.shape[1]
    padded = torch.nn.functional.pad(x, [kernel // 2] * 4, mode="reflect")
    rows = torch.nn.functional.conv2d(padded, taps.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
    return torch.nn.functional.conv2d(rows, taps.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)


@pytest.mark.parametrize("kernel, sigma", [(9, 18.0), (3, 0.7), (5, 2.0)])
def test_blur_is_the_official_gaussian_blur(kernel, sigma):
    x = reference_latent()
    assert torch.allclose(gaussian_blur(x, kernel, sigma), gaussian_blur_by_hand(x, kernel, sigma), atol=1e-5)


def test_p1_keeps_the_reference_and_p0_blurs_it_everywhere():
    x = reference_latent()
    assert torch.equal(degraded_frames(x, 5, 1.0, 9, 18.0, seed=3), x.expand(5, -1, -1, -1))
    assert torch.equal(degraded_frames(x, 5, 0.0, 9, 18.0, seed=3), gaussian_blur(x, 9, 18.0).expand(5, -1, -1, -1))


def test_the_same_seed_gives_the_same_frames_and_another_seed_other_masks():
    x = reference_latent()
    first = degraded_frames(x, 6, 0.5, 9, 18.0, seed=11)
    assert torch.equal(first, degraded_frames(x, 6, 0.5, 9, 18.0, seed=11))
    assert not torch.equal(first, degraded_frames(x, 6, 0.5, 9, 18.0, seed=12))


@pytest.mark.parametrize("p", [0.5, 0.2, 0.9])
def test_each_element_keeps_the_reference_with_probability_p_independently(p):
    """D(x) is x or blur(x) per element: the fraction of frames keeping x is Binomial(F, p) / F in every element,
    which fixes D's per-element mean p·x + (1-p)·blur(x) and variance p(1-p)(x - blur(x))²; masks of consecutive
    frames and of neighbouring elements are uncorrelated."""
    frames = 4000
    x = reference_latent()
    blurred = gaussian_blur(x, 9, 18.0)
    d = degraded_frames(x, frames, p, 9, 18.0, seed=5)
    keep = (d == x).float()
    assert torch.equal(d, torch.where(keep.bool(), x, blurred))
    standard_error = math.sqrt(p * (1 - p) / frames)
    assert (keep.mean(0) - p).abs().max() < Z * standard_error
    mean, variance = d.mean(0), d.var(0, correction=0)
    spread = (x - blurred)[0].abs()
    assert ((mean - (p * x + (1 - p) * blurred)[0]).abs() <= Z * standard_error * spread + 1e-6).all()
    assert ((variance - p * (1 - p) * spread ** 2).abs() <= Z * standard_error * spread ** 2 + 1e-6).all()
    centred = keep - keep.mean(0)
    pairs = centred.numel() // frames * (frames - 1)
    frame_correlation = (centred[1:] * centred[:-1]).sum() / pairs / (p * (1 - p))
    element_correlation = (centred[..., 1:] * centred[..., :-1]).mean() / (p * (1 - p))
    assert abs(frame_correlation) < Z / math.sqrt(pairs)
    assert abs(element_correlation) < Z / math.sqrt(centred[..., 1:].numel())


@pytest.mark.parametrize("steps", [1, 2, 7, 10, 25, 30, 49, 1000, 10000])
@pytest.mark.parametrize("t0", [1.0, 0.95, 0.9, 0.8, 0.7, 0.6, 0.37, 0.1, 0.01])
def test_sampler_start_runs_the_last_round_steps_t0_steps_of_the_full_schedule(steps, t0):
    run, denoise = sampler_start(steps, t0)
    assert run == max(1, min(steps, math.floor(steps * t0 + 0.5)))
    if run == steps:
        assert denoise == 1.0
    else:
        assert int(run / denoise) == steps  # KSampler and BasicScheduler: the full schedule, its last run + 1 sigmas
        assert round(steps * denoise) == run  # SplitSigmasDenoise on the full schedule: the same split
        assert abs(denoise - run / steps) < 1e-12


def test_a_t0_that_rounds_to_no_step_runs_one_and_says_so(caplog):
    assert sampler_start(25, 0.01) == (1, 0.04)
    assert "t0 0.01 of 25 steps rounds to no step; one step runs" in caplog.text


@pytest.mark.parametrize("t0", [0.0, -0.2, 1.01])
def test_t0_outside_0_1_is_refused(t0):
    with pytest.raises(ValueError, match=rf"t0 {t0} is outside \(0, 1\].*use a value in \(0, 1\]"):
        check_t0(t0)


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_p_outside_0_1_is_refused(p):
    with pytest.raises(ValueError, match=rf"p {p} is outside \[0, 1\]"):
        check_degradation(p, 9, 18.0)


@pytest.mark.parametrize("kernel, fix", [(8, "use 7 or 9"), (0, "use 1 or 3"), (-3, "use 1 or 3")])
def test_an_even_or_non_positive_blur_kernel_is_refused(kernel, fix):
    with pytest.raises(ValueError, match=rf"blur_kernel {kernel} must be a positive odd number.*{fix}"):
        degraded_frames(reference_latent(), 2, 0.5, kernel, 18.0, seed=0)


def test_a_non_positive_blur_sigma_is_refused():
    with pytest.raises(ValueError, match="blur_sigma 0.0 must be positive"):
        check_degradation(0.5, 9, 0.0)


def test_a_blur_kernel_larger_than_the_latent_is_refused():
    with pytest.raises(ValueError, match=r"blur_kernel 9 is too large for a 4×4 input.*at most 7"):
        degraded_frames(reference_latent(shape=(1, 4, 4, 4)), 2, 0.5, 9, 18.0, seed=0)
