"""Held-out denoising loss: the training objective on clips the run never saw, with fixed noise and a fixed grid of
timesteps, so that two models are compared on exactly the same draws."""
import torch

from ..kernels.noise_schedule import NoiseSchedule
from ..kernels.state_schedule import frame_state_weights
from .denoising import noised_video, video_loss
from .seeds import generator as seeded
from .video_unet import StateInputs

TIMESTEPS = (100, 300, 500, 700, 900)


def _state_inputs(items, features, frames: int, blend: float, roll: int) -> StateInputs:
    """Every clip's DQFormer inputs; `roll` gives each clip the instruction of the clip `roll` places on."""
    found = [features(item.pixels[0], item.instruction) for item in items]
    found = found[roll:] + found[:roll]
    stack = lambda name: torch.cat([getattr(f, name) for f in found])
    states = torch.stack([f.states for f in found])
    weights = frame_state_weights(frames, states.shape[1], blend).expand(len(found), -1, -1)
    return StateInputs(stack("instruction"), stack("instruction_mask"), states,
                       torch.stack([f.states_mask for f in found]), weights, torch.ones(len(found), dtype=torch.bool))


@torch.no_grad()
def held_out_loss(model, base, clips, schedule: NoiseSchedule, seed: int = 0, swap_first_frames: bool = False,
                  features=None, swap_instructions: bool = False, state_blend: float = 2.0, chunk: int = 8) -> float:
    """Mean loss on frames 1..F-1 over every clip and timestep. `swap_first_frames`: each video gets the next
    video's first frame instead of its own; `swap_instructions`: the next video's instruction (the controls: a
    module that uses them gets worse). `features`: the DQFormer's vision-language model, when the model has one."""
    device = next(model.parameters()).device
    items = [clips.clip(i, seeded(seed, i)) for i in range(len(clips))]
    latents = base.latents(base.encode_video(torch.stack([c.pixels for c in items]).to(device)), seeded(seed, 1))
    context = base.text([c.caption for c in items]).context
    states = None if features is None else _state_inputs(items, features, latents.shape[1], state_blend,
                                                         int(swap_instructions))
    if swap_first_frames:
        latents = torch.cat([latents.roll(-1, dims=0)[:, :1], latents[:, 1:]], dim=1)
    total = 0.0
    for j, step in enumerate(TIMESTEPS):
        noise = torch.randn(latents.shape, generator=seeded(seed, 2, j)).to(latents)
        for first in range(0, len(items), chunk):
            part = slice(first, first + chunk)
            timesteps = torch.full((latents[part].shape[0],), step, device=device)
            part_states = None if states is None else StateInputs(*(t[part].to(device) for t in vars(states).values()))
            prediction = model(noised_video(latents[part], noise[part], timesteps, schedule), timesteps, context[part],
                               states=part_states)
            total += video_loss(prediction, noise[part]).sum().item()
    return total / (len(items) * len(TIMESTEPS))
