"""The frozen base the adapters train on: UNet, VAE and text encoders, and the encoding of video clips into the
latents the UNet sees."""
from dataclasses import dataclass

import torch
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from torch import nn

from ..kernels.unet_layout import SDXL, UNetFamily
from .text_encoders import Conditioning, TextEncoder


@dataclass
class BaseModel:
    family: UNetFamily
    name: str           # the checkpoint's file name, recorded in the files the trainer writes
    unet: nn.Module     # diffusers UNet2DConditionModel
    vae: nn.Module      # diffusers AutoencoderKL (or anything whose encode() gives a latent_dist)
    text: TextEncoder
    latent_scale: float
    vae_factor: int = 8  # pixels per latent, each way

    def to(self, device, dtype: torch.dtype, vae_dtype: torch.dtype | None = None) -> "BaseModel":
        for module, wanted in ((self.unet, dtype), (self.vae, vae_dtype or dtype), (self.text, dtype)):
            module.to(device)
            if next(module.parameters()).dtype != wanted:  # (diffusers warns on every dtype cast)
                module.to(wanted)
        return self

    @torch.no_grad()
    def encode_video(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels [videos, frames, 3, H, W] in [-1, 1] -> the VAE posterior's moments [videos, frames, 2C, h, w]
        (cached as they are; `latents` draws from them)."""
        vae_param = next(self.vae.parameters())
        moments = self.vae.encode(pixels.flatten(0, 1).to(vae_param)).latent_dist.parameters
        return moments.unflatten(0, pixels.shape[:2])

    def latents(self, moments: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A draw from the posterior, scaled as the UNet expects (ComfyUI's process_latent_in)."""
        draw = DiagonalGaussianDistribution(moments.flatten(0, 1).float()).sample(generator)
        return draw.unflatten(0, moments.shape[:2]) * self.latent_scale

    def added_cond(self, conditioning: Conditioning, geometry: torch.Tensor) -> dict[str, torch.Tensor] | None:
        """SDXL's micro-conditioning: pooled text and (original size, crop top-left, target size) per video."""
        if self.family is not SDXL:
            return None
        return {"text_embeds": conditioning.pooled, "time_ids": geometry.to(conditioning.pooled)}
