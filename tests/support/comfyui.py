"""Finding a ComfyUI checkout and importing it in-process (tier 2)."""
import os
import sys
from pathlib import Path

PACK_ROOT = Path(__file__).resolve().parents[2]
NOT_FOUND = ("ComfyUI not found: set COMFYUI_PATH to a ComfyUI checkout, or put the pack in "
             "ComfyUI/custom_nodes/ (tier-2 tests skipped)")


def is_comfyui(path: Path) -> bool:
    return (path / "comfy").is_dir() and (path / "main.py").is_file()


def find_comfyui() -> Path | None:
    """COMFYUI_PATH, else the pack's grandparent when the pack sits in ComfyUI/custom_nodes/."""
    configured = os.environ.get("COMFYUI_PATH")
    if configured:
        if not is_comfyui(Path(configured)):
            raise RuntimeError(f"COMFYUI_PATH={configured} is not a ComfyUI checkout (no comfy/ and main.py)")
        return Path(configured).resolve()
    grandparent = PACK_ROOT.parent.parent
    return grandparent if PACK_ROOT.parent.name == "custom_nodes" and is_comfyui(grandparent) else None


def import_comfyui(path: Path, base: Path | None = None) -> None:
    """Put ComfyUI on sys.path for this process, on the CPU (fp32, deterministic). `base`: its models/, input/ and
    output/ folders, as --base-directory gives a server, so that nothing a user's checkout holds is read or
    written."""
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
    from comfy.cli_args import args
    args.cpu = True
    if base is not None:
        if "folder_paths" in sys.modules:
            raise RuntimeError("ComfyUI's folder_paths was imported before its base directory was set")
        args.base_directory = str(base)
    import comfy.model_management  # noqa: F401  (chooses the device now, with args.cpu set)
