"""The I2V-Adapter as a MODEL patch for the stock samplers.

On a ModelPatcher clone: the cross-frame branch beside every attn1, frame 0 held at the clean reference latent on
every model call (reference_frame), and the adapter weights as an additional model so ComfyUI loads and offloads
them with the UNet (layer_weights). No core code is replaced, and no attention replace is registered: the branch
reads attn1's normed input (attn1_patch) and adds its output after attn1's (attn1_output_patch), so whatever
replaces attn1 itself (PerturbedAttentionGuidance, SelfAttentionGuidance, other packs) runs as it would without us.
Frame 0's keys and values are attn1's own projections of frame 0's input, computed here for that one frame. The
branch runs on every cond, as the official release runs it under CFG, but one a guider names without the picture
(cond_roles).
"""
import torch

from ..kernels.adapter_file import AdapterFile
from ..kernels.first_frame_attention import FirstFrameBranch
from .cond_roles import chunk_roles, record_cond_roles
from .layer_weights import add_file_layers, file_layers
from .noise_schedule_patch import warn_on_other_schedule
from .patch_support import SharedPatch, attention_layers, frames_per_video, host_attention
from .reference_frame import pin_reference_frame
from .unet_families import family_of_model

PATCH_KEY = "i2v_adapter"
NODE = "Apply I2V-Adapter"
_ATTN1_INPUT = "i2v_adapter_attn1_input"


class StashAttn1Input(SharedPatch):
    """attn1_patch: keep the normed attn1 input X for the branch (extra_options lives for one transformer block)."""

    def __call__(self, n, context, value, extra_options):
        extra_options[_ATTN1_INPUT] = n
        return n, context, value


class AddFirstFrameBranch(SharedPatch):
    """attn1_output_patch: attn1's output after its to_out, plus strength · Attn(X W'_Q, K_1, V_1) W'_O."""

    def __init__(self, layers: dict[tuple[str, int, int], tuple[FirstFrameBranch, torch.nn.Module]], strength: float):
        self.layers, self.strength = layers, strength  # layer key -> (its branch, ComfyUI's attn1 module)

    def __call__(self, n, extra_options):
        hidden = extra_options.pop(_ATTN1_INPUT, None)
        block = extra_options.get("block")
        layer = self.layers.get((*block, extra_options.get("block_index", 0))) if block else None
        if hidden is None or layer is None:
            return n
        frames = frames_per_video(hidden, extra_options, NODE)
        branches = [role.first_frame for role in chunk_roles(extra_options)]
        if all(branches):
            return self._add(n, hidden, frames, layer, extra_options)
        # A guider's cond without the picture (Two-Scale Guidance's): its chunk runs attn1 alone.
        parts = [slice(chunk * frames, (chunk + 1) * frames) for chunk in range(len(branches))]
        return torch.cat([self._add(n[part], hidden[part], frames, layer, extra_options) if branch else n[part]
                          for part, branch in zip(parts, branches)])

    def _add(self, n, hidden, frames, layer, extra_options):
        branch, attn1 = layer
        first = hidden[::frames]
        attend = host_attention(extra_options, extra_options["attn_precision"])
        out = branch(hidden, attn1.to_k(first), attn1.to_v(first), frames, extra_options["n_heads"], attend)
        return n + out if self.strength == 1.0 else n.add(out, alpha=self.strength)


def apply_i2v_adapter(model, adapter: AdapterFile, reference: torch.Tensor, strength: float):
    """A clone of `model` with the adapter; `reference` is the raw (un-scaled) latent of the first frame. At
    strength 0 only frame 0 is pinned."""
    family = family_of_model(model, NODE)
    if family is not adapter.family:
        raise ValueError(f"This I2V-Adapter is for {adapter.family.label} but the MODEL is {family.label}: load a "
                         f"{adapter.family.label} checkpoint, or an I2V-Adapter made for {family.label}.")
    if model.get_additional_models_with_key(PATCH_KEY):
        raise ValueError("This MODEL already has an I2V-Adapter: apply the adapter once, to the MODEL that comes "
                         "before the first Apply I2V-Adapter.")
    patched = model.clone()
    if strength != 0.0:
        layers = file_layers(adapter, model)
        unet = model.model.diffusion_model
        branches = {key: (layers.module.get_submodule(path), unet.get_submodule(module_path))
                    for path, (key, module_path) in attention_layers(model.model.model_config.unet_config,
                                                                      "attn1").items()}
        add_file_layers(patched, PATCH_KEY, layers)
        patched.set_model_attn1_patch(StashAttn1Input())
        patched.set_model_attn1_output_patch(AddFirstFrameBranch(branches, strength))
        record_cond_roles(patched)
    pin_reference_frame(patched, reference, NODE)
    warn_on_other_schedule(patched, adapter.noise_schedule, NODE, "this I2V-Adapter")
    return patched
