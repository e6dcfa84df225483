"""Motion modules and look-back layers as MODEL patches.

Each is a ModelPatcher clone with the layers' weights as an additional model (loaded and offloaded with the
UNet, in the dtype of the model being sampled: layer_weights), an injection that inserts the layers into the
UNet's blocks while ComfyUI runs it, and a forward_timestep_embed_patch that calls them with the frame count of the
current batch.
"""
import logging

import torch

import comfy.patcher_extension

from ..kernels.look_back import LookBackLayer
from ..kernels.look_back_file import LookBackFile
from ..kernels.motion_module import MotionModule
from ..kernels.motion_module_file import ANIMATELCM, MotionModuleFile
from ..kernels.noise_schedule import animatediff_schedule, schedule_named
from .control_windows import window_control_hints
from .frame_group_norm_patch import normalise_across_frames
from .layer_weights import add_file_layers, file_layers
from .noise_schedule_patch import set_lcm_sampling, set_noise_schedule, warn_on_other_schedule
from .patch_support import SharedPatch, frames_per_video, host_attention
from .reference_frame import frames_per_call, pin_reference_frame
from .unet_families import family_of_model
from .unet_injection import AFTER_LAYERS, AT_END, injection

MOTION_NODE, MOTION_KEY = "Apply Motion Module", "i2v_motion_modules"
LOOK_BACK_NODE, LOOK_BACK_KEY = "Apply Look-Back Layers", "i2v_look_back"
AUTOSELECT, USE_EXISTING = "autoselect", "use existing"
ACROSS_FRAMES, PER_FRAME = "across frames", "per frame"
GROUP_NORMS = [AUTOSELECT, ACROSS_FRAMES, PER_FRAME]


class CallMotionModule(SharedPatch):
    def __init__(self, scale: float):
        self.scale = scale

    def __call__(self, layer, x, emb, context, transformer_options, *args):
        return layer(x, frames_per_video(x, transformer_options), self.scale, host_attention(transformer_options))


class CallLookBack(SharedPatch):
    def __call__(self, layer, x, emb, context, transformer_options, *args):
        return layer(x, frames_per_video(x, transformer_options, needs_reference=LOOK_BACK_NODE))


class FrameLimit:
    """Refuses, before the first step, more frames at once than the position encoding covers: the video's, or with
    context windows the context length and the reference put in front of windows that lack frame 0."""

    def __init__(self, max_frames: int):
        self.max_frames = max_frames

    def outer_sample(self, executor, noise, *args, **kwargs):
        frames = noise.shape[0]
        at_once, length = frames_per_call(executor.class_obj, frames)
        if at_once > self.max_frames:
            limit = f"{MOTION_NODE}: this motion module handles at most {self.max_frames} frames at once (its position " \
                    f"encoding's length); "
            if length is None:
                raise ValueError(f"{limit}the latent has {frames}. Use {self.max_frames} frames or fewer, or context "
                                 f"windows of at most {self.max_frames} frames.")
            front = at_once - length
            given = (f"context windows of {length} frames with the reference image put in front of those that lack "
                     f"frame 0 (Apply I2V-Adapter, Apply Look-Back Layers) give it {at_once}") if front else \
                f"context windows of {length} frames give it {length}"
            raise ValueError(f"{limit}{given}. Use context windows of at most {self.max_frames - front} frames.")
        return executor(noise, *args, **kwargs)


def _check_model(model, node: str, key: str, file_family) -> None:
    family = family_of_model(model, node)
    if family is not file_family:
        raise ValueError(f"{node}: these weights are for {file_family.label} but the MODEL is {family.label}: load "
                         f"a {file_family.label} checkpoint, or weights made for {family.label}.")
    if model.get_additional_models_with_key(key):
        raise ValueError(f"{node}: this MODEL already has them; apply them once.")


def _patched_clone(model, key: str, file, place: str, call):
    layers = file_layers(file, model)
    patched = model.clone()
    add_file_layers(patched, key, layers)
    patched.set_injections(key, [injection(file.family, layers.module.sites_and_modules(), place)])
    patched.set_model_forward_timestep_embed_patch(call)
    return patched


def apply_motion_modules(model, motion: MotionModuleFile, scale: float, beta_schedule: str = AUTOSELECT,
                         group_norm: str = AUTOSELECT):
    """Motion modules, the noise schedule they were trained with (autoselect, as AnimateDiff-Evolved: AnimateDiff's
    for the family, LCM sampling for AnimateLCM; a schedule set upstream, such as ModelSamplingDiscrete's, is
    kept), and AnimateDiff v1's GroupNorm across frames (autoselect: for v1 files only)."""
    _check_model(model, MOTION_NODE, MOTION_KEY, motion.family)
    if group_norm not in GROUP_NORMS:
        raise ValueError(f"{MOTION_NODE}: groupnorm {group_norm!r} is none of {', '.join(GROUP_NORMS)}")
    if beta_schedule not in (AUTOSELECT, USE_EXISTING):
        schedule_named(beta_schedule, MOTION_NODE)
    patched = _patched_clone(model, MOTION_KEY, motion, AFTER_LAYERS, (MotionModule, CallMotionModule(scale)))
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, MOTION_KEY,
                                 FrameLimit(motion.max_frames).outer_sample)
    window_control_hints(patched)
    if beta_schedule == AUTOSELECT and "model_sampling" in model.object_patches:
        logging.info("%s: autoselect keeps the noise schedule set upstream of it", MOTION_NODE)
    elif beta_schedule == AUTOSELECT and motion.version == ANIMATELCM:
        set_lcm_sampling(patched)
    elif beta_schedule != USE_EXISTING:
        set_noise_schedule(patched, animatediff_schedule(motion.family.name) if beta_schedule == AUTOSELECT
                           else schedule_named(beta_schedule, MOTION_NODE))
    if group_norm == ACROSS_FRAMES or (group_norm == AUTOSELECT and motion.version == "v1"):
        normalise_across_frames(patched)
    return patched


def apply_look_back(model, look_back: LookBackFile, reference: torch.Tensor):
    """Look-back layers with the paper's hybrid initialisation: frame 0 is the clean `reference` (raw latent)."""
    _check_model(model, LOOK_BACK_NODE, LOOK_BACK_KEY, look_back.family)
    patched = _patched_clone(model, LOOK_BACK_KEY, look_back, AT_END, (LookBackLayer, CallLookBack()))
    pin_reference_frame(patched, reference, LOOK_BACK_NODE)
    warn_on_other_schedule(patched, look_back.noise_schedule, LOOK_BACK_NODE, "these look-back layers")
    return patched
