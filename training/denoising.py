"""The training objective, as the nodes run the model at inference: frame 0 of every video enters the UNet as the
clean reference latent at the same timestep as the noised later frames, and the loss covers frames 1..F-1 only. The
noise follows the schedule the base and its motion modules were trained with (kernels.noise_schedule)."""
from functools import cache

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler

from ..kernels.noise_schedule import NoiseSchedule


@cache
def scheduler_for(schedule: NoiseSchedule) -> DDPMScheduler:
    """diffusers' scheduler of the schedule (epsilon prediction), whose add_noise the objective uses."""
    return DDPMScheduler(num_train_timesteps=schedule.timesteps, beta_start=schedule.linear_start,
                         beta_end=schedule.linear_end, beta_schedule=schedule.diffusers_name,
                         prediction_type="epsilon")


def noised_video(latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor,
                 schedule: NoiseSchedule) -> torch.Tensor:
    """latents, noise [videos, frames, C, h, w]; timesteps [videos]. Frames 1.. noised, frame 0 clean."""
    noisy = scheduler_for(schedule).add_noise(latents, noise, timesteps.to(latents.device))
    return torch.cat([latents[:, :1], noisy[:, 1:]], dim=1)


def video_loss(prediction: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the predicted noise on frames 1..F-1, per video."""
    return F.mse_loss(prediction[:, 1:].float(), noise[:, 1:].float(), reduction="none").mean(dim=(1, 2, 3, 4))


def draw_noise(latents: torch.Tensor, generator: torch.Generator, schedule: NoiseSchedule
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """(noise like `latents`, one timestep per video), drawn from `generator` on its device."""
    noise = torch.randn(latents.shape, generator=generator, device=generator.device).to(latents)
    steps = torch.randint(0, schedule.timesteps, (latents.shape[0],), generator=generator, device=generator.device)
    return noise, steps.to(latents.device)
