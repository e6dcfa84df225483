"""Captions to UNet conditioning, computed as ComfyUI's CLIPTextEncode computes it for SD1.5 (CLIP-L's last
layer) and SDXL (CLIP-L and OpenCLIP-G penultimate layers side by side, and G's pooled projection).

The CLIP tokenizer's vocabulary is not ours to ship and nothing is downloaded: its two files (vocab.json and
merges.txt) come from --tokenizer, or from the ComfyUI the base checkpoint sits in (ComfyUI/comfy/sd1_tokenizer,
which every ComfyUI install has), or from $COMFYUI_PATH. These are data files read as text; no ComfyUI code runs.
"""
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import CLIPTokenizer

TOKENIZER_FILES = ("vocab.json", "merges.txt")
CLIP_TOKENS = 77


def find_clip_tokenizer(explicit: Path | None, base_checkpoint: Path) -> Path:
    """The folder holding CLIP's vocab.json and merges.txt."""
    if explicit is not None:
        candidates = [explicit]
    else:
        installs = [*base_checkpoint.resolve().parents]
        if os.environ.get("COMFYUI_PATH"):
            installs.append(Path(os.environ["COMFYUI_PATH"]))
        candidates = [install / "comfy" / "sd1_tokenizer" for install in installs]
    for folder in candidates:
        if all((folder / name).is_file() for name in TOKENIZER_FILES):
            return folder
    if explicit is not None:
        raise FileNotFoundError(f"--tokenizer {explicit} must be a folder holding {' and '.join(TOKENIZER_FILES)} "
                                "(CLIP's BPE vocabulary, e.g. ComfyUI/comfy/sd1_tokenizer or the tokenizer/ folder "
                                "of a diffusers Stable Diffusion model)")
    raise FileNotFoundError(
        "CLIP's tokenizer files were not found: the base checkpoint is not inside a ComfyUI install and "
        "$COMFYUI_PATH is not set. Pass --tokenizer <folder with vocab.json and merges.txt>, e.g. "
        "ComfyUI/comfy/sd1_tokenizer or the tokenizer/ folder of a diffusers Stable Diffusion model.")


class ClipTokens:
    """Captions to [captions, 77] token ids: start, BPE tokens (truncated), end, then padding."""

    def __init__(self, folder: Path, pad_token: str):
        self.tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), pad_token=pad_token,
                                       model_max_length=CLIP_TOKENS)

    def __call__(self, captions: list[str]) -> torch.Tensor:
        return self.tokenizer(captions, padding="max_length", max_length=CLIP_TOKENS, truncation=True,
                              return_tensors="pt").input_ids


@dataclass
class Conditioning:
    context: torch.Tensor               # [captions, tokens, dim]: the UNet's encoder_hidden_states
    pooled: torch.Tensor | None = None  # [captions, dim]: SDXL's text_embeds


class TextEncoder(nn.Module):
    """Frozen text encoders with their tokenizers. `penultimate`: SDXL's two encoders; else one encoder's last
    layer (SD1.5, and the demonstration model)."""

    def __init__(self, tokenizers: list, encoders: list[nn.Module], penultimate: bool):
        super().__init__()
        self.tokenizers, self.encoders, self.penultimate = tokenizers, nn.ModuleList(encoders), penultimate
        self.requires_grad_(False)

    @torch.no_grad()
    def forward(self, captions: list[str]) -> Conditioning:
        device = next(self.encoders.parameters()).device
        outputs = [encoder(tokens(captions).to(device), output_hidden_states=self.penultimate)
                   for tokens, encoder in zip(self.tokenizers, self.encoders)]
        if not self.penultimate:
            return Conditioning(outputs[0].last_hidden_state)
        return Conditioning(torch.cat([out.hidden_states[-2] for out in outputs], dim=-1), outputs[-1].text_embeds)
