"""Colour drift: later frames pulled back to frame 0's colours, after decoding (LAB a/b histograms) or while
sampling (latent channel statistics)."""
import kornia
import torch


def interpolate(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """numpy.interp for increasing xp: piecewise linear, constant beyond the ends."""
    if xp.numel() == 1:
        return fp.expand_as(x).clone()
    right = torch.searchsorted(xp, x).clamp(1, xp.numel() - 1)
    x0, x1, y0, y1 = xp[right - 1], xp[right], fp[right - 1], fp[right]
    weight = ((x - x0) / (x1 - x0)).clamp(0.0, 1.0)
    return y0 + weight * (y1 - y0)


def match_histogram(source: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
    """`source` remapped so its values follow `template`'s distribution: every distinct source value goes to the
    template value at the same cumulative quantile (the official release's and scikit-image's algorithm)."""
    values, inverse, counts = torch.unique(source.flatten(), return_inverse=True, return_counts=True)
    template_values, template_counts = torch.unique(template.flatten(), return_counts=True)
    quantiles = counts.cumsum(0).double() / source.numel()
    template_quantiles = template_counts.cumsum(0).double() / template.numel()
    mapped = interpolate(quantiles, template_quantiles, template_values.double())
    return mapped[inverse].reshape(source.shape).to(source.dtype)


def match_colours_to_first_frame(images: torch.Tensor) -> torch.Tensor:
    """IMAGE [F, H, W, 3+] in 0..1: each later frame's LAB a and b histograms matched to frame 0's, its lightness
    kept. Frame 0 and any channel past RGB come back unchanged."""
    lab = kornia.color.rgb_to_lab(images[..., :3].movedim(-1, 1).float())
    for frame in lab[1:]:
        for channel in (1, 2):
            frame[channel] = match_histogram(frame[channel], lab[0, channel])
    matched = images.clone()
    matched[1:, ..., :3] = kornia.color.lab_to_rgb(lab[1:], clip=True).movedim(1, -1).to(images.dtype)
    return matched


def anchor_channel_statistics(frames: torch.Tensor, reference: torch.Tensor, strength: float) -> torch.Tensor:
    """Frames [F, C, H, W] whose frames 1.. move toward the reference's per-channel spatial mean and standard
    deviation (an AdaIN toward frame 0): 0 leaves them as they are, 1 gives them exactly the reference's."""
    later = frames[1:].float()
    dims = (-2, -1)
    mean, std = later.mean(dims, keepdim=True), later.std(dims, keepdim=True, correction=0)
    reference = reference[:1].float()
    target_mean, target_std = reference.mean(dims, keepdim=True), reference.std(dims, keepdim=True, correction=0)
    anchored = (later - mean) / std.clamp_min(1e-6) * target_std + target_mean
    out = frames.clone()
    out[1:] = (later + strength * (anchored - later)).to(frames.dtype)
    return out
