"""GroupNorm across each video's frames in every ResNet block and the output norm of a ComfyUI UNet (AnimateDiff v1
and the official I2V-Adapter release), on a ModelPatcher clone: each such norm is object-patched with a view of
itself (kernels.frame_group_norm: the norm's own state, so weight patches, their bookkeeping and offloading work as
before) while the model is loaded, and a diffusion-model wrapper tells the views how many videos each UNet call holds (cond and uncond, or
context windows, are separate videos)."""
import torch

import comfy.ops
import comfy.patcher_extension
from comfy.ldm.modules.diffusionmodules.openaimodel import ResBlock

from ..kernels.frame_group_norm import VideoBatch, across_frames
from .patch_support import SharedPatch

KEY = "i2v_group_norm_across_frames"


def norm_paths(diffusion_model) -> list[str]:
    """Object-patch paths of the GroupNorms the official UNet3D applies to 5-D tensors. Its spatial transformers'
    norms stay per frame, as there."""
    paths = []
    for name, module in diffusion_model.named_modules():
        if isinstance(module, ResBlock):
            paths += [f"diffusion_model.{name}.{part}.0" for part in ("in_layers", "out_layers")
                      if isinstance(getattr(module, part)[0], torch.nn.GroupNorm)]
    return paths + ["diffusion_model.out.0"]


def host_affine(norm: torch.nn.GroupNorm, x: torch.Tensor):
    """The weight and bias ComfyUI's GroupNorm applies to `x`: cast, and weight-patched, per call where its own
    forward does so (comfy/ops.py, GroupNorm.forward)."""
    if getattr(norm, "comfy_cast_weights", False) or getattr(norm, "weight_function", None) \
            or getattr(norm, "bias_function", None):
        return comfy.ops.cast_bias_weight(norm, x)
    return norm.weight, norm.bias


class CountVideos(SharedPatch):
    def __init__(self, video_batch: VideoBatch):
        self.video_batch = video_batch

    def diffusion_model(self, executor, x, timesteps, context, y, control, transformer_options, **kwargs):
        self.video_batch.videos = len(transformer_options.get("cond_or_uncond", [0]))
        try:
            return executor(x, timesteps, context, y, control, transformer_options, **kwargs)
        finally:
            self.video_batch.videos = None


def normalise_across_frames(patched) -> None:
    """Make `patched` (a clone being built) normalise each video's frames together."""
    if patched.get_wrappers(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, KEY):
        return
    video_batch = VideoBatch(host_affine)
    for path in norm_paths(patched.model.diffusion_model):
        patched.add_object_patch(path, across_frames(patched.get_model_object(path), video_batch))
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, KEY,
                                 CountVideos(video_batch).diffusion_model)
