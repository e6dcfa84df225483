"""AID's DQFormer as a MODEL patch for the stock samplers: condition tokens beside CLIP's in every attn2, decoupled,

    out = Attn(Q, K_text, V_text) + weight · Attn(Q, T W_K, T W_V)

with attn2's own frozen key and value projections W_K, W_V (the tokens live in the text embeddings' space, so no
per-layer weights are needed; a LoRA on them applies) and each frame's tokens T: its state's, blended across the
state boundaries as the states' CLIP conditioning is. Laid over whatever replace is live in attn2
(attention_overlay). Every cond with the prompt's role gets them, which is all but a guider's negatives
(cond_roles): the negatives stay the negative prompt, as classifier-free guidance on the condition wants.
"""
import torch

from comfy.patcher_extension import WrappersMP

from ..kernels.dqformer import frame_tokens
from ..kernels.dqformer_file import DQFormerFile
from ..kernels.vlm_io import no_hidden_states
from .attention_overlay import AttentionOverlay
from .cond_roles import chunk_roles, record_cond_roles
from .patch_support import SharedPatch, attention_layers, chunk_frames, host_attention
from .unet_families import family_of_model
from .vlm_answer import DecomposedStates

NODE = "Apply DQFormer"
KEY = "i2v_dqformer"


class ConditionAttention:
    """One attn2's addition; `attention` is that layer's module (its to_k and to_v, patched weights and all)."""

    def __init__(self, attention, tokens: "FrameTokens", weight: float):
        self.attention, self.tokens, self.weight = attention, tokens, weight

    def __call__(self, q, out, extra_options):
        texts = [role.text for role in chunk_roles(extra_options)]
        rows = q.shape[0] // len(texts)
        keys, values = self.tokens.keys_values(self.attention, chunk_frames(extra_options, rows), q)
        attend = host_attention(extra_options, extra_options["attn_precision"])
        for chunk in (chunk for chunk, text in enumerate(texts) if text):
            part = slice(chunk * rows, (chunk + 1) * rows)
            out[part].add_(attend(q[part], keys, values, extra_options["n_heads"]), alpha=self.weight)
        return out


class FrameTokens(SharedPatch):
    """The condition tokens of every frame, [frames, queries, context] in fp32 on the CPU, placed on the sampling
    device once per context window (or once for the whole video) instead of on every call. Their keys and values
    through each attn2 are projected once per sampling, window, device and dtype, and again where a projection's
    weights are other tensors (a LoRA or merge patched in by a hook during the sampling). Sampling another latent
    than the one Decompose Prompt into States served is refused."""

    def __init__(self, tokens: torch.Tensor):
        self.tokens, self._placed, self._projected = tokens, {}, {}

    def _placed_tokens(self, frames: list[int], like: torch.Tensor) -> torch.Tensor:
        where = (tuple(frames), like.device, like.dtype)
        if where not in self._placed:
            self._placed[where] = self.tokens[frames].to(like)
        return self._placed[where]

    def keys_values(self, attention, frames: list[int], like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights = tuple((id(m.weight), *map(id, getattr(m, "weight_function", ())))
                        for m in (attention.to_k, attention.to_v))
        where = (id(attention), weights, tuple(frames), like.device, like.dtype)
        if where not in self._projected:
            tokens = self._placed_tokens(frames, like)
            self._projected[where] = attention.to_k(tokens), attention.to_v(tokens)
        return self._projected[where]

    def outer_sample(self, executor, noise, *args, **kwargs):
        if noise.shape[0] != self.tokens.shape[0]:
            raise ValueError(f"{NODE}: the state features are for a video of {self.tokens.shape[0]} frames (the latent "
                             f"Decompose Prompt into States was given) but the sampler got {noise.shape[0]}; connect "
                             "the latent you sample to Decompose Prompt into States.")
        self._projected = {}  # the weights may be others than at the last sampling (another LoRA, merge, dtype)
        try:
            return executor(noise, *args, **kwargs)
        finally:
            self._projected = {}


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
    unet, per_frame = model.model.diffusion_model, FrameTokens(tokens)
    overlay = AttentionOverlay("attn2", {
        key: ConditionAttention(unet.get_submodule(module_path), per_frame, weight)
        for key, module_path in attention_layers(model.model.model_config.unet_config, "attn2").values()})
    patched = model.clone()
    patched.add_wrapper_with_key(WrappersMP.DIFFUSION_MODEL, KEY, overlay.diffusion_model)
    patched.add_wrapper_with_key(WrappersMP.OUTER_SAMPLE, KEY, per_frame.outer_sample)
    record_cond_roles(patched)
    return patched
