"""Reading and writing tensor files safely: pickles never run code, and a written file never replaces
the previous one until it is complete."""
import os
import pickle
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import torch
from safetensors import safe_open
from safetensors.torch import save_file

SAFETENSORS_SUFFIXES = (".safetensors", ".sft")


class FileFormatError(ValueError):
    """A file exists but is not what the caller asked for; the message says what was found."""

    # ComfyUI's error dialog names an error `<module>.<name>`, and ComfyUI imports the pack by its folder path: this
    # reads "comfyui-i2v-adapter.FileFormatError" instead of "/…/custom_nodes/comfyui-i2v-adapter.kernels.…".
    __module__ = "comfyui-i2v-adapter"


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary name beside `path`; rename it onto `path` only when the block succeeds."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist")
    tmp = str(path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"))
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_safetensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=metadata)


def load_tensors(path: str | os.PathLike, keep: Callable[[str], bool] | None = None
                 ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a .safetensors file, or of a pickle (.ckpt/.pth/.pt/.bin) loaded with
    `weights_only=True`, unwrapped from a `state_dict` entry if it has one and with nested dictionaries flattened
    to dotted keys (h94's IP-Adapter `.bin` holds `{"image_proj": {...}, "ip_adapter": {...}}`). `keep` selects
    keys: only those are read, so a part of a large file costs only its own memory. Anything else is refused."""
    path = Path(path)
    keep = keep or (lambda key: True)
    if path.suffix.lower() in SAFETENSORS_SUFFIXES:
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                return {k: f.get_tensor(k) for k in f.keys() if keep(k)}, dict(f.metadata() or {})
        except Exception as e:  # safetensors raises its own error types for a damaged header
            raise FileFormatError(f"{path.name} is not a readable safetensors file ({e})") from e
    data = _load_pickle(path)
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise FileFormatError(f"{path.name} holds a {type(data).__name__}, not a dictionary of tensors")
    data = _flattened(data)
    others = {k: type(v).__name__ for k, v in data.items() if not isinstance(v, torch.Tensor)}
    if others:
        key, kind = next(iter(others.items()))
        raise FileFormatError(f"{path.name} holds {len(others)} non-tensor entries (e.g. {key!r}: {kind}); "
                              "a weights file must hold only tensors")
    return {k: v for k, v in data.items() if keep(k)}, {}


def _load_pickle(path: Path):
    """A safe load, memory-mapped where the file allows it (torch's zip format): tensors are read when used."""
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            if "mmap" not in str(e):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as e:
        raise FileFormatError(
            f"{path.name} is not a plain tensor checkpoint: a safe load (weights_only=True) refused it "
            f"({str(e).splitlines()[0]}). Only files holding tensors are accepted.") from e


def _flattened(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flattened(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
