"""Temporal layers inserted into ComfyUI's UNet blocks through ModelPatcher injections (the mechanism
AnimateDiff-Evolved uses), each at a canonical place in its block so that several kinds stack the same
whichever order they are applied in.

Sites are named by diffusers paths (kernels.unet_layout) and mapped here to ComfyUI's input/middle/output
blocks. Motion modules go after a block's resnet and attention, before any up/down-sampler; look-back layers
go at the very end of a block.
"""
from comfy.ldm.modules.attention import SpatialTransformer
from comfy.ldm.modules.diffusionmodules.openaimodel import ResBlock
from comfy.patcher_extension import PatcherInjection

from ..kernels.unet_layout import UNetFamily

AFTER_LAYERS = "after resnet and attention"
AT_END = "at the end"


def comfy_block(family: UNetFamily, site: str) -> tuple[str, int | None]:
    """('input'|'middle'|'output', index) of the ComfyUI block that holds a diffusers site.

    `down_blocks.i.motion_modules.j` is the j-th layer of down level i; `down_blocks.i` alone is the whole level,
    whose last ComfyUI block is its downsampler (none on the last level); likewise for up blocks.
    """
    parts = site.split(".")
    if parts[0] == "mid_block":
        return "middle", None
    level, per_level, levels = int(parts[1]), family.layers_per_block, len(family.block_out_channels)
    if parts[0] == "down_blocks":
        first = 1 + level * (per_level + 1)
        if len(parts) > 2:
            return "input", first + int(parts[3])
        return "input", first + per_level - (1 if level == levels - 1 else 0)
    first = level * (per_level + 1)
    return "output", first + (int(parts[3]) if len(parts) > 2 else per_level)


def _block(unet, kind: str, index: int | None):
    return unet.middle_block if kind == "middle" else getattr(unet, f"{kind}_blocks")[index]


def _insert_at(block, place: str) -> int:
    if place == AT_END:
        return len(block)
    attention = [i for i, layer in enumerate(block) if isinstance(layer, SpatialTransformer)]
    resnets = [i for i, layer in enumerate(block) if isinstance(layer, ResBlock)]
    return (attention or resnets)[-1] + 1


def injection(family: UNetFamily, modules: list[tuple[str, object]], place: str) -> PatcherInjection:
    """Insert each (site, module) into the UNet when ComfyUI loads the patched model; remove it on eject. Both are
    idempotent: a clone made while its model was loaded inherits `is_injected`, and ComfyUI ejects and injects it
    again around loading, so either call can meet the modules already there or already gone."""
    def inject(model_patcher):
        unet = model_patcher.model.diffusion_model
        for site, module in modules:
            block = _block(unet, *comfy_block(family, site))
            if not any(layer is module for layer in block):
                block.insert(_insert_at(block, place), module)

    def eject(model_patcher):
        unet = model_patcher.model.diffusion_model
        for site, module in modules:
            block = _block(unet, *comfy_block(family, site))
            for i in [i for i, layer in enumerate(block) if layer is module][::-1]:
                del block[i]

    return PatcherInjection(inject, eject)
