"""The I2V-Adapter as a MODEL patch for the stock samplers.

On a ModelPatcher clone: the cross-frame branch beside every attn1 (transformer patches), frame 0 held
at the clean reference latent on every model call (keyed wrappers), and the adapter weights as an
additional model so ComfyUI loads and offloads them with the UNet. No core code is replaced.
"""
import re

import torch

import comfy.ldm.modules.attention as comfy_attention
import comfy.model_patcher
import comfy.ops
import comfy.patcher_extension
import comfy.utils

from ..kernels.adapter_file import AdapterFile
from ..kernels.first_frame_attention import FirstFrameBranch, I2VAdapter
from .unet_families import family_of_model

PATCH_KEY = "i2v_adapter"
_ATTN1_INPUT = "i2v_adapter_attn1_input"
_BRANCH_OUTPUT = "i2v_adapter_branch_output"
_COMFY_ATTN1 = re.compile(r"(input|middle|output)_blocks?\.(\d+)\.(?:\d+\.)?transformer_blocks\.(\d+)\.attn1\.")


def attn1_patch_keys(unet_config: dict) -> dict[str, tuple[str, int, int]]:
    """diffusers attn1 path -> the key ComfyUI's attn1 replace patches use: (block, block id, transformer index)."""
    keys = {}
    for diffusers_key, comfy_key in comfy.utils.unet_to_diffusers(unet_config).items():
        match = _COMFY_ATTN1.match(comfy_key)
        if match and diffusers_key.endswith(".attn1.to_q.weight"):
            block, number, index = match.groups()
            # The UNet reports its middle block as ("middle", 0) whatever its position in middle_block.
            keys[diffusers_key.removesuffix(".to_q.weight")] = (block, 0 if block == "middle" else int(number), int(index))
    return keys


def frames_per_video(batch: torch.Tensor, transformer_options: dict) -> int:
    """ComfyUI batches cond/uncond videos one after another; each chunk is one whole video (or one window)."""
    window = transformer_options.get("context_window")
    sub_idxs = transformer_options.get("ad_params", {}).get("sub_idxs")
    indices = getattr(window, "index_list", None) or sub_idxs
    if indices is not None and indices[0] != 0:
        raise RuntimeError(
            f"Apply I2V-Adapter: a context window (frames {indices[0]}..{indices[-1]}) does not contain frame 0, "
            "the reference image, so the adapter cannot see it there. Use a context length at least the frame "
            "count, or sample without context windows.")
    return batch.shape[0] // len(transformer_options.get("cond_or_uncond", [0]))


def with_first_frames(batch: torch.Tensor, first: torch.Tensor, transformer_options: dict) -> torch.Tensor:
    batch = batch.clone()
    batch[::frames_per_video(batch, transformer_options)] = first.to(batch)
    return batch


class SharedPatch:
    """Patches are immutable and share the adapter weights. ModelPatcher.clone() deep-copies model_options,
    so a copy returns the same object instead of duplicating the weights."""

    def __deepcopy__(self, memo):
        return self


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

        def attend(q, k, v, heads):
            return comfy_attention.optimized_attention(q, k, v, heads, attn_precision=extra_options["attn_precision"],
                                                       transformer_options=extra_options)
        out = self.previous(q, k, v, extra_options) if self.previous else attend(q, k, v, heads)
        frames = frames_per_video(q, extra_options)
        branch = self.branch(extra_options.pop(_ATTN1_INPUT), k, v, frames, heads, attend)
        extra_options[_BRANCH_OUTPUT] = branch if self.strength == 1.0 else branch * self.strength
        return out


class AddBranchOutput(SharedPatch):
    """attn1_output_patch: attn1's output after its to_out, plus the branch's W'_O output."""

    def __call__(self, n, extra_options):
        branch = extra_options.pop(_BRANCH_OUTPUT, None)
        return n if branch is None else n + branch


class PinFirstFrame:
    """Frame 0 is the clean reference throughout: it enters every UNet call as the exact reference latent,
    at the same timestep as the other frames (as in training), its prediction is the reference, and the
    sampled latent's frame 0 is the reference."""

    def __init__(self, reference: torch.Tensor, reference_in_model_space: torch.Tensor):
        self.reference, self.model_space = reference, reference_in_model_space

    def outer_sample(self, executor, noise, latent_image, sampler, sigmas, denoise_mask=None, callback=None,
                     disable_pbar=False, seed=None):
        check_video_latent(noise, self.reference)
        out = executor(noise, latent_image, sampler, sigmas, denoise_mask, callback, disable_pbar, seed)
        out[0] = self.reference.to(out)
        return out

    def apply_model(self, executor, x, t, c_concat, c_crossattn, control, transformer_options, **kwargs):
        denoised = executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
        return with_first_frames(denoised, self.model_space, transformer_options)

    def diffusion_model(self, executor, x, timesteps, context, y, control, transformer_options, **kwargs):
        # x is the UNet's own input here, after ComfyUI's sigma input scaling, so the reference goes in unscaled.
        x = with_first_frames(x, self.model_space, transformer_options)
        return executor(x, timesteps, context, y, control, transformer_options, **kwargs)


def check_video_latent(noise: torch.Tensor, reference: torch.Tensor) -> None:
    if noise.ndim != 4 or noise.shape[0] < 2:
        frames = noise.shape[0] if noise.ndim == 4 else f"a {noise.ndim}-D latent"
        raise ValueError(f"Apply I2V-Adapter needs a video latent of at least 2 frames (frame 0 is the reference "
                         f"image); the sampler got {frames}. Make the latent with 'I2V Video Latent' and frames ≥ 2.")
    if noise.shape[1:] != reference.shape[1:]:
        size = lambda t: f"{t.shape[-1] * 8}×{t.shape[-2] * 8} px ({t.shape[1]} channels)"
        raise ValueError(f"Apply I2V-Adapter: the reference latent is {size(reference)} but the video latent is "
                         f"{size(noise)}. Encode the reference at the video's size (I2V Video Latent resizes it for you).")


def apply_i2v_adapter(model, adapter: AdapterFile, reference: torch.Tensor, strength: float):
    """A clone of `model` with the adapter; `reference` is the raw (un-scaled) latent of the first frame."""
    family = family_of_model(model, "Apply I2V-Adapter")
    if family is not adapter.family:
        raise ValueError(f"This I2V-Adapter is for {adapter.family.label} but the MODEL is {family.label}: load a "
                         f"{adapter.family.label} checkpoint, or an I2V-Adapter made for {family.label}.")
    if model.get_additional_models_with_key(PATCH_KEY):
        raise ValueError("This MODEL already has an I2V-Adapter: apply the adapter once, to the MODEL that comes "
                         "before the first Apply I2V-Adapter.")
    keys = attn1_patch_keys(model.model.model_config.unet_config)
    dtype = model.model.manual_cast_dtype or model.model_dtype()
    weights = I2VAdapter(family, operations=comfy.ops.disable_weight_init, dtype=dtype, device=model.offload_device)
    weights.load_state_dict(adapter.state_dict)

    patched = model.clone()
    patched.set_additional_models(PATCH_KEY, [comfy.model_patcher.ModelPatcher(weights, model.load_device, model.offload_device)])
    patched.set_model_attn1_patch(StashAttn1Input())
    replaced = patched.model_options["transformer_options"].get("patches_replace", {}).get("attn1", {})
    for path, branch in weights.branches():
        block, number, index = keys[path]
        previous = replaced.get((block, number, index)) or replaced.get((block, number))
        patched.set_model_attn1_replace(FirstFrameReplace(branch, strength, previous), block, number, index)
    patched.set_model_attn1_output_patch(AddBranchOutput())

    reference = reference[:1].float()
    pin = PinFirstFrame(reference, model.model.process_latent_in(reference))
    wrappers = comfy.patcher_extension.WrappersMP
    patched.add_wrapper_with_key(wrappers.OUTER_SAMPLE, PATCH_KEY, pin.outer_sample)
    patched.add_wrapper_with_key(wrappers.APPLY_MODEL, PATCH_KEY, pin.apply_model)
    patched.add_wrapper_with_key(wrappers.DIFFUSION_MODEL, PATCH_KEY, pin.diffusion_model)
    return patched
