"""Where each state starts in the video, and what each frame is conditioned on.

State i of N starts at frame round(i·F/N). The same keys make the schedule string that FizzNodes'
BatchPromptSchedule (JSON) and AnimateDiff-Evolved's prompt scheduling (regex) read, and the per-frame weights
that blend the state embeddings linearly across each boundary.
"""
import math
import re

import torch

# backslash: an escape in JSON; backtick: an expression in both schedulers; control characters: invalid in JSON
_UNSAFE = re.compile(r"[\\`\x00-\x1f\x7f]")


def state_starts(frames: int, states: int) -> list[int]:
    """The first frame of each state: round(i·F/N), distinct and increasing while states ≤ frames."""
    if states < 1:
        raise ValueError(f"states is {states}: ask for at least one state.")
    if states > frames:
        raise ValueError(f"states ({states}) is more than frames ({frames}): every state needs at least one frame. "
                         f"Ask for at most {frames} states, or make the video longer.")
    return [round(i * frames / states) for i in range(states)]


def schedule_text(state: str) -> str:
    """A state as a schedule value: double quotes become single, backslashes, backticks and control characters go,
    one line."""
    return " ".join(_UNSAFE.sub("", " ".join(state.replace('"', "'").split())).split())


def schedule_string(states: list[str], frames: int) -> str:
    """'"0": "…",' lines, one per state, keyed by its first frame (no comma after the last)."""
    starts = state_starts(frames, len(states))
    return ",\n".join(f'"{start}": "{schedule_text(state)}"' for start, state in zip(starts, states))


def frame_state_weights(frames: int, states: int, blend_frames: float) -> torch.Tensor:
    """[frames, states] weights, each row summing to 1. Across the boundary before state k's first frame b, the
    weight moves linearly from state k-1 to k over `blend_frames` frames centred on b − ½; 0 or 1 is a hard cut.
    Overlapping ramps still give convex, monotone weights: the frame's position p = Σ ramps is spread over the two
    nearest states."""
    starts = state_starts(frames, states)
    f = torch.arange(frames, dtype=torch.float64)[:, None]
    centres = torch.tensor(starts[1:], dtype=torch.float64)[None] - 0.5
    if blend_frames > 0:
        ramps = ((f - centres) / blend_frames + 0.5).clamp(0, 1)
    else:
        ramps = (f > centres).double()
    position = ramps.sum(dim=1, keepdim=True)
    hats = (1 - (position - torch.arange(states, dtype=torch.float64)[None]).abs()).clamp(min=0)
    return hats.float()


def blend_embeddings(embeddings: list[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    """Per-frame mix of state embeddings: [1, T_k, C] each (token lengths may differ) with [F, N] weights →
    [F, T, C]. Shorter ones are tiled to the least common multiple of the lengths, as ComfyUI pads cross-attention
    conditioning when it batches prompts of different lengths (repeating the tokens leaves attention unchanged)."""
    length = math.lcm(*(e.shape[1] for e in embeddings))
    stacked = torch.cat([e.repeat(1, length // e.shape[1], 1) for e in embeddings])
    return torch.einsum("fn,ntc->ftc", weights.to(stacked.dtype), stacked)


def blend_pooled(pooled: list[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    """Per-frame mix of pooled outputs: [1, C] each with [F, N] weights → [F, C]."""
    stacked = torch.cat(pooled)
    return weights.to(stacked.dtype) @ stacked
