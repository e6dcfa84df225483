"""Local vision-language models: Hugging Face folders under models/LLM, loaded by transformers from local files
only, and moved to and from the GPU by ComfyUI's model management like any other model."""
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForImageTextToText, AutoProcessor
from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

import comfy.model_management as model_management
import comfy.model_patcher
import folder_paths

from .model_folders import LLM

DTYPES = {"auto": None, "bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
DEVICES = ("default", "cpu")
CONFIG = "config.json"
MODEL_EXAMPLES = "Qwen2.5-VL-3B-Instruct or Qwen3-VL-2B-Instruct"


def model_folder_names() -> list[str]:
    """Each sub-folder of a models/LLM path that holds a model (config.json), one level deeper for packs that
    group models (LLM/Qwen-VL/<model>); a sub-folder with no model inside is listed as is, so that picking it
    says what it holds."""
    names = set()
    for root in folder_paths.get_folder_paths(LLM):
        if not os.path.isdir(root):
            continue
        for entry in sorted(Path(root).iterdir()):
            if not entry.is_dir():
                continue
            inner = [child for child in sorted(entry.iterdir()) if (child / CONFIG).is_file()]
            if (entry / CONFIG).is_file() or not inner:
                names.add(entry.name)
            names.update(f"{entry.name}/{child.name}" for child in inner)
    return sorted(names)


def missing_folder_message(name: str) -> str | None:
    if name in model_folder_names():
        return None
    searched = ", ".join(folder_paths.get_folder_paths(LLM))
    return (f"'{name}' was not found in models/{LLM} (searched: {searched}). Put the model's folder (config.json, "
            f"weights, processor and tokenizer files, as downloaded) in one of these folders and refresh the page.")


def model_folder(name: str) -> Path:
    message = missing_folder_message(name)
    if message:
        raise FileNotFoundError(message)
    return next(Path(root) / name for root in folder_paths.get_folder_paths(LLM) if (Path(root) / name).is_dir())


def check_model_folder(path: Path, name: str, trust_remote_code: bool) -> None:
    """Refuse, before transformers runs, a folder that holds no vision-language model, or one that needs the
    folder's own Python code while that is off; the message says what was found and what to do."""
    if not (path / CONFIG).is_file():
        found = ", ".join(sorted(p.name for p in path.iterdir())[:10]) or "nothing"
        raise ValueError(f"'{name}' is not a Hugging Face model folder: it has no {CONFIG} (found: {found}). Put a "
                         f"vision-language model's whole folder in models/{LLM}, e.g. {MODEL_EXAMPLES}.")
    try:
        config = json.loads((path / CONFIG).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"'{name}': {CONFIG} is not valid JSON ({e}); the folder is damaged.") from None
    model_type, auto_map = config.get("model_type"), config.get("auto_map") or {}
    if model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        return
    if model_type in CONFIG_MAPPING_NAMES:
        architectures = ", ".join(config.get("architectures") or []) or "no architectures listed"
        raise ValueError(f"'{name}' holds a '{model_type}' model ({architectures}), which is not a vision-language "
                         f"model: it cannot look at the reference image. Use an image-text-to-text model such as "
                         f"{MODEL_EXAMPLES}.")
    if not auto_map:
        raise ValueError(f"'{name}': model_type '{model_type}' is unknown to transformers {transformers.__version__} "
                         f"and the folder brings no code for it. Update transformers, or use a model it supports "
                         f"such as {MODEL_EXAMPLES}.")
    if not trust_remote_code:
        raise ValueError(f"'{name}' needs its own Python code (model_type '{model_type}' has no class in transformers; "
                         f"{CONFIG} maps it to {', '.join(sorted(set(auto_map.values())))}). That code would run with "
                         f"your rights, so it is off by default. If you trust where this folder came from, switch "
                         f"trust_remote_code on in Load Vision-Language Model; otherwise use a model transformers "
                         f"supports natively, such as {MODEL_EXAMPLES}.")
    if "AutoModelForImageTextToText" not in auto_map:
        raise ValueError(f"'{name}': its code offers no image-text-to-text model (auto_map in {CONFIG} has "
                         f"{', '.join(sorted(auto_map))}), so it cannot answer about an image here.")


class _ModelHolder(torch.nn.Module):
    """A plain module for ModelPatcher's bookkeeping (it sets `.device`, read-only on transformers models)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.vlm = model


@dataclass
class VisionLanguageModel:
    name: str
    processor: object
    patcher: comfy.model_patcher.ModelPatcher
    keep_loaded: bool

    @property
    def model(self):
        return self.patcher.model.vlm


@contextmanager
def _hub_offline():
    """HF_HUB_OFFLINE for anything that reads it while loading; local_files_only is what guarantees no download."""
    previous = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["HF_HUB_OFFLINE"]
        else:
            os.environ["HF_HUB_OFFLINE"] = previous


def _load_dtype(choice: str, device: torch.device) -> torch.dtype:
    if DTYPES[choice] is not None:
        return DTYPES[choice]
    if model_management.is_device_cpu(device):
        return torch.float32
    if model_management.should_use_bf16(device):
        return torch.bfloat16
    return torch.float16 if model_management.should_use_fp16(device) else torch.float32


def load_vision_language_model(name: str, device: str, dtype: str, keep_loaded: bool,
                               trust_remote_code: bool) -> VisionLanguageModel:
    path = model_folder(name)
    check_model_folder(path, name, trust_remote_code)
    load_device = torch.device("cpu") if device == "cpu" else model_management.get_torch_device()
    offload_device = torch.device("cpu") if device == "cpu" else model_management.unet_offload_device()
    options = dict(local_files_only=True, trust_remote_code=trust_remote_code)
    try:
        with _hub_offline():
            processor = AutoProcessor.from_pretrained(path, **options)
            model = AutoModelForImageTextToText.from_pretrained(
                path, dtype=_load_dtype(dtype, load_device), **options).eval()
    except (OSError, ValueError, KeyError, ImportError) as e:  # ImportError: a package the processor needs
        reason = (str(e).splitlines() or [type(e).__name__])[0]
        raise ValueError(f"'{name}' could not be loaded as a vision-language model: {reason}") from e
    if getattr(processor, "image_processor", None) is None:
        raise ValueError(f"'{name}' has no image processor (preprocessor_config.json or processor_config.json), so "
                         f"it cannot take the reference image; use the model's complete folder.")
    tokenizer = getattr(processor, "tokenizer", None)
    if not (getattr(processor, "chat_template", None) or getattr(tokenizer, "chat_template", None)):
        raise ValueError(f"'{name}' has no chat template (chat_template.jinja/.json): use an instruction-tuned "
                         f"model's complete folder (an -Instruct model).")
    patcher = comfy.model_patcher.ModelPatcher(_ModelHolder(model), load_device, offload_device)
    return VisionLanguageModel(name, processor, patcher, keep_loaded)


_ON_DEVICE = set()  # ids of the models inside a model_on_device block


@contextmanager
def model_on_device(vlm: VisionLanguageModel):
    """The model on its load device for the block, loaded through ComfyUI (which first unloads other models as
    far as memory requires); afterwards back to the offload device unless keep_loaded, in which case ComfyUI
    unloads it whenever another model needs the memory. A block inside another one for the same model keeps the
    outer one's placement: one trip to the device and back for all of a node's work."""
    if id(vlm) in _ON_DEVICE:
        yield vlm.patcher.load_device
        return
    model_management.load_models_gpu([vlm.patcher], force_full_load=True)
    _ON_DEVICE.add(id(vlm))
    try:
        yield vlm.patcher.load_device
    finally:
        _ON_DEVICE.discard(id(vlm))
        if not vlm.keep_loaded:
            vlm.patcher.detach()
            model_management.soft_empty_cache()
