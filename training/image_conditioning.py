"""The Content-Adapter as a frozen part of the base (--content-adapter, --image-encoder), as the paper trained the
I2V-Adapter: frame 0 of each clip through the CLIP image encoder (penultimate hidden states, CLIP's own image
processor as in the official release) and IP-Adapter Plus's Resampler, the tokens Apply Content-Adapter computes at
inference. Where a caption is dropped for classifier-free guidance the image is dropped with it: the unconditional
tokens are those of all-zero pixel values, as the official release samples."""
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

from ..kernels.content_adapter import ContentAdapter
from ..kernels.content_adapter_file import read_content_adapter
from ..kernels.tensor_files import FileFormatError, load_tensors
from ..kernels.unet_layout import UNetFamily

# The image encoders IP-Adapters are trained with, by (width, layers); any other needs its config.json beside it.
KNOWN_ENCODERS = {(1280, 32): ("ViT-H", 16, "gelu"), (1024, 24): ("ViT-L", 16, "quick_gelu"),
                  (1664, 48): ("ViT-bigG", 16, "gelu")}
LAYER = "vision_model.encoder.layers."


@dataclass
class ImageConditioning:
    name: str                               # what the written files and the latent cache record
    encoder: CLIPVisionModelWithProjection
    adapter: ContentAdapter

    def to(self, device, dtype) -> "ImageConditioning":
        self.encoder.to(device, dtype)
        self.adapter.to(device, torch.float32)
        return self

    @torch.no_grad()
    def _tokens(self, pixel_values: torch.Tensor) -> torch.Tensor:
        parameter = next(self.encoder.parameters())
        hidden = self.encoder(pixel_values.to(parameter), output_hidden_states=True).hidden_states[-2]
        return self.adapter.image_tokens(hidden.float())

    def tokens(self, first_frames: torch.Tensor) -> torch.Tensor:
        """[videos, 3, H, W] frames in [-1, 1] -> [videos, queries, context] image tokens."""
        pictures = ((first_frames.float().cpu() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
        pixel_values = CLIPImageProcessor()(images=list(pictures.permute(0, 2, 3, 1).numpy()),
                                            return_tensors="pt").pixel_values
        return self._tokens(pixel_values)

    def unconditional_tokens(self) -> torch.Tensor:
        size = self.encoder.config.image_size
        return self._tokens(torch.zeros(1, 3, size, size))


def _encoder_config(state: dict, path: Path) -> CLIPVisionConfig:
    width = state["vision_model.embeddings.patch_embedding.weight"].shape[0]
    layers = 1 + max(int(k[len(LAYER):].split(".")[0]) for k in state if k.startswith(LAYER))
    beside = path.with_name("config.json")
    if beside.is_file():
        return CLIPVisionConfig(**{k: v for k, v in json.loads(beside.read_text()).items() if k != "architectures"})
    if (width, layers) not in KNOWN_ENCODERS:
        raise FileFormatError(f"--image-encoder {path.name}: a CLIP image encoder {width} wide with {layers} layers is "
                              f"none of {', '.join(name for name, *_ in KNOWN_ENCODERS.values())}; put its config.json "
                              f"beside it")
    _, heads, activation = KNOWN_ENCODERS[(width, layers)]
    patch = state["vision_model.embeddings.patch_embedding.weight"].shape[-1]
    positions = state["vision_model.embeddings.position_embedding.weight"].shape[0]
    return CLIPVisionConfig(hidden_size=width, num_hidden_layers=layers, num_attention_heads=heads,
                            intermediate_size=state[f"{LAYER}0.mlp.fc1.weight"].shape[0], hidden_act=activation,
                            patch_size=patch, image_size=round((positions - 1) ** 0.5) * patch,
                            projection_dim=state["visual_projection.weight"].shape[0], layer_norm_eps=1e-5)


def load_image_encoder(path: Path) -> CLIPVisionModelWithProjection:
    """A CLIP image encoder in the transformers layout (the files ComfyUI's Load CLIP Vision reads from
    models/clip_vision, e.g. CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors)."""
    state, _ = load_tensors(path)
    if "vision_model.embeddings.patch_embedding.weight" not in state:
        raise FileFormatError(f"--image-encoder {path.name} is not a CLIP image encoder in the transformers layout (no "
                              "vision_model.embeddings keys); use CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors")
    encoder = CLIPVisionModelWithProjection(_encoder_config(state, path))
    state = {k: v for k, v in state.items() if "position_ids" not in k}
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    if [k for k in missing if "position_ids" not in k] or unexpected:
        raise FileFormatError(f"--image-encoder {path.name} does not fit its CLIP config: missing {missing[:2]}, "
                              f"unexpected {unexpected[:2]}")
    return encoder.eval().requires_grad_(False)


def load_image_conditioning(content_adapter: Path, image_encoder: Path, attention_weights: Path | None,
                            family: UNetFamily) -> ImageConditioning:
    adapter = read_content_adapter(content_adapter, attention_weights)
    if adapter.family is not family:
        raise ValueError(f"--content-adapter {adapter.source} is for {adapter.family.label} but the base is "
                         f"{family.label}")
    encoder = load_image_encoder(image_encoder)
    if encoder.config.hidden_size != adapter.shape.image_features:
        raise ValueError(f"--image-encoder {image_encoder.name} gives features {encoder.config.hidden_size} wide but "
                         f"--content-adapter {adapter.source} reads {adapter.shape.image_features} (CLIP ViT-H for "
                         "IP-Adapter Plus)")
    built = adapter.build().eval().requires_grad_(False)
    return ImageConditioning(f"{adapter.source} with {image_encoder.name}", encoder, built)
