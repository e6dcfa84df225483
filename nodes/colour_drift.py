"""Colour drift: I2V Colour Match (after decoding) and I2V Anchor Latent Colour (while sampling).

The anchor is a post-CFG function: it sees the guided x0 prediction of the whole video once per step, after
the cond/uncond batches (and any context windows) are merged, so frame 0 is always there to anchor to and the
sampler steps toward the anchored prediction, whatever the sampler. A model wrapper would run on cond and
uncond separately and, under context windows, on slices that may not hold frame 0.
"""
import torch

import comfy.model_management
from comfy_api.latest import io

from ..kernels.colour_match import anchor_channel_statistics, match_colours_to_first_frame
from .io_types import CATEGORY
from .patch_support import SharedPatch, check_video_latent
from .video_latent import fitted_picture

CHUNK = 16  # frames matched between two interruption checks
NODE = "I2V Anchor Latent Colour"


class ColourMatch(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="I2V_ColourMatch",
            display_name="I2V Colour Match to Frame 0",
            category=CATEGORY,
            description="Matches each later frame's colours to frame 0's after decoding: the a and b histograms in LAB "
                        "space, the lightness untouched (the official release's post-processing).",
            inputs=[
                io.Image.Input("images", tooltip="The decoded video, frame 0 first (VAE Decode's output)."),
                io.Image.Input("colour_reference", optional=True,
                               tooltip="Optional: a picture whose colours every frame gets, frame 0 included. For a "
                                       "long video made clip by clip, the first clip's picture: each clip's frame 0 "
                                       "has been through the VAE once more, and matching to it would hand that on. "
                                       "Not connected: frame 0's colours (the official post-processing)."),
            ],
            outputs=[io.Image.Output(tooltip="The same frames, frames 1.. with frame 0's a/b colour distribution "
                                             "(frame 0 as it was), or every frame with colour_reference's.")],
        )

    @classmethod
    def execute(cls, images, colour_reference=None):
        template, first = images[:1], 1
        if colour_reference is not None:
            template = fitted_picture(colour_reference, images.shape[2], images.shape[1], "I2V Colour Match")
            first = 0
        matched = images.clone()
        for start in range(first, images.shape[0], CHUNK):
            comfy.model_management.throw_exception_if_processing_interrupted()
            chunk = torch.cat([template.to(images), images[start:start + CHUNK]])
            matched[start:start + CHUNK] = match_colours_to_first_frame(chunk)[1:]
        return io.NodeOutput(matched)


class AnchorChannelStatistics(SharedPatch):
    """sampler_post_cfg_function: frames 1.. of the guided x0 prediction moved toward frame 0's channel statistics."""

    def __init__(self, reference: torch.Tensor, strength: float):
        self.reference, self.strength = reference, strength

    def __call__(self, args):
        denoised = args["denoised"]
        check_video_latent(denoised, self.reference, NODE, "Connect the LATENT the sampler starts from as the "
                                                           "reference.")
        return anchor_channel_statistics(denoised, self.reference.to(denoised), self.strength)


class AnchorLatentColour(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="I2V_AnchorLatentColour",
            display_name=NODE,
            category=CATEGORY,
            description="Against colour drift during sampling: at every step, the later frames' predicted latents move "
                        "toward frame 0's per-channel mean and standard deviation.",
            inputs=[
                io.Model.Input("model", tooltip="The model to sample with (after Apply I2V-Adapter, or any other "
                                                "patch)."),
                io.Latent.Input("reference", tooltip="A LATENT whose frame 0 is the reference image: the Frame "
                                                     "Similarity Prior's or I2V Video Latent's output."),
                io.Float.Input("strength", default=0.5, min=0.0, max=1.0, step=0.05,
                               tooltip="0 leaves sampling as it was; 1 gives every later frame exactly frame 0's "
                                       "channel statistics at every step (little room for lighting changes)."),
            ],
            outputs=[io.Model.Output(tooltip="The model with the anchor, for KSampler or SamplerCustom.")],
        )

    @classmethod
    def execute(cls, model, reference, strength):
        if strength == 0.0:
            return io.NodeOutput(model)
        patched = model.clone()
        first = model.model.process_latent_in(reference["samples"][:1].float())
        patched.set_model_sampler_post_cfg_function(AnchorChannelStatistics(first, strength))
        return io.NodeOutput(patched)
