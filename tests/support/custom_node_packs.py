"""Other custom node packs the tier-2 tests run with, found in the custom_nodes/ of the ComfyUI checkout the tests
use: AnimateDiff-Evolved and VideoHelperSuite. A test that needs one skips, saying so, when it is not there."""
import asyncio
import contextlib
import ctypes
import gc
from pathlib import Path

import pytest

from .comfyui import find_comfyui

ADE = "ComfyUI-AnimateDiff-Evolved"
VHS = "ComfyUI-VideoHelperSuite"


def pack_folder(comfyui: Path, name: str) -> Path | None:
    folder = comfyui / "custom_nodes" / name
    return folder if (folder / "__init__.py").is_file() else None


def missing(comfyui: Path, name: str) -> str:
    return f"{name} is not in {comfyui / 'custom_nodes'}: put it there to run this test"


def requires(name: str):
    """A mark that skips, saying so, when the ComfyUI checkout the tests use has no `name` in custom_nodes (before
    any model is built). Without a checkout, tier 2 is skipped anyway."""
    comfyui = find_comfyui()
    absent = comfyui is not None and pack_folder(comfyui, name) is None
    return pytest.mark.skipif(absent, reason=missing(comfyui, name) if absent else "")


def load_pack(comfyui: Path, name: str, base: Path) -> None:
    """Import the pack into this process with ComfyUI's own custom-node loader, its NODE_CLASS_MAPPINGS into
    ComfyUI's `nodes`. Packs register folders under models_dir when imported; models_dir is pointed at the tests'
    base for that, as --base-directory does for a server, so nothing is written into the checkout."""
    import folder_paths
    import nodes

    folder = pack_folder(comfyui, name)
    with _models_dir(folder_paths, str(base / "models")):
        loaded = asyncio.run(nodes.load_custom_node(str(folder)))
    if not loaded:
        raise RuntimeError(f"ComfyUI could not import {folder} (its log above says why)")


@contextlib.contextmanager
def _models_dir(folder_paths, path: str):
    before, folder_paths.models_dir = folder_paths.models_dir, path
    try:
        yield
    finally:
        folder_paths.models_dir = before


def node(class_type: str):
    """An instance of a node class that a pack registered (V1 nodes)."""
    import nodes
    return nodes.NODE_CLASS_MAPPINGS[class_type]()


def release_memory() -> None:
    """After tests that built AnimateDiff-Evolved's motion models (GBs each in fp32): glibc keeps the freed heap, and
    the rest of the run (the trainer's processes) needs it back."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to hand back this way
        pass
