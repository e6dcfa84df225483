"""The Frame Similarity Prior (I2V-Adapter paper, sec. 3.3): every later frame starts from the degraded reference.

    x_t0^i ~ N(α_t0 D(x), σ_t0² I),    D(x) = M_p ∘ x + (1 − M_p) ∘ GaussianBlur(x)

with M_p a Bernoulli(p) mask drawn anew for every frame and every element, 1 keeping the original. Divided by
α_t0 this is `D(x) + σ·ε` with σ = σ_VP/α, the variance-exploding form the ComfyUI samplers start from
(`latent + σ·noise`), so the degraded frames are all a sampler needs: it adds the noise of its first sigma.
"""
import logging
import math

import kornia
import torch

DEFAULT_P, DEFAULT_BLUR_KERNEL, DEFAULT_BLUR_SIGMA, DEFAULT_T0 = 0.5, 9, 18.0, 1.0  # the official release


def check_t0(t0: float) -> None:
    if not 0.0 < t0 <= 1.0:
        raise ValueError(f"t0 {t0} is outside (0, 1]: it is the fraction of the noise schedule that runs "
                         f"(1 = start from the noisiest step, as the official release); use a value in (0, 1].")


def check_degradation(p: float, blur_kernel: int, blur_sigma: float) -> None:
    """Refuses settings outside D's domain, naming the input and what to use instead."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p {p} is outside [0, 1]: it is the probability that an element keeps the sharp "
                         f"reference (1 = no blur, 0 = fully blurred); use a value in [0, 1].")
    if blur_kernel <= 0 or blur_kernel % 2 == 0:
        odd = blur_kernel - 1 if blur_kernel > 0 else 1
        raise ValueError(f"blur_kernel {blur_kernel} must be a positive odd number (the Gaussian kernel is centred "
                         f"on each element); use {odd} or {odd + 2}.")
    if not blur_sigma > 0.0:
        raise ValueError(f"blur_sigma {blur_sigma} must be positive; the official release uses {DEFAULT_BLUR_SIGMA}.")


def sampler_start(steps: int, t0: float) -> tuple[int, float]:
    """(steps, denoise) that make ComfyUI's KSampler or BasicScheduler run the last round(steps·t0) steps of the full
    `steps`-step schedule. Both build a schedule of int(steps / denoise) steps and keep its last steps + 1 sigmas,
    so int(run / denoise) must be exactly `steps`; round(steps·denoise) is then `run` too (SplitSigmasDenoise)."""
    check_t0(t0)
    run = min(steps, math.floor(steps * t0 + 0.5))
    if run < 1:
        logging.warning("Frame Similarity Prior: t0 %s of %d steps rounds to no step; one step runs (t0 = %s).",
                        t0, steps, 1 / steps)
        run = 1
    if run == steps:
        return steps, 1.0
    denoise = run / steps
    while int(run / denoise) < steps:  # run / (run / steps) can fall an ulp short of steps
        denoise = math.nextafter(denoise, 0.0)
    return run, denoise


def gaussian_blur(x: torch.Tensor, kernel: int, sigma: float) -> torch.Tensor:
    """kornia's Gaussian blur with reflected borders (as torchvision's GaussianBlur in the official code)."""
    height, width = x.shape[-2:]
    if kernel // 2 >= min(height, width):
        raise ValueError(f"blur_kernel {kernel} is too large for a {width}×{height} input: the reflected border "
                         f"needs a kernel of at most {2 * min(height, width) - 1}; use a smaller blur_kernel or a "
                         f"larger image.")
    return kornia.filters.gaussian_blur2d(x, (kernel, kernel), (sigma, sigma), border_type="reflect")


def degraded_frames(reference: torch.Tensor, frames: int, p: float, blur_kernel: int, blur_sigma: float,
                    seed: int) -> torch.Tensor:
    """D(x) for `frames` frames of the reference [1, C, H, W]: a fresh mask per frame and element, seeded."""
    check_degradation(p, blur_kernel, blur_sigma)
    generator = torch.Generator().manual_seed(seed)
    keep = torch.rand((frames,) + tuple(reference.shape[1:]), generator=generator) < p
    return degrade(reference, keep, blur_kernel, blur_sigma)


def degrade(reference: torch.Tensor, keep: torch.Tensor, blur_kernel: int, blur_sigma: float) -> torch.Tensor:
    """M ∘ x + (1 − M) ∘ GaussianBlur(x) for each mask M of `keep` [frames, C, H, W] (True keeps the original)."""
    reference = reference[:1].float()
    blurred = gaussian_blur(reference, blur_kernel, blur_sigma)
    return torch.where(keep.to(reference.device), reference, blurred)
