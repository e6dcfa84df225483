"""The model folders the pack reads, registered with ComfyUI's folder_paths (extra_model_paths.yaml works)."""
import os

import folder_paths

I2V_ADAPTER = "i2v_adapter"
MOTION_MODULES = "animatediff_models"  # the folder AnimateDiff-Evolved users already have
LOOK_BACK = "look_back"
IPADAPTER = "ipadapter"  # the folder ComfyUI_IPAdapter_plus users already have
DQFORMER = "dqformer"
OPTICAL_FLOW = "optical_flow"  # torchvision RAFT weights, for I2V Video Metrics
LLM = "LLM"  # Hugging Face model folders (one sub-folder per model), the folder other VLM packs use too
WEIGHT_EXTENSIONS = {".safetensors", ".sft", ".pth", ".pt", ".ckpt", ".bin"}


def register_model_folder(name: str, extensions: set[str]) -> None:
    folder_paths.add_model_folder_path(name, os.path.join(folder_paths.models_dir, name))
    paths, registered = folder_paths.folder_names_and_paths[name]
    # Add to what other packs registered (AnimateDiff-Evolved: .pt2, .pkl, ...) in a new set, never one shared with
    # other folders. No extensions at all (a name ComfyUI does not know) would list every file: ours only then.
    folder_paths.folder_names_and_paths[name] = (paths, set(registered) | extensions)


def missing_file_message(folder: str, filename: str) -> str | None:
    """None when the file is there, else a message naming the folders that were searched."""
    if folder_paths.get_full_path(folder, filename) is not None:
        return None
    searched = ", ".join(folder_paths.get_folder_paths(folder))
    return (f"'{filename}' was not found in models/{folder} (searched: {searched}). "
            "Put the file in one of these folders and refresh the page.")


def full_path(folder: str, filename: str) -> str:
    message = missing_file_message(folder, filename)
    if message:
        raise FileNotFoundError(message)
    return folder_paths.get_full_path(folder, filename)


register_model_folder(I2V_ADAPTER, WEIGHT_EXTENSIONS)
register_model_folder(MOTION_MODULES, WEIGHT_EXTENSIONS)
register_model_folder(LOOK_BACK, WEIGHT_EXTENSIONS)
register_model_folder(IPADAPTER, WEIGHT_EXTENSIONS)
register_model_folder(DQFORMER, WEIGHT_EXTENSIONS)
register_model_folder(OPTICAL_FLOW, WEIGHT_EXTENSIONS)
# Shared with other packs: added as a path only, keeping whatever extensions they registered.
folder_paths.add_model_folder_path(LLM, os.path.join(folder_paths.models_dir, LLM))
