"""Loading a base from the single-file checkpoint ComfyUI users have (the original LDM layout): the family is read
from the UNet's shapes, and diffusers' own single-file conversion maps the weights onto diffusers models built from
the configs in sd_architectures.py. Nothing is fetched (no config, no tokenizer from the hub)."""
from pathlib import Path

import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders.single_file_utils import (convert_ldm_clip_checkpoint, convert_ldm_unet_checkpoint,
                                                 convert_ldm_vae_checkpoint, convert_open_clip_checkpoint)
from safetensors import safe_open
from transformers import CLIPTextModel, CLIPTextModelWithProjection

from ..kernels.tensor_files import SAFETENSORS_SUFFIXES, FileFormatError, load_tensors
from ..kernels.unet_layout import SD15, SDXL, UNetFamily
from . import sd_architectures as arch
from .base_model import BaseModel
from .text_encoders import ClipTokens, TextEncoder, find_clip_tokenizer

UNET = "model.diffusion_model."
SD15_TEXT, SDXL_TEXT_L, SDXL_TEXT_G = "cond_stage_model.transformer.", "conditioner.embedders.0.transformer.", \
    "conditioner.embedders.1.model."
# A cross-attention key of the first attention level: SD1.5's is input block 1, SDXL's input block 4.
_CROSS_ATTENTION = [UNET + f"input_blocks.{i}.1.transformer_blocks.0.attn2.to_k.weight" for i in (1, 4)]
_OTHER_FILES = [("lora_", "a LoRA"), ("motion_modules.", "a motion module"), ("to_q_ff", "an I2V-Adapter"),
                ("down_blocks.", "a diffusers-format model (a single-file checkpoint is needed)"),
                ("encoder.down.", "a VAE"), ("double_blocks.", "a Flux model"), ("joint_blocks.", "an SD3 model")]


def tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape, without reading the weights where the format allows."""
    if path.suffix.lower() in SAFETENSORS_SUFFIXES:
        try:
            with safe_open(str(path), framework="pt") as f:
                return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
        except Exception as e:  # safetensors raises its own error types for a damaged header
            raise FileFormatError(f"{path.name} is not a readable safetensors file ({e})") from e
    return {k: tuple(v.shape) for k, v in load_tensors(path)[0].items()}


def base_family(shapes: dict[str, tuple[int, ...]], name: str) -> UNetFamily:
    """SD1.5 or SDXL, or a message saying what the file is instead."""
    needs = "--base needs a full SD1.5 or SDXL checkpoint (the single file ComfyUI's Load Checkpoint reads)"
    if not any(k.startswith(UNET) for k in shapes):
        guess = next((what for part, what in _OTHER_FILES if any(part in k for k in shapes)), "no known model")
        raise FileFormatError(f"{name} has no Stable Diffusion UNet (no 'model.diffusion_model.' keys; it looks like "
                              f"{guess}). {needs}.")
    cross = next((shapes[k] for k in _CROSS_ATTENTION if k in shapes), None)
    conv_in = shapes.get(UNET + "input_blocks.0.0.weight", (0, 0))
    if cross == (320, 768) and conv_in[1] == 4 and any(k.startswith(SD15_TEXT) for k in shapes):
        return SD15
    if cross == (640, 2048) and conv_in[1] == 4 and any(k.startswith(SDXL_TEXT_G) for k in shapes):
        return SDXL
    kind = {(320, 1024): "SD2.x", (768, 1280): "an SDXL refiner"}.get(cross, "neither SD1.5 nor SDXL")
    if conv_in[1] not in (0, 4):
        kind = f"an inpainting or other {conv_in[1]}-channel model"
    elif cross in ((320, 768), (640, 2048)):
        kind = "missing its text encoder"
    width = f" (cross-attention {cross[0]}×{cross[1]})" if cross else ""
    raise FileFormatError(f"{name} is {kind}{width}. {needs}.")


def _load(model: torch.nn.Module, state: dict, what: str, name: str) -> torch.nn.Module:
    expected = model.state_dict().keys()
    missing, unexpected = sorted(expected - state.keys()), sorted(state.keys() - expected)
    if missing or unexpected:
        raise FileFormatError(f"{name}: its {what} does not convert to the expected layout: {len(missing)} weights "
                              f"missing (e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]})")
    model.load_state_dict(state, assign=True)
    return model.float()


def _clip_state(converted: dict, model: torch.nn.Module) -> dict:
    """transformers 5 flattened CLIPTextModel (no `text_model.` level); position ids are a buffer, not weights."""
    flat = not hasattr(model, "text_model")
    return {(k.removeprefix("text_model.") if flat else k): v for k, v in converted.items() if "position_ids" not in k}


def load_base(path: Path, tokenizer: Path | None = None) -> BaseModel:
    """The frozen UNet, VAE and text encoder(s) of a single-file SD1.5 or SDXL checkpoint, in fp32 on the CPU."""
    tensors, _ = load_tensors(path)
    family = base_family({k: tuple(v.shape) for k, v in tensors.items()}, path.name)
    tokens = find_clip_tokenizer(tokenizer, path)
    with init_empty_weights():
        unet = UNet2DConditionModel(**(arch.SD15_UNET if family is SD15 else arch.SDXL_UNET))
        vae = AutoencoderKL(**arch.SD_VAE)
        clip_l = CLIPTextModel(arch.clip_config(arch.CLIP_L))
        clip_g = CLIPTextModelWithProjection(arch.clip_config(arch.CLIP_G)) if family is SDXL else None
    _load(unet, convert_ldm_unet_checkpoint(tensors, dict(unet.config)), "UNet", path.name)
    _load(vae, convert_ldm_vae_checkpoint(tensors, dict(vae.config)), "VAE", path.name)
    _load(clip_l, _clip_state(convert_ldm_clip_checkpoint(tensors), clip_l), "CLIP-L text encoder", path.name)
    if family is SD15:
        text = TextEncoder([ClipTokens(tokens, "<|endoftext|>")], [clip_l], penultimate=False)
        scale = arch.SD15_LATENT_SCALE
    else:
        state = convert_open_clip_checkpoint(clip_g, tensors, prefix=SDXL_TEXT_G)
        _load(clip_g, _clip_state(state, clip_g), "OpenCLIP-G text encoder", path.name)
        text = TextEncoder([ClipTokens(tokens, "<|endoftext|>"), ClipTokens(tokens, "!")], [clip_l, clip_g],
                           penultimate=True)
        scale = arch.SDXL_LATENT_SCALE
    del tensors
    return BaseModel(family, path.name, unet.eval(), vae.eval(), text.eval(), scale)
