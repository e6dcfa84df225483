"""Where the spatial self-attentions (attn1) sit in SD1.5 and SDXL UNets, named by diffusers module paths.

The official I2V-Adapter release keys its weights by these paths, so they are the file format's keys too.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class UNetFamily:
    name: str
    label: str
    block_out_channels: tuple[int, ...]
    layers_per_block: int
    transformer_depths: tuple[int, ...]  # per down level; 0 = that level has no attention
    mid_depth: int
    context_dim: int  # width of the cross-attention (attn2) conditioning
    demo_only: bool = False  # the trainer's built-in demonstration model: ComfyUI has no such checkpoint


SD15 = UNetFamily("sd15", "SD1.5", (320, 640, 1280, 1280), 2, (1, 1, 1, 0), 1, 768)
SDXL = UNetFamily("sdxl", "SDXL", (320, 640, 1280), 2, (0, 2, 10), 10, 2048)
# The tiny UNet of `python training/train_adapter.py` with no arguments (a synthetic video world on the CPU).
TINY = UNetFamily("tiny", "Tiny-demo", (32, 64), 1, (1, 1), 1, 32, demo_only=True)
FAMILIES = {family.name: family for family in (SD15, SDXL, TINY)}


def unet_path(key: str) -> str:
    """A key's diffusers UNet path, without wrappers such as `module.` or `unet.` that trainers put before it."""
    starts = [key.find(root) for root in ("down_blocks.", "mid_block.", "up_blocks.") if root in key]
    return key[min(starts):] if starts else key


def _transformer_blocks(family: UNetFamily) -> dict[str, list[tuple[str, int]]]:
    """(diffusers path of every transformer block, its channel count) in the down, mid and up blocks."""
    levels = list(zip(family.block_out_channels, family.transformer_depths))
    down = [(f"down_blocks.{level}.attentions.{j}.transformer_blocks.{t}", channels)
            for level, (channels, depth) in enumerate(levels) for j in range(family.layers_per_block)
            for t in range(depth)]
    mid = [(f"mid_block.attentions.0.transformer_blocks.{t}", family.block_out_channels[-1])
           for t in range(family.mid_depth)]
    up = [(f"up_blocks.{i}.attentions.{j}.transformer_blocks.{t}", channels)
          for i, (channels, depth) in enumerate(reversed(levels)) for j in range(family.layers_per_block + 1)
          for t in range(depth)]
    return {"down": down, "mid": mid, "up": up}


def self_attention_layers(family: UNetFamily) -> list[tuple[str, int]]:
    """(diffusers path of every attn1, its channel count), in forward order."""
    blocks = _transformer_blocks(family)
    return [(f"{path}.attn1", channels) for path, channels in blocks["down"] + blocks["mid"] + blocks["up"]]


def cross_attention_layers(family: UNetFamily) -> list[tuple[str, int]]:
    """(diffusers path of every attn2, its channel count) in the order IP-Adapter files number them: diffusers'
    attention-processor order (down, up, then mid blocks), where attn2 of the k-th block is processor 2k+1."""
    blocks = _transformer_blocks(family)
    return [(f"{path}.attn2", channels) for path, channels in blocks["down"] + blocks["up"] + blocks["mid"]]


def motion_module_sites(family: UNetFamily, mid_block: bool) -> list[tuple[str, int]]:
    """(path, channels) of every AnimateDiff motion module: one after each resnet(+attention) layer of every
    down and up block, and optionally one in the middle block (AnimateDiff v2)."""
    sites = []
    for level, channels in enumerate(family.block_out_channels):
        sites += [(f"down_blocks.{level}.motion_modules.{j}", channels) for j in range(family.layers_per_block)]
    if mid_block:
        sites.append(("mid_block.motion_modules.0", family.block_out_channels[-1]))
    for i, channels in enumerate(reversed(family.block_out_channels)):
        sites += [(f"up_blocks.{i}.motion_modules.{j}", channels) for j in range(family.layers_per_block + 1)]
    return sites


def block_output_sites(family: UNetFamily) -> list[tuple[str, int]]:
    """(path, channels) at the output of every down block, the middle block and every up block."""
    channels = family.block_out_channels
    return ([(f"down_blocks.{i}", c) for i, c in enumerate(channels)] + [("mid_block", channels[-1])]
            + [(f"up_blocks.{i}", c) for i, c in enumerate(reversed(channels))])
