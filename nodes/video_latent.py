"""I2V Video Latent: the F-frame latent a stock sampler needs, with the reference image at frame 0."""
import logging

import torch

import comfy.utils
from comfy_api.latest import io

from .io_types import CATEGORY

LATENT_FACTOR = 8


def reference_image(image: torch.Tensor, width: int, height: int, node: str) -> torch.Tensor:
    """The first image of the batch, RGB, resized and centre-cropped to width×height, for the VAE."""
    for name, value in (("width", width), ("height", height)):
        if value % LATENT_FACTOR:
            raise ValueError(f"{node}: {name} {value} is not a multiple of {LATENT_FACTOR} (the VAE's factor); "
                             f"use {value - value % LATENT_FACTOR} or {value - value % LATENT_FACTOR + LATENT_FACTOR}.")
    return fitted_picture(image, width, height, node)


def fitted_picture(image: torch.Tensor, width: int, height: int, node: str) -> torch.Tensor:
    """The first image of the batch, RGB, resized and centre-cropped to width×height (any size)."""
    if image.shape[0] > 1:
        logging.warning("%s: the image batch holds %d images; the first one is the reference.", node, image.shape[0])
    first = image[:1, :, :, :3].movedim(-1, 1)
    return comfy.utils.common_upscale(first, width, height, "bilinear", "center").movedim(1, -1)


def video_inputs() -> list:
    """What a node needs to make the video latent from the reference image (this node and the Frame Similarity
    Prior)."""
    return [
        io.Vae.Input("vae", tooltip="The checkpoint's VAE, used to encode the reference image."),
        io.Image.Input("image", tooltip="The reference image: the video's first frame. With a batch, the first "
                                        "image is used."),
        io.Int.Input("frames", default=16, min=2, max=4096,
                     tooltip="Frames in the video, the reference included (16 for AnimateDiff)."),
        io.Int.Input("width", default=512, min=64, max=8192, step=8,
                     tooltip="Video width in pixels, a multiple of 8; the image is resized and centre-cropped to it."),
        io.Int.Input("height", default=512, min=64, max=8192, step=8, tooltip="Video height in pixels, a multiple of 8."),
    ]


def with_reference_first(reference: torch.Tensor, later: torch.Tensor) -> dict:
    """A LATENT: frame 0 the reference latent, held by the noise mask (0 there, 1 on the frames to generate), then
    the later frames' starting latents."""
    samples = torch.cat([reference[:1], later.to(reference)])
    mask = torch.ones((samples.shape[0], 1) + tuple(samples.shape[2:]))
    mask[0] = 0.0
    return {"samples": samples, "noise_mask": mask}


class I2VVideoLatent(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="I2V_VideoLatent",
            display_name="I2V Video Latent",
            category=CATEGORY,
            description="A video latent for the stock KSampler: frame 0 is the encoded reference image (kept fixed "
                        "by a noise mask), the other frames are generated.",
            inputs=video_inputs(),
            outputs=[io.Latent.Output(tooltip="frames × latent, frame 0 = the reference; connect to KSampler and to "
                                              "Apply I2V-Adapter's reference.")],
        )

    @classmethod
    def execute(cls, vae, image, frames, width, height):
        reference = vae.encode(reference_image(image, width, height, "I2V Video Latent"))
        later = torch.zeros((frames - 1,) + tuple(reference.shape[1:]))
        return io.NodeOutput(with_reference_first(reference, later))
