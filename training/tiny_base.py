"""The demonstration's base model: a tiny UNet, VAE and text encoder of the TINY family (kernels/unet_layout.py),
fitted in a few seconds to the synthetic world as a text-to-image denoiser, then frozen like any base.

Its "VAE" is a fixed random projection of 4×4 pixel patches: local like a trained VAE's latents (a random
AutoencoderKL is not: its attention and normalisations spread a moving object into every latent pixel), with a
posterior of zero variance. Its tokenizer reads UTF-8 bytes, so the demonstration needs no file at all.
"""
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModel

from ..kernels.noise_schedule import SD_DEFAULT
from ..kernels.unet_layout import TINY
from .base_model import BaseModel
from .denoising import scheduler_for
from .seeds import generator as seeded
from .text_encoders import TextEncoder

TINY_UNET = dict(
    sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=TINY.block_out_channels,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32, attention_head_dim=4,
    norm_num_groups=8)
PATCH = 4
BYTE_TOKENS = 32
TINY_CLIP = dict(vocab_size=259, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                 max_position_embeddings=BYTE_TOKENS, bos_token_id=256, eos_token_id=257, pad_token_id=258)


def byte_tokens(captions: list[str]) -> torch.Tensor:
    """[captions, 32]: start, UTF-8 bytes (truncated), end, padding."""
    rows = []
    for caption in captions:
        ids = [256, *caption.encode("utf-8")[:BYTE_TOKENS - 2], 257]
        rows.append(ids + [258] * (BYTE_TOKENS - len(ids)))
    return torch.tensor(rows)


class PatchVAE(nn.Module):
    """4×4 pixel patches to 4 latent channels by a fixed projection; encode() answers like AutoencoderKL's."""

    def __init__(self):
        super().__init__()
        self.project = nn.Conv2d(3, 4, PATCH, stride=PATCH)
        self.requires_grad_(False)

    def encode(self, pixels: torch.Tensor) -> SimpleNamespace:
        mean = self.project(pixels)
        log_variance = torch.full_like(mean, -30.0)
        return SimpleNamespace(latent_dist=DiagonalGaussianDistribution(torch.cat([mean, log_variance], 1)))

    def decode(self, latents: torch.Tensor) -> SimpleNamespace:
        """The least-squares patches of the latents (the projection keeps 4 of each patch's 48 numbers): blurry, but
        enough to look at the demonstration's samples."""
        weight = self.project.weight.flatten(1)  # [4, 48]
        patches = torch.linalg.pinv(weight.double()).float().T  # [4, 48]
        shifted = latents - self.project.bias.view(1, -1, 1, 1)
        return SimpleNamespace(sample=F.conv_transpose2d(shifted, patches.view(4, 3, PATCH, PATCH), stride=PATCH))


def tiny_base(seed: int = 0) -> BaseModel:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(**TINY_UNET)
        text = TextEncoder([byte_tokens], [CLIPTextModel(CLIPTextConfig(**TINY_CLIP))], penultimate=False)
        vae = PatchVAE()
    return BaseModel(TINY, "tiny demonstration base", unet, vae, text, latent_scale=1.0, vae_factor=PATCH)


def fit_tiny_base(base: BaseModel, clips, steps: int, batch: int = 32, learning_rate: float = 2e-3,
                  seed: int = 0) -> list[float]:
    """Scale the latents to unit spread, then train the UNet to denoise single frames of `clips` (a text-to-image
    base: it never sees two frames together) and freeze it. Returns the loss per step."""
    sample = torch.stack([clips.clip(i).pixels for i in range(min(16, len(clips)))])
    base.latent_scale = 1.0 / base.latents(base.encode_video(sample), seeded(seed)).std().item()
    base.unet.train().requires_grad_(True)
    optimizer = torch.optim.AdamW(base.unet.parameters(), lr=learning_rate)
    losses = []
    for step in range(steps):
        draw = seeded(seed, step)
        picks = torch.randint(0, len(clips), (batch,), generator=draw)
        frames = torch.randint(0, clips.frames, (batch,), generator=draw)
        chosen = [clips.clip(int(i)) for i in picks]
        pixels = torch.stack([c.pixels[f] for c, f in zip(chosen, frames)]).unsqueeze(1)
        latents = base.latents(base.encode_video(pixels), draw)[:, 0]
        noise = torch.randn(latents.shape, generator=draw)
        t = torch.randint(0, SD_DEFAULT.timesteps, (batch,), generator=draw)
        context = base.text([c.caption for c in chosen]).context
        prediction = base.unet(scheduler_for(SD_DEFAULT).add_noise(latents, noise, t), t, context).sample
        loss = F.mse_loss(prediction, noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    base.unet.eval().requires_grad_(False)
    return losses
