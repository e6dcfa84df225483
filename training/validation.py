"""--validate-every: every N steps (and at the end) a few held-out clips are sampled from their first frame and
caption with the weights being trained (training/sampling.py), written as videos into <run dir>/validation/, and
their held-out denoising loss (training/evaluation.py) is measured, and with --validate-clip-vision and
--validate-optical-flow the papers' video metrics too (training/validation_metrics.py), each the mean over the
clips.

Validation draws only from its own seeded generators, inside a forked random state: the training's random stream,
and so exact resume, stay as they are."""
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch

from ..kernels.tensor_files import atomic_path
from .evaluation import held_out_loss
from .sampling import sample_video
from .seeds import generator as seeded

VIDEO_FPS = 8


@dataclass(frozen=True)
class ValidationSettings:
    every: int = 0          # steps between validations; 0: none
    clips: int = 2          # held-out clips sampled each time
    steps: int = 10         # DDIM steps
    cfg: float = 5.0        # classifier-free guidance scale
    report_to: str = "none"  # accelerate's trackers: tensorboard, wandb or none
    clip_vision: Path | None = None   # a CLIP vision folder, for CLIPTemp and ISIM
    optical_flow: Path | None = None  # torchvision RAFT weights, for FlowScore and WarpingError

    def metrics(self):
        """The models of the video metrics asked for, loaded once per run; None when none is."""
        if self.clip_vision is None and self.optical_flow is None:
            return None
        from .validation_metrics import ValidationMetrics
        return ValidationMetrics(self.clip_vision, self.optical_flow)

    def due(self, step: int, last: int) -> bool:
        return self.every > 0 and (step % self.every == 0 or step == last)


class FirstClips:
    """The first `count` clips of a clip set, read as evaluation.py reads clips."""

    def __init__(self, clips, count: int):
        self.clips, self.count = clips, min(count, len(clips))

    def __len__(self) -> int:
        return self.count

    def clip(self, index: int, generator=None):
        return self.clips.clip(index, generator)


def write_video(path: Path, pixels: torch.Tensor, fps: int = VIDEO_FPS) -> np.ndarray:
    """pixels [frames, 3, H, W] in [-1, 1] as an H.264 .mp4, written under a temporary name and renamed; returns the
    frames written, [frames, H, W, 3] uint8."""
    frames = ((pixels.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    with atomic_path(path) as temporary:
        with av.open(temporary, "w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
            for frame in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())
    return frames


def log_videos(accelerator, videos: dict[str, np.ndarray], step: int) -> None:
    """Each video's frames as images in the trackers that show images (TensorBoard: one strip per clip)."""
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            tracker.log_images(videos, step=step, dataformats="NHWC")
        elif tracker.name == "wandb":
            tracker.log_images({tag: list(frames) for tag, frames in videos.items()}, step=step)


def _decode(base, latents: torch.Tensor) -> torch.Tensor:
    """[frames, C, h, w] latents -> [frames, 3, H, W] pixels in [-1, 1] through the base's VAE."""
    vae_param = next(base.vae.parameters())
    return base.vae.decode((latents / base.latent_scale).to(vae_param)).sample


@torch.no_grad()
def validate(model, base, image, clips, config, step: int, device: torch.device, metrics=None
             ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Sample and write each clip of `clips` (a FirstClips); returns the scalars to log and each video's frames
    [F, H, W, 3] uint8 by tag. `model`: the unwrapped VideoUNet (no collective call: only the main process
    validates); `image`: the Content-Adapter, if any; `metrics`: a ValidationMetrics, if any."""
    settings, folder = config.validation, config.run_dir / "validation"
    folder.mkdir(parents=True, exist_ok=True)
    frozen = [(module, next(module.parameters()).device) for module in (base.vae, base.text)]
    for module, _ in frozen:  # a latent cache moved them off the GPU
        module.to(device)
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            scalars, measured, videos = {}, [], {}
            if image is None:  # held_out_loss feeds no image tokens
                scalars["validation/held_out_loss"] = held_out_loss(model, base, clips, config.noise_schedule,
                                                                    seed=config.seed)
            for index in range(len(clips)):
                item = clips.clip(index, seeded(config.seed, index))
                pixels = item.pixels[None, :1].to(device)
                first = base.latents(base.encode_video(pixels), seeded(config.seed, 1, index))[:, 0].to(device)
                conditioning = base.text([item.caption, ""])
                added = base.added_cond(conditioning, item.geometry[None].expand(2, -1).to(device))
                tokens = None if image is None else torch.cat([image.tokens(pixels[:, 0]).to(device),
                                                               image.unconditional_tokens().to(device)])
                latents = sample_video(model, first, conditioning.context.to(device), config.frames,
                                       config.noise_schedule, settings.steps, settings.cfg, config.seed + index,
                                       added, tokens)
                video = _decode(base, latents[0])
                videos[f"validation/clip_{index}"] = write_video(folder / f"step-{step:08d}-clip-{index}.mp4", video)
                if metrics is not None:  # ComfyUI's IMAGE layout: [frames, H, W, 3] in 0..1
                    pictures = ((video.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1)
                    reference = ((item.pixels[:1].float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1)
                    measured.append(metrics.measure(pictures, reference, device))
            for name in metrics.names() if metrics is not None else []:
                values = [found[name] for found in measured if name in found]
                if values:
                    scalars[f"validation/{name}"] = sum(values) / len(values)
            return scalars, videos
    finally:
        for module, was in frozen:
            module.to(was)
