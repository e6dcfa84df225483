"""Asking a vision-language model one question about one or more images, as a ComfyUI node step: the queue's
progress bar counts the new tokens, and interrupting the queue stops the generation."""
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from transformers import StoppingCriteria, StoppingCriteriaList

import comfy.model_management as model_management
import comfy.utils

from ..kernels.vlm_io import StateFeatures, chat_inputs, state_features
from .vlm_model import VisionLanguageModel, model_on_device


def pictures(images: torch.Tensor, max_side: int) -> list[Image.Image]:
    """A ComfyUI IMAGE batch ([B, H, W, C] in 0..1) as RGB pictures, shrunk to at most max_side pixels a side:
    a VLM's cost grows with the image area, and some processors accept images of many megapixels."""
    out = []
    for image in images:
        array = (image[..., :3].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
        picture = Image.fromarray(np.ascontiguousarray(array))
        picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        out.append(picture)
    return out


class QueueWatch(StoppingCriteria):
    """Called by generate() after every new token: one progress step, and a stop when the queue is interrupted
    (raised as ComfyUI's interrupt once generate() returns)."""

    def __init__(self, bar: comfy.utils.ProgressBar):
        self.bar = bar

    def __call__(self, input_ids, scores, **kwargs):
        self.bar.update(1)
        return torch.full((input_ids.shape[0],), model_management.processing_interrupted(), dtype=torch.bool,
                          device=input_ids.device)


def ask(vlm: VisionLanguageModel, images: list[Image.Image], question: str, max_new_tokens: int,
        temperature: float, seed: int) -> str:
    """The model's answer to the images (in order) followed by the question: greedy when temperature is 0, else
    plain temperature sampling seeded by `seed` (the model's own top-k/top-p are switched off)."""
    inputs = chat_inputs(vlm.processor, images, question)
    if temperature > 0:
        sampling = dict(do_sample=True, temperature=temperature, top_k=0, top_p=1.0)
        torch.manual_seed(seed)  # as ComfyUI seeds its own noise
    else:
        sampling = dict(do_sample=False, temperature=None, top_k=None, top_p=None)
    bar = comfy.utils.ProgressBar(max_new_tokens)
    with model_on_device(vlm) as device:
        inputs = inputs.to(device=device, dtype=vlm.model.dtype)
        with torch.inference_mode():
            tokens = vlm.model.generate(**inputs, max_new_tokens=max_new_tokens,
                                        stopping_criteria=StoppingCriteriaList([QueueWatch(bar)]), **sampling)
    model_management.throw_exception_if_processing_interrupted()
    bar.update_absolute(max_new_tokens)
    return vlm.processor.decode(tokens[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()


@dataclass
class DecomposedStates:
    """What Decompose Prompt into States gives Apply DQFormer."""
    model: str                     # the vision-language model's name
    features: StateFeatures | None  # None where the model returns no hidden states
    weights: torch.Tensor          # [frames, states]: each frame's blend of the states


def answer_features(vlm: VisionLanguageModel, images: list[Image.Image], question: str,
                    states: list[str]) -> StateFeatures | None:
    """The hidden states a DQFormer reads: over the images and the question, and over each state's sentence."""
    inputs = chat_inputs(vlm.processor, images, question)
    with model_on_device(vlm) as device:
        inputs = inputs.to(device=device, dtype=vlm.model.dtype)
        return state_features(vlm.model, vlm.processor, inputs, states, vlm.name)
