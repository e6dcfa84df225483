"""I2V-Adapter weight files: our safetensors (with metadata) and the official release's `i2v_module.pth`.

Both use the official key names, `<diffusers attn1 path>.to_q_ff.weight`, `.to_out_ff.weight` and
`.to_out_ff.bias`, so files move between this pack, the official code and diffusers-based trainers.
"""
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .first_frame_attention import I2VAdapter
from .noise_schedule import NoiseSchedule, recorded_schedule
from .tensor_files import FileFormatError, load_tensors, save_safetensors
from .unet_layout import FAMILIES, UNetFamily, self_attention_layers, unet_path

FORMAT_NAME = "i2v-adapter"
FORMAT_VERSION = "1"
BRANCH_KEYS = ("to_q_ff.weight", "to_out_ff.weight", "to_out_ff.bias")


@dataclass
class AdapterFile:
    family: UNetFamily
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, str]

    @property
    def noise_schedule(self) -> NoiseSchedule:
        return recorded_schedule(self.metadata, "this I2V-Adapter")

    def build(self, operations=torch.nn, dtype: torch.dtype | None = torch.float32) -> I2VAdapter:
        """The layers in `dtype`; None: holding the file's own tensors (no copy)."""
        with torch.device("meta"):
            adapter = I2VAdapter(self.family, operations=operations)
        adapter.load_state_dict(self.state_dict, assign=True)
        return adapter if dtype is None else adapter.to(dtype)


def _family_of(paths: set[str], name: str) -> UNetFamily:
    for family in FAMILIES.values():
        if {path for path, _ in self_attention_layers(family)} == paths:
            return family
    known = ", ".join(f"{f.label} ({len(self_attention_layers(f))} layers)" for f in FAMILIES.values())
    raise FileFormatError(f"{name} has I2V-Adapter weights for {len(paths)} self-attention layers, which match "
                          f"no supported UNet layout: {known}")


def adapter_from_tensors(tensors: dict[str, torch.Tensor], metadata: dict[str, str], name: str) -> AdapterFile:
    """Validate a loaded file: the official keys for every attn1 of one family, with that family's shapes."""
    if metadata.get("format", FORMAT_NAME) != FORMAT_NAME:
        raise FileFormatError(f"{name} is a {metadata['format']!r} file, not an I2V-Adapter")
    state = {unet_path(k): v for k, v in tensors.items() if k.endswith(BRANCH_KEYS) and ".attn1." in k}
    if not state:
        sample = ", ".join(list(tensors)[:3]) or "no tensors at all"
        raise FileFormatError(f"{name} is neither an I2V-Adapter safetensors file nor the official i2v_module "
                              f"layout: none of its {len(tensors)} keys ends in 'attn1.to_q_ff.weight' "
                              f"(first keys: {sample})")
    family = _family_of({k.rsplit(".", 2)[0] for k in state}, name)
    declared = metadata.get("base")
    if declared and declared != family.name:
        raise FileFormatError(f"{name} says it is for {declared} but its layers are {family.label}'s")
    for path, dim in self_attention_layers(family):
        for key, shape in zip(BRANCH_KEYS, ((dim, dim), (dim, dim), (dim,))):
            found = state.get(f"{path}.{key}")
            if found is None or tuple(found.shape) != shape:
                got = "missing" if found is None else tuple(found.shape)
                raise FileFormatError(f"{name}: {path}.{key} is {got}, expected {shape} for {family.label}")
    return AdapterFile(family, state, metadata)


def read_adapter(path: str | os.PathLike) -> AdapterFile:
    """Our safetensors or the official pickle (loaded with weights_only=True)."""
    tensors, metadata = load_tensors(path)
    return adapter_from_tensors(tensors, metadata, Path(path).name)


def write_adapter(path: str | os.PathLike, state_dict: dict[str, torch.Tensor], family: UNetFamily,
                  **extra_metadata: str) -> None:
    """Atomically write a safetensors file the nodes load; `extra_metadata` records e.g. training settings."""
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "base": family.name,
        "layers": json.dumps([p for p, _ in self_attention_layers(family)]),
        **{k: str(v) for k, v in extra_metadata.items()},
    }
    checked = adapter_from_tensors(state_dict, metadata, Path(path).name)
    save_safetensors(path, checked.state_dict, metadata)


def convert_official(source: str | os.PathLike, target: str | os.PathLike) -> AdapterFile:
    """Turn the official `i2v_module.pth` (or any file `read_adapter` accepts) into our safetensors."""
    adapter = read_adapter(source)
    write_adapter(target, adapter.state_dict, adapter.family, source=Path(source).name)
    return read_adapter(target)
