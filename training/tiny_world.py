"""A synthetic video world for the demonstration and the learning tests: discs and squares that keep their colour
and stripes while they glide and bounce over a plain background. The captions name the shapes only, so the first
frame is the only place a later frame's colours can come from.

With instructions, stripes of a named direction appear on the background after frame 0 ("vertical stripes appear on
the background"): what the later frames show then comes from the instruction alone, neither from the caption nor
from frame 0. (A change every later frame shows, not a direction of motion: the demonstration's base has no temporal
layers, so a frame does not know how far along the video it is. Fine stripes, not a colour: a plain colour shows
through the noise at most timesteps, so the instruction would hardly be needed.)"""
import math

import torch

from .seeds import generator as seeded
from .video_clips import Clip

SHAPES = ("disc", "square")
STRIPES = {"horizontal": 0.5, "vertical": 0.0, "rising": 0.25, "falling": 0.75}  # direction (half turns) by name


def render_clip(generator: torch.Generator, frames: int, size: int, instructed: bool = False
                ) -> tuple[torch.Tensor, str, str | None]:
    """[frames, 3, size, size] in [-1, 1], the caption, and with `instructed` the instruction."""
    uniform = lambda *shape: torch.rand(shape, generator=generator)
    y, x = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    video = (uniform(3, 1, 1) * 1.6 - 0.8).expand(frames, 3, size, size).clone()
    instruction = None
    if instructed:
        name = list(STRIPES)[int(uniform(1) * len(STRIPES))]
        angle = STRIPES[name] * math.pi
        along = x * math.cos(angle) + y * math.sin(angle)
        video[1:] = (video[1:] + 0.5 * torch.sign(torch.sin(2 * math.pi * along / (size / 4)))).clamp(-1, 1)
        instruction = f"{name} stripes appear on the background"
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
    return video, caption, instruction


class SyntheticClips:
    """`count` clips of the world, clip i always the same for a given `seed` (held-out sets use another seed);
    `instructed`: the world where an instruction decides what later frames show."""

    def __init__(self, count: int, frames: int, size: int, seed: int = 0, instructed: bool = False):
        self.count, self.frames, self.size, self.seed, self.instructed = count, frames, size, seed, instructed

    def __len__(self) -> int:
        return self.count

    def describe(self, index: int) -> str:
        return f"synthetic clip {index}"

    def identity(self, index: int) -> str:
        return f"synthetic world {self.seed}{' instructed' * self.instructed}, clip {index} of {self.frames}x{self.size}px"

    def placeholder(self) -> Clip:
        return Clip(torch.zeros(self.frames, 3, self.size, self.size), "", torch.zeros(6))

    def clip(self, index: int, generator: torch.Generator | None = None) -> Clip:
        pixels, caption, instruction = render_clip(seeded(self.seed, index), self.frames, self.size, self.instructed)
        size = float(self.size)
        return Clip(pixels, caption, torch.tensor([size, size, 0.0, 0.0, size, size]), instruction)
