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


SD15 = UNetFamily("sd15", "SD1.5", (320, 640, 1280, 1280), 2, (1, 1, 1, 0), 1)
SDXL = UNetFamily("sdxl", "SDXL", (320, 640, 1280), 2, (0, 2, 10), 10)
FAMILIES = {family.name: family for family in (SD15, SDXL)}


def self_attention_layers(family: UNetFamily) -> list[tuple[str, int]]:
    """(diffusers path of every attn1, its channel count), in forward order."""
    layers = []
    levels = list(zip(family.block_out_channels, family.transformer_depths))
    for level, (channels, depth) in enumerate(levels):
        for j in range(family.layers_per_block):
            layers += [(f"down_blocks.{level}.attentions.{j}.transformer_blocks.{t}.attn1", channels) for t in range(depth)]
    layers += [(f"mid_block.attentions.0.transformer_blocks.{t}.attn1", family.block_out_channels[-1]) for t in range(family.mid_depth)]
    for i, (channels, depth) in enumerate(reversed(levels)):
        for j in range(family.layers_per_block + 1):
            layers += [(f"up_blocks.{i}.attentions.{j}.transformer_blocks.{t}.attn1", channels) for t in range(depth)]
    return layers
