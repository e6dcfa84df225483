"""DQFormer files: safetensors whose metadata records the UNet family, the shape, and the vision-language model
whose hidden states it reads."""
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .dqformer import DQFormer, DQFormerShape
from .tensor_files import FileFormatError, load_tensors, save_safetensors
from .unet_layout import FAMILIES, UNetFamily

FORMAT_NAME = "dqformer"
FORMAT_VERSION = "1"
SHAPE_KEYS = ("feature_dim", "context_dim", "width", "layers", "heads", "queries")


@dataclass
class DQFormerFile:
    family: UNetFamily
    shape: DQFormerShape
    vision_language_model: str  # the folder name of the model whose hidden states it was trained on
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, str]

    def build(self, dtype=torch.float32, device=None) -> DQFormer:
        """Built on the meta device and given the file's tensors: no random initialisation to throw away."""
        with torch.device("meta"):
            model = DQFormer(self.shape)
        model.load_state_dict(self.state_dict, assign=True)
        return model.to(dtype=dtype, device=device)


def dqformer_from_tensors(tensors: dict[str, torch.Tensor], metadata: dict[str, str], name: str) -> DQFormerFile:
    if metadata.get("format") != FORMAT_NAME:
        found = f"a {metadata['format']!r} file" if "format" in metadata else "a file without DQFormer metadata"
        raise FileFormatError(f"{name} is {found}, not a DQFormer (made by training/train_adapter.py --train dqformer)")
    family = FAMILIES.get(metadata.get("base"))
    missing = [k for k in SHAPE_KEYS if not metadata.get(k, "").isdigit()]
    if family is None or missing:
        raise FileFormatError(f"{name}: its metadata lacks {'the base family' if family is None else missing[0]}")
    shape = DQFormerShape(**{k: int(metadata[k]) for k in SHAPE_KEYS})
    if shape.context_dim != family.context_dim:
        raise FileFormatError(f"{name} makes tokens {shape.context_dim} wide but {family.label}'s cross-attention is "
                              f"{family.context_dim}")
    with torch.device("meta"):
        expected = {k: v.shape for k, v in DQFormer(shape).state_dict().items()}
    for key, expected_shape in expected.items():
        if key not in tensors or tensors[key].shape != expected_shape:
            got = "missing" if key not in tensors else tuple(tensors[key].shape)
            raise FileFormatError(f"{name}: {key} is {got}, expected {tuple(expected_shape)}")
    return DQFormerFile(family, shape, metadata.get("vision_language_model", "unknown"), tensors, metadata)


def read_dqformer(path: str | os.PathLike) -> DQFormerFile:
    tensors, metadata = load_tensors(path)
    return dqformer_from_tensors(tensors, metadata, Path(path).name)


def write_dqformer(path: str | os.PathLike, model: DQFormer, family: UNetFamily, vision_language_model: str,
                   **extra_metadata) -> None:
    metadata = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "base": family.name,
                "vision_language_model": vision_language_model, **model.shape.as_metadata(),
                **{k: str(v) for k, v in extra_metadata.items()}}
    save_safetensors(path, model.state_dict(), metadata)
