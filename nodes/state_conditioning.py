"""States to a per-frame CONDITIONING: each state encoded once with the graph's CLIP, then mixed frame by frame.

The batch of the result equals the frame count: ComfyUI tiles a conditioning batch smaller than the latent's
(p0, p1, p0, …), so it must hold one row per frame. SDXL's pooled output gets one row per frame too.
"""
import torch

from ..kernels.state_schedule import blend_embeddings, blend_pooled


def per_frame_conditioning(clip, states: list[str], weights: torch.Tensor) -> list:
    """[[cond [F, T, C], {"pooled_output": [F, C]}]] from N states and [F, N] weights."""
    encoded = {state: clip.encode_from_tokens(clip.tokenize(state), return_pooled=True, return_dict=True)
               for state in dict.fromkeys(states)}
    cond = blend_embeddings([encoded[state]["cond"] for state in states], weights)
    pooled = [encoded[state].get("pooled_output") for state in states]
    extras = {} if any(p is None for p in pooled) else {"pooled_output": blend_pooled(pooled, weights)}
    return [[cond, extras]]
