"""Look-back layer files: safetensors whose metadata records the family and the layer settings."""
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .look_back import LookBackLayers
from .noise_schedule import NoiseSchedule, recorded_schedule
from .tensor_files import FileFormatError, load_tensors, save_safetensors
from .unet_layout import FAMILIES, UNetFamily

FORMAT_NAME = "look-back-layers"
FORMAT_VERSION = "1"
SETTINGS = ("depth", "kernel", "adapter_kernel")


@dataclass
class LookBackFile:
    family: UNetFamily
    settings: dict  # depth, kernel, adapter_kernel, dense
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, str]

    @property
    def noise_schedule(self) -> NoiseSchedule:
        return recorded_schedule(self.metadata, "these look-back layers")

    def build(self, operations=torch.nn, dtype: torch.dtype | None = torch.float32) -> LookBackLayers:
        """The layers in `dtype`; None: holding the file's own tensors (no copy)."""
        with torch.device("meta"):
            layers = LookBackLayers(self.family, **self.settings, operations=operations)
        layers.load_state_dict(self.state_dict, assign=True)
        return layers if dtype is None else layers.to(dtype)


def _setting(metadata: dict[str, str], key: str, name: str) -> int:
    rewrite = "write the file again with training/train_adapter.py"
    if key not in metadata:
        raise FileFormatError(f"{name}: its metadata has no look-back setting '{key}' (the trainer records "
                              f"{', '.join(SETTINGS)}): {rewrite}")
    try:
        return int(metadata[key])
    except ValueError:
        raise FileFormatError(f"{name}: the look-back setting '{key}' is {metadata[key]!r}, not a whole number: "
                              f"{rewrite}") from None


def look_back_from_tensors(tensors: dict[str, torch.Tensor], metadata: dict[str, str], name: str) -> LookBackFile:
    if metadata.get("format") != FORMAT_NAME:
        found = f"a {metadata['format']!r} file" if "format" in metadata else "a file without look-back metadata"
        raise FileFormatError(f"{name} is {found}, not look-back layers (made by training/train_adapter.py)")
    family = FAMILIES.get(metadata.get("base"))
    if family is None:
        raise FileFormatError(f"{name}: unknown base family {metadata.get('base')!r}")
    settings = {k: _setting(metadata, k, name) for k in SETTINGS} | {"dense": metadata.get("dense") == "true"}
    try:
        with torch.device("meta"):
            expected = {k: v.shape for k, v in LookBackLayers(family, **settings).state_dict().items()}
    except ValueError as e:  # the layer's own rule for its settings
        raise FileFormatError(f"{name}: its look-back settings are invalid: {e}") from None
    for key, shape in expected.items():
        if key not in tensors or tensors[key].shape != shape:
            got = "missing" if key not in tensors else tuple(tensors[key].shape)
            raise FileFormatError(f"{name}: {key} is {got}, expected {tuple(shape)} for {family.label} look-back layers "
                                  f"with {settings}")
    if tensors.keys() - expected.keys():
        raise FileFormatError(f"{name}: unexpected keys such as {sorted(tensors.keys() - expected.keys())[0]}")
    return LookBackFile(family, settings, tensors, metadata)


def read_look_back(path: str | os.PathLike) -> LookBackFile:
    tensors, metadata = load_tensors(path)
    return look_back_from_tensors(tensors, metadata, Path(path).name)


def write_look_back(path: str | os.PathLike, layers: LookBackLayers, **extra_metadata) -> None:
    """Atomically write `layers` (trained or fresh) as a file the Load Look-Back Layers node reads."""
    metadata = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "base": layers.family.name,
                **{k: str(layers.settings[k]) for k in SETTINGS}, "dense": str(layers.settings["dense"]).lower(),
                **{k: str(v) for k, v in extra_metadata.items()}}
    save_safetensors(path, layers.state_dict(), metadata)
