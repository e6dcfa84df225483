"""The papers' video metrics on the validation samples, as I2V Video Metrics computes them in ComfyUI
(kernels/video_metrics.py): CLIPTemp and ISIM from a CLIP image encoder (a Hugging Face folder, e.g. h94's
IP-Adapter image_encoder/), FlowScore and WarpingError from torchvision RAFT weights (docs/metrics.md). The models
wait on the CPU and go to the device for a validation only."""
import math
from pathlib import Path

import torch

from ..kernels.optical_flow import raft_flow, read_raft
from ..kernels.video_metrics import input_similarity, measure_motion, similarities_to_image


class ValidationMetrics:
    def __init__(self, clip_vision: Path | None, optical_flow: Path | None):
        from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection
        if clip_vision is not None and not (clip_vision / "config.json").is_file():
            raise FileNotFoundError(f"--validate-clip-vision {clip_vision} is not a Hugging Face CLIP vision folder "
                                    "(config.json and the weights, e.g. h94/IP-Adapter's models/image_encoder)")
        self.encoder = None if clip_vision is None else CLIPVisionModelWithProjection.from_pretrained(
            clip_vision, local_files_only=True).eval()
        self.processor = CLIPImageProcessor()  # OpenAI CLIP's 224² resize, centre crop and normalisation
        self.raft = None if optical_flow is None else read_raft(optical_flow)

    def names(self) -> list[str]:
        return ((["clip_temp", "isim_first", "isim_decay"] if self.encoder else [])
                + (["flow_score", "warping_error"] if self.raft else []))

    @torch.no_grad()
    def measure(self, frames: torch.Tensor, image: torch.Tensor, device: torch.device) -> dict[str, float]:
        """frames [F, H, W, 3] and image [1, H, W, 3] in 0..1 (ComfyUI's IMAGE): each metric by name."""
        found = {}
        models = [model for model in (self.encoder, self.raft) if model is not None]
        for model in models:
            model.to(device)
        try:
            if self.encoder is not None:
                similarity = input_similarity(similarities_to_image(frames, image, self._encoder(device)))
                found.update(clip_temp=similarity.clip_temp, isim_first=similarity.isim_first,
                             isim_decay=similarity.isim_decay)
            if self.raft is not None:
                motion = measure_motion(frames, raft_flow(self.raft, device))
                found.update(flow_score=motion.flow_score, warping_error=motion.warping_error)
        finally:
            for model in models:
                model.to("cpu")
        return {name: value for name, value in found.items() if math.isfinite(value)}

    def _encoder(self, device: torch.device):
        def encode(pictures: torch.Tensor) -> torch.Tensor:
            images = list((pictures * 255).round().to(torch.uint8).cpu().numpy())
            pixels = self.processor(images=images, return_tensors="pt").pixel_values
            return self.encoder(pixels.to(device, self.encoder.dtype)).image_embeds
        return encode
