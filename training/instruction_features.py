"""What the DQFormer trains on: a frozen vision-language model's hidden states for each clip, as Decompose Prompt
into States computes them at inference: asked AID's question about frame 0 and the clip's instruction, its answer
parsed into states, then one forward pass over the question and the states (kernels.vlm_io). They are cached with
the latents: generation is slow, and one clip per video is what the cache holds anyway.

The demonstration has no room for a vision-language model on the CPU; its stand-in reads the instruction with the
tiny base's frozen byte-level text encoder, one state, the instruction itself.
"""
from pathlib import Path

import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from ..kernels.state_answer import parse_answer
from ..kernels.state_prompt import AID_TEMPLATE, state_question
from ..kernels.tensor_files import FileFormatError
from ..kernels.vlm_io import StateFeatures, chat_inputs, no_hidden_states, state_features
from .text_encoders import TextEncoder


def _picture(pixels: torch.Tensor) -> Image.Image:
    """A [3, H, W] frame in [-1, 1] as an RGB picture."""
    array = ((pixels.float().cpu() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(array)


class VisionLanguageFeatures:
    def __init__(self, folder: Path, states: int, max_new_tokens: int = 256):
        if not (folder / "config.json").is_file():
            raise FileFormatError(f"--vlm {folder} is not a Hugging Face model folder (no config.json); give a "
                                  "vision-language model's whole folder, e.g. Qwen2.5-VL-3B-Instruct")
        self.name, self.states, self.max_new_tokens = folder.name, states, max_new_tokens
        self.processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
        self.model = AutoModelForImageTextToText.from_pretrained(folder, local_files_only=True).eval()
        self.model.requires_grad_(False)

    @property
    def hidden_size(self) -> int:
        config = self.model.config
        return getattr(config, "text_config", config).hidden_size

    def to(self, device, dtype) -> "VisionLanguageFeatures":
        self.model.to(device, dtype)
        return self

    @torch.no_grad()
    def __call__(self, first_frame: torch.Tensor, instruction: str) -> StateFeatures:
        question = state_question(AID_TEMPLATE, instruction, self.states)
        inputs = chat_inputs(self.processor, [_picture(first_frame)], question)
        inputs = inputs.to(device=self.model.device, dtype=self.model.dtype)
        tokens = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        answer = self.processor.decode(tokens[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        states = parse_answer(answer, self.states, instruction).states
        features = state_features(self.model, self.processor, inputs, states, self.name)
        if features is None:
            raise no_hidden_states(self.name, "--vlm")
        return features


class TextEncoderFeatures:
    """The demonstration's stand-in: the instruction through a frozen text encoder, as instruction and one state."""

    def __init__(self, text: TextEncoder, name: str = "the demonstration's byte-level text encoder"):
        self.text, self.name, self.states = text, name, 1

    @property
    def hidden_size(self) -> int:
        return self.text([""]).context.shape[-1]

    def to(self, device, dtype) -> "TextEncoderFeatures":
        return self

    def __call__(self, first_frame: torch.Tensor, instruction: str) -> StateFeatures:
        hidden = self.text([instruction]).context.float().cpu()
        mask = torch.ones(hidden.shape[:2], dtype=torch.bool)
        return StateFeatures(self.name, hidden, mask, hidden.clone(), mask.clone())
