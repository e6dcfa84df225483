"""A synthetic video world for the demonstration and the learning tests: discs and squares that keep their colour
and stripes while they glide and bounce over a plain background. The captions name the shapes only, so the first
frame is the only place a later frame's colours can come from."""
import math

import torch

from .seeds import generator as seeded
from .video_clips import Clip

SHAPES = ("disc", "square")


def render_clip(generator: torch.Generator, frames: int, size: int) -> tuple[torch.Tensor, str]:
    """[frames, 3, size, size] in [-1, 1], and the caption."""
    uniform = lambda *shape: torch.rand(shape, generator=generator)
    y, x = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    video = (uniform(3, 1, 1) * 1.6 - 0.8).expand(frames, 3, size, size).clone()
    names = []
    for _ in range(1 + int(uniform(1) < 0.5)):
        shape = SHAPES[int(uniform(1) * len(SHAPES))]
        radius = size * (0.14 + 0.08 * uniform(1))
        colour = uniform(3, 1, 1) * 2 - 1
        stripe_angle, stripe_period = uniform(1) * math.pi, size * (0.15 + 0.1 * uniform(1))
        position = radius + uniform(2) * (size - 2 * radius)
        velocity = (uniform(2) * 2 - 1) * size * 0.06
        for f in range(frames):
            cx, cy = position
            if shape == "disc":
                inside = ((x - cx) ** 2 + (y - cy) ** 2).sqrt() < radius
            else:
                inside = ((x - cx).abs() < radius) & ((y - cy).abs() < radius)
            along = (x - cx) * torch.cos(stripe_angle) + (y - cy) * torch.sin(stripe_angle)
            stripes = 0.35 * torch.sign(torch.sin(2 * math.pi * along / stripe_period))
            video[f] = torch.where(inside, (colour + stripes).clamp(-1, 1), video[f])
            position = position + velocity
            bounced = (position < radius) | (position > size - radius)  # reflect off the edges
            velocity = torch.where(bounced, -velocity, velocity)
            position = position.clamp(radius, size - radius)
        names.append(shape)
    caption = f"a {names[0]}" + (f" and a {names[1]}" if len(names) > 1 else "") + " moving"
    return video, caption


class SyntheticClips:
    """`count` clips of the world, clip i always the same for a given `seed` (held-out sets use another seed)."""

    def __init__(self, count: int, frames: int, size: int, seed: int = 0):
        self.count, self.frames, self.size, self.seed = count, frames, size, seed

    def __len__(self) -> int:
        return self.count

    def describe(self, index: int) -> str:
        return f"synthetic clip {index}"

    def identity(self, index: int) -> str:
        return f"synthetic world {self.seed}, clip {index} of {self.frames}x{self.size}px"

    def placeholder(self) -> Clip:
        return Clip(torch.zeros(self.frames, 3, self.size, self.size), "", torch.zeros(6))

    def clip(self, index: int, generator: torch.Generator | None = None) -> Clip:
        pixels, caption = render_clip(seeded(self.seed, index), self.frames, self.size)
        size = float(self.size)
        return Clip(pixels, caption, torch.tensor([size, size, 0.0, 0.0, size, size]))
