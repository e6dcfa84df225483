"""The I2V-Adapter as a MODEL patch for the stock samplers.

On a ModelPatcher clone: the cross-frame branch beside every attn1 (transformer patches), frame 0 held at the
clean reference latent on every model call (reference_frame), and the adapter weights as an additional model
so ComfyUI loads and offloads them with the UNet. No core code is replaced.
"""
import torch

import comfy.model_patcher
import comfy.ops

from ..kernels.adapter_file import AdapterFile
from ..kernels.first_frame_attention import FirstFrameBranch
from .noise_schedule_patch import warn_on_other_schedule
from .patch_support import SharedPatch, attention_patch_keys, frames_per_video, host_attention
from .reference_frame import pin_reference_frame
from .unet_families import family_of_model

PATCH_KEY = "i2v_adapter"
NODE = "Apply I2V-Adapter"
_ATTN1_INPUT = "i2v_adapter_attn1_input"
_BRANCH_OUTPUT = "i2v_adapter_branch_output"


class StashAttn1Input(SharedPatch):
    """attn1_patch: keep the normed attn1 input X for the branch's W'_Q (the replace only sees projections)."""

    def __call__(self, n, context, value, extra_options):
        extra_options[_ATTN1_INPUT] = n
        return n, context, value


class FirstFrameReplace(SharedPatch):
    """attn1 replace for one layer: the frozen self-attention (or the replace that was there before us),
    plus the branch on frame 0's frozen K and V; the branch output waits for AddBranchOutput."""

    def __init__(self, branch: FirstFrameBranch, strength: float, previous=None):
        self.branch, self.strength, self.previous = branch, strength, previous

    def __call__(self, q, k, v, extra_options):
        heads = extra_options["n_heads"]
        attend = host_attention(extra_options, extra_options["attn_precision"])
        out = self.previous(q, k, v, extra_options) if self.previous else attend(q, k, v, heads)
        frames = frames_per_video(q, extra_options, NODE)
        branch = self.branch(extra_options.pop(_ATTN1_INPUT), k, v, frames, heads, attend)
        extra_options[_BRANCH_OUTPUT] = branch if self.strength == 1.0 else branch * self.strength
        return out


class AddBranchOutput(SharedPatch):
    """attn1_output_patch: attn1's output after its to_out, plus the branch's W'_O output."""

    def __call__(self, n, extra_options):
        branch = extra_options.pop(_BRANCH_OUTPUT, None)
        return n if branch is None else n + branch


def apply_i2v_adapter(model, adapter: AdapterFile, reference: torch.Tensor, strength: float):
    """A clone of `model` with the adapter; `reference` is the raw (un-scaled) latent of the first frame."""
    family = family_of_model(model, NODE)
    if family is not adapter.family:
        raise ValueError(f"This I2V-Adapter is for {adapter.family.label} but the MODEL is {family.label}: load a "
                         f"{adapter.family.label} checkpoint, or an I2V-Adapter made for {family.label}.")
    if model.get_additional_models_with_key(PATCH_KEY):
        raise ValueError("This MODEL already has an I2V-Adapter: apply the adapter once, to the MODEL that comes "
                         "before the first Apply I2V-Adapter.")
    keys = attention_patch_keys(model.model.model_config.unet_config, "attn1")
    dtype = model.model.manual_cast_dtype or model.model_dtype()
    weights = adapter.build(operations=comfy.ops.disable_weight_init, dtype=dtype, device=model.offload_device)

    patched = model.clone()
    patched.set_additional_models(PATCH_KEY, [comfy.model_patcher.ModelPatcher(weights, model.load_device, model.offload_device)])
    patched.set_model_attn1_patch(StashAttn1Input())
    replaced = patched.model_options["transformer_options"].get("patches_replace", {}).get("attn1", {})
    for path, branch in weights.branches():
        block, number, index = keys[path]
        previous = replaced.get((block, number, index)) or replaced.get((block, number))
        patched.set_model_attn1_replace(FirstFrameReplace(branch, strength, previous), block, number, index)
    patched.set_model_attn1_output_patch(AddBranchOutput())

    pin_reference_frame(patched, reference, NODE)
    warn_on_other_schedule(patched, adapter.noise_schedule, NODE, "this I2V-Adapter")
    return patched
