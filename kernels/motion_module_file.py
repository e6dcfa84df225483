"""Motion-module files: the original AnimateDiff layouts (v1, v2 with its mid-block module, v3, SDXL beta) and
the diffusers MotionAdapter layout, recognised from their keys and brought to the original layout."""
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from .motion_module import MotionModules, sinusoidal_encoding
from .tensor_files import FileFormatError, load_tensors, save_safetensors
from .unet_layout import SD15, SDXL, UNetFamily

_SITE = re.compile(r"((?:down_blocks|up_blocks)\.\d+|mid_block)\.motion_modules\.\d+")
_BLOCK_INDEX = re.compile(r"transformer_blocks\.(\d+)\.")
# diffusers MotionAdapter name -> original AnimateDiff name, within one motion module
_BLOCK = "temporal_transformer.transformer_blocks"
_FROM_DIFFUSERS = [
    (re.compile(r"^(norm|proj_in|proj_out)\."), r"temporal_transformer.\1."),
    (re.compile(r"^transformer_blocks\.(\d+)\.attn([12])\."), lambda m: f"{_BLOCK}.{m[1]}.attention_blocks.{int(m[2]) - 1}."),
    (re.compile(r"^transformer_blocks\.(\d+)\.norm([12])\."), lambda m: f"{_BLOCK}.{m[1]}.norms.{int(m[2]) - 1}."),
    (re.compile(r"^transformer_blocks\.(\d+)\.norm3\."), rf"{_BLOCK}.\1.ff_norm."),
    (re.compile(r"^transformer_blocks\.(\d+)\.ff\."), rf"{_BLOCK}.\1.ff."),
]


ANIMATELCM = "AnimateLCM"


@dataclass
class MotionModuleFile:
    family: UNetFamily
    version: str          # "v1", "v2", "v3", "AnimateLCM" (SD1.5) or "sdxl-beta"
    max_frames: int       # the position encoding's length
    mid_block: bool
    blocks: int           # transformer blocks per module
    state_dict: dict[str, torch.Tensor]
    layout: str           # "AnimateDiff" or "diffusers MotionAdapter"

    def build(self, operations=torch.nn, dtype: torch.dtype | None = torch.float32) -> MotionModules:
        """The layers in `dtype`; None: holding the file's own tensors (no copy)."""
        with torch.device("meta"):
            modules = MotionModules(self.family, self.max_frames, self.mid_block, self.blocks, operations=operations)
        modules.load_state_dict(self.state_dict, assign=True)
        return modules if dtype is None else modules.to(dtype)


def _split(key: str) -> tuple[str, str] | None:
    """(site, name within the module), after any wrapper prefix such as `module.` or `unet.`."""
    match = _SITE.search(key)
    return (match[0], key[match.end() + 1:]) if match else None


def original_names(name: str) -> list[str]:
    """The original AnimateDiff names of one diffusers MotionAdapter key (relative to its motion module)."""
    if name.endswith("pos_embed.pe"):  # diffusers keeps one encoding per block, AnimateDiff one per attention
        block = name.split(".")[1]
        return [f"{_BLOCK}.{block}.attention_blocks.{i}.pos_encoder.pe" for i in (0, 1)]
    for pattern, replacement in _FROM_DIFFUSERS:
        if pattern.match(name):
            return [pattern.sub(replacement, name)]
    raise FileFormatError(f"unexpected key in a diffusers motion adapter: {name}")


def _diffusers_max_frames(path: Path) -> int | None:
    config = path.with_name("config.json")
    if not config.is_file():
        return None
    where = f"config.json beside {path.name}"
    try:
        settings = json.loads(config.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FileFormatError(f"{where} is not valid JSON ({e}): repair it or move it away") from None
    if not isinstance(settings, dict):
        raise FileFormatError(f"{where} holds a {type(settings).__name__}, not a JSON object: repair it or move it "
                              "away")
    frames = settings.get("motion_max_seq_length")
    if frames is not None and (type(frames) is not int or frames < 1):
        raise FileFormatError(f"{where} gives motion_max_seq_length {frames!r}; it must be a whole number of "
                              "frames ≥ 1")
    return frames


def motion_module_from_tensors(tensors: dict[str, torch.Tensor], name: str, config_max_frames: int | None = None
                               ) -> MotionModuleFile:
    if any("temporal_attentions" in k for k in tensors):
        raise FileFormatError(f"{name} is a HotShot-XL motion module; its layout is not supported (AnimateDiff "
                              "SD1.5 v1/v2/v3, SDXL beta and diffusers MotionAdapter files are)")
    modules = [(split, v) for k, v in tensors.items() if (split := _split(k))]
    if not modules:
        sample = ", ".join(list(tensors)[:3]) or "no tensors at all"
        raise FileFormatError(f"{name} is not a motion module: none of its {len(tensors)} keys has "
                              f"'motion_modules' in it (first keys: {sample})")
    original = any(inner.startswith("temporal_transformer.") for (_, inner), _ in modules)
    try:
        state = {f"{site}.{converted}": value for (site, inner), value in modules
                 for converted in ([inner] if original else original_names(inner))}
    except FileFormatError as e:
        raise FileFormatError(f"{name}: {e}") from None

    pe_key = next((k for k in state if k.endswith("pos_encoder.pe")), None)
    if pe_key is not None and (state[pe_key].ndim != 3 or state[pe_key].shape[1] < 1):
        raise FileFormatError(f"{name}: {pe_key} is {tuple(state[pe_key].shape)}; a position encoding is "
                              "[1, frames ≥ 1, channels]")
    # AnimateLCM's files are the only original-layout ones without encodings (AnimateDiff-Evolved's rule and its 64).
    animatelcm = original and pe_key is None
    max_frames = state[pe_key].shape[1] if pe_key is not None else 64 if animatelcm else (config_max_frames or 32)
    down_levels = [int(site.split(".")[1]) for (site, _), _ in modules if site.startswith("down_blocks")]
    if not down_levels:
        elsewhere = ", ".join(sorted({site.split(".")[0] for (site, _), _ in modules}))
        raise FileFormatError(f"{name} has no motion modules in its down blocks (only in {elsewhere}); AnimateDiff "
                              "motion modules sit in every block")
    levels = 1 + max(down_levels)
    family = next((f for f in (SD15, SDXL) if len(f.block_out_channels) == levels), None)
    if family is None:
        raise FileFormatError(f"{name} has motion modules on {levels} down levels; SD1.5 has 4 and SDXL 3")
    mid_block = any(k.startswith("mid_block.") for k in state)
    block_indices = [int(m[1]) for k in state if (m := _BLOCK_INDEX.search(k))]
    if not block_indices:
        raise FileFormatError(f"{name}: its motion modules have no transformer blocks (no 'transformer_blocks.<n>.' "
                              "keys)")
    blocks = 1 + max(block_indices)

    with torch.device("meta"):
        expected = {k: v.shape for k, v in MotionModules(family, max_frames, mid_block, blocks).state_dict().items()}
    for key, shape in expected.items():  # diffusers files and AnimateLCM omit the encodings: they are deterministic
        if key.endswith(".pe") and key not in state:
            state[key] = sinusoidal_encoding(max_frames, shape[-1])
    missing, unexpected = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected.keys())
    if missing or unexpected:
        raise FileFormatError(f"{name} does not have the {family.label} motion-module layout: {len(missing)} keys "
                              f"missing (e.g. {missing[:1]}), {len(unexpected)} unexpected (e.g. {unexpected[:1]})")
    for key, shape in expected.items():
        if state[key].shape != shape:
            raise FileFormatError(f"{name}: {key} is {tuple(state[key].shape)}, expected {tuple(shape)} for "
                                  f"{family.label}")
    version = ("sdxl-beta" if family.name == "sdxl" else ANIMATELCM if animatelcm else "v2" if mid_block
               else "v1" if max_frames == 24 else "v3")
    return MotionModuleFile(family, version, max_frames, mid_block, blocks, state,
                            "AnimateDiff" if original else "diffusers MotionAdapter")


def read_motion_module(path: str | os.PathLike) -> MotionModuleFile:
    """An AnimateDiff `.ckpt` (loaded with weights_only=True) or `.safetensors`, or a diffusers MotionAdapter
    `.safetensors` (its `config.json` beside it, if any, gives the maximum frame count). Only the motion modules
    are read from a larger file, such as the official I2V-Adapter bundle animatediff_v15_v1_ipplus.pth (a whole
    UNet: SD1.5 weights, v1 motion modules and IP-Adapter weights)."""
    tensors, _ = load_tensors(path, keep=lambda key: "motion_modules." in key or "temporal_attentions" in key)
    if not tensors:  # no motion module: read it all, to say what it holds
        tensors, _ = load_tensors(path)
    return motion_module_from_tensors(tensors, Path(path).name, _diffusers_max_frames(Path(path)))


def write_motion_module(path: str | os.PathLike, motion: MotionModuleFile, **metadata: str) -> None:
    """Atomically write `motion` as a `.safetensors` file in the original AnimateDiff layout, which this pack and
    AnimateDiff-Evolved read."""
    save_safetensors(path, motion.state_dict, {"version": motion.version, **metadata})
