"""AID's DQFormer as a MODEL patch for the stock samplers: condition tokens beside CLIP's in every attn2, decoupled,

    out = Attn(Q, K_text, V_text) + weight · Attn(Q, T W_K, T W_V)

with attn2's own frozen key and value projections W_K, W_V (the tokens live in the text embeddings' space, so no
per-layer weights are needed) and each frame's tokens T: its state's, blended across the state boundaries as the
states' CLIP conditioning is. Only the conditional side gets them; the unconditional side stays the negative
prompt, as classifier-free guidance on the condition wants.
"""
import torch

import comfy.patcher_extension

from ..kernels.dqformer import frame_tokens
from ..kernels.dqformer_file import DQFormerFile
from ..kernels.vlm_io import no_hidden_states
from .patch_support import SharedPatch, attention_layers, chunk_frames, host_attention
from .unet_families import family_of_model
from .vlm_answer import DecomposedStates

NODE = "Apply DQFormer"
KEY = "i2v_dqformer"


class ConditionAttention(SharedPatch):
    """attn2 replace for one layer; `attention` is that layer's module (its to_k and to_v, patched weights and all)."""

    def __init__(self, attention, tokens: torch.Tensor, weight: float, previous=None):
        self.attention, self.tokens, self.weight, self.previous = attention, tokens, weight, previous

    def __call__(self, q, k, v, extra_options):
        heads = extra_options["n_heads"]
        attend = host_attention(extra_options, extra_options["attn_precision"])
        out = self.previous(q, k, v, extra_options) if self.previous else attend(q, k, v, heads)
        sides = extra_options.get("cond_or_uncond", [0])
        rows = q.shape[0] // len(sides)
        tokens = self.tokens[chunk_frames(extra_options, rows)].to(q)
        keys, values = self.attention.to_k(tokens), self.attention.to_v(tokens)
        added = torch.zeros_like(out)
        for chunk, side in enumerate(sides):
            if side == 0:  # the conditional side
                part = slice(chunk * rows, (chunk + 1) * rows)
                added[part] = attend(q[part], keys, values, heads)
        return out + self.weight * added


class FrameCount(SharedPatch):
    """The tokens are per frame of the latent Decompose Prompt into States served: sampling another is refused."""

    def __init__(self, frames: int):
        self.frames = frames

    def outer_sample(self, executor, noise, *args, **kwargs):
        if noise.shape[0] != self.frames:
            raise ValueError(f"{NODE}: the state features are for a video of {self.frames} frames (the latent "
                             f"Decompose Prompt into States was given) but the sampler got {noise.shape[0]}; connect "
                             "the latent you sample to Decompose Prompt into States.")
        return executor(noise, *args, **kwargs)


def condition_tokens(dqformer: DQFormerFile, states: DecomposedStates) -> torch.Tensor:
    """[frames, queries, context] in fp32 on the CPU."""
    features = states.features
    if features is None:
        raise no_hidden_states(states.model, NODE)
    if features.hidden_size != dqformer.shape.feature_dim:
        raise ValueError(f"{NODE}: this DQFormer reads hidden states {dqformer.shape.feature_dim} wide (it was trained "
                         f"on {dqformer.vision_language_model}) but {features.model} gives {features.hidden_size}: "
                         f"load {dqformer.vision_language_model} in Load Vision-Language Model, or a DQFormer trained "
                         f"on {features.model}.")
    with torch.no_grad():
        tokens = dqformer.build()(features.instruction, features.instruction_mask, features.states,
                                  features.states_mask)
    return frame_tokens(tokens, states.weights)


def apply_dqformer(model, dqformer: DQFormerFile, states: DecomposedStates, weight: float):
    family = family_of_model(model, NODE)
    if family is not dqformer.family:
        raise ValueError(f"{NODE}: this DQFormer is for {dqformer.family.label} but the MODEL is {family.label}: load a "
                         f"DQFormer trained on {family.label}.")
    tokens = condition_tokens(dqformer, states)
    patched = model.clone()
    replaced = patched.model_options["transformer_options"].get("patches_replace", {}).get("attn2", {})
    unet = model.model.diffusion_model
    for (block, number, index), module_path in attention_layers(model.model.model_config.unet_config, "attn2").values():
        previous = replaced.get((block, number, index)) or replaced.get((block, number))
        patched.set_model_attn2_replace(ConditionAttention(unet.get_submodule(module_path), tokens, weight, previous),
                                        block, number, index)
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, KEY,
                                 FrameCount(tokens.shape[0]).outer_sample)
    return patched
