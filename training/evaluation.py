"""Held-out denoising loss: the training objective on clips the run never saw, with fixed noise and a fixed grid of
timesteps, so that two models are compared on exactly the same draws."""
import torch

from ..kernels.noise_schedule import NoiseSchedule
from .denoising import noised_video, video_loss
from .seeds import generator as seeded

TIMESTEPS = (100, 300, 500, 700, 900)


@torch.no_grad()
def held_out_loss(model, base, clips, schedule: NoiseSchedule, seed: int = 0, swap_first_frames: bool = False,
                  chunk: int = 8) -> float:
    """Mean loss on frames 1..F-1 over every clip and timestep. `swap_first_frames`: each video gets the next
    video's first frame instead of its own (the control: an adapter that uses frame 0 gets worse)."""
    device = next(model.parameters()).device
    items = [clips.clip(i, seeded(seed, i)) for i in range(len(clips))]
    latents = base.latents(base.encode_video(torch.stack([c.pixels for c in items]).to(device)), seeded(seed, 1))
    context = base.text([c.caption for c in items]).context
    if swap_first_frames:
        latents = torch.cat([latents.roll(-1, dims=0)[:, :1], latents[:, 1:]], dim=1)
    total = 0.0
    for j, step in enumerate(TIMESTEPS):
        noise = torch.randn(latents.shape, generator=seeded(seed, 2, j)).to(latents)
        for first in range(0, len(items), chunk):
            part = slice(first, first + chunk)
            timesteps = torch.full((latents[part].shape[0],), step, device=device)
            prediction = model(noised_video(latents[part], noise[part], timesteps, schedule), timesteps, context[part])
            total += video_loss(prediction, noise[part]).sum().item()
    return total / (len(items) * len(TIMESTEPS))
