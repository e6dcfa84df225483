"""A video from its first frame and caption with the weights being trained, as the recipe graph samples it: the
later frames start from the Frame Similarity Prior's degraded first frame at the noisiest step (t0 = 1, as the
official release), then DDIM with classifier-free guidance, frame 0 staying the clean reference throughout."""
import torch
from diffusers import DDIMScheduler

from ..kernels.frame_similarity_prior import DEFAULT_BLUR_KERNEL, DEFAULT_BLUR_SIGMA, DEFAULT_P, degraded_frames
from ..kernels.noise_schedule import NoiseSchedule


def ddim_for(schedule: NoiseSchedule, steps: int) -> DDIMScheduler:
    """SD's DDIM settings on the schedule the model trains with."""
    scheduler = DDIMScheduler(num_train_timesteps=schedule.timesteps, beta_start=schedule.linear_start,
                              beta_end=schedule.linear_end, beta_schedule=schedule.diffusers_name,
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1, prediction_type="epsilon")
    scheduler.set_timesteps(steps)
    return scheduler


def prior_start(first: torch.Tensor, frames: int, alpha_bar: torch.Tensor, seed: int) -> torch.Tensor:
    """x_T of frames 1..F-1 [1, F-1, C, h, w]: sqrt(ᾱ)·D(first) + sqrt(1 − ᾱ)·ε
    (kernels/frame_similarity_prior.py)."""
    height, width = first.shape[-2:]
    kernel = min(DEFAULT_BLUR_KERNEL, 2 * min(height, width) - 1)  # the reflected border's limit on small latents
    degraded = degraded_frames(first.float().cpu(), frames - 1, DEFAULT_P, kernel, DEFAULT_BLUR_SIGMA, seed)
    noise = torch.randn(degraded.shape, generator=torch.Generator().manual_seed(seed))
    return (alpha_bar.sqrt() * degraded + (1 - alpha_bar).sqrt() * noise).unsqueeze(0).to(first)


@torch.no_grad()
def sample_video(model, first: torch.Tensor, context: torch.Tensor, frames: int, schedule: NoiseSchedule,
                 steps: int, cfg: float, seed: int, added: dict | None = None,
                 image_tokens: torch.Tensor | None = None) -> torch.Tensor:
    """Latents [1, F, C, h, w] of one video. `first`: frame 0's latent [1, C, h, w]; `context`, `added`,
    `image_tokens`: the conditional and the unconditional side stacked (2 rows each)."""
    scheduler = ddim_for(schedule, steps)
    later = prior_start(first, frames, scheduler.alphas_cumprod[scheduler.timesteps[0]], seed)
    for t in scheduler.timesteps:
        video = torch.cat([first[:, None], later], dim=1).expand(2, -1, -1, -1, -1)
        conditional, unconditional = model(video, t.repeat(2).to(first.device), context, added, image_tokens).float()
        guided = unconditional + cfg * (conditional - unconditional)
        later = scheduler.step(guided[None, 1:], t, later.float()).prev_sample.to(first)
    return torch.cat([first[:, None], later], dim=1)
