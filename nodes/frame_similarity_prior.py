"""I2V Frame Similarity Prior: the video latent whose later frames start from the degraded reference, and the
KSampler settings that start sampling at t0.

The stock samplers start from `latent + σ0·noise` (variance-exploding; at the schedule's maximum sigma
`latent + sqrt(1 + σ0²)·noise`, which the UNet sees as `α_T·latent + noise`). A LATENT holding D(x) therefore
gives exactly the paper's x_t0 ~ N(α_t0 D(x), σ_t0² I) at whatever σ0 the sampler starts from; the node only
has to make the sampler start at t0, by KSampler's own rule: a schedule of int(steps / denoise) steps of which
the last steps + 1 sigmas are kept.
"""
import torch

from comfy_api.latest import io

from ..kernels.frame_similarity_prior import (DEFAULT_BLUR_KERNEL, DEFAULT_BLUR_SIGMA, DEFAULT_P, DEFAULT_T0,
                                              check_degradation, degraded_frames, sampler_start)
from .io_types import CATEGORY
from .video_latent import reference_image, video_inputs, with_reference_first

NODE = "I2V Frame Similarity Prior"
DEGRADE_SPACES = ["latent", "pixel"]


def degraded_latents(vae, image: torch.Tensor, reference: torch.Tensor, frames: int, p: float, blur_kernel: int,
                     blur_sigma: float, space: str, seed: int) -> torch.Tensor:
    """D(x) for frames 1..frames-1: on the reference latent, or on the reference picture and then encoded."""
    if space == "latent":
        return degraded_frames(reference, frames - 1, p, blur_kernel, blur_sigma, seed)
    pixels = degraded_frames(image.movedim(-1, 1), frames - 1, p, blur_kernel, blur_sigma, seed)
    return vae.encode(pixels.movedim(1, -1))


class FrameSimilarityPrior(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="I2V_FrameSimilarityPrior",
            display_name=NODE,
            category=CATEGORY,
            description="The Frame Similarity Prior (I2V-Adapter paper, sec. 3.3): every later frame starts from the "
                        "reference, partly blurred, noised to the level of t0 by the sampler itself; frame 0 is the "
                        "clean reference. Lower t0 gives a steadier video in fewer steps. Wire steps and denoise to "
                        "KSampler (or to BasicScheduler for SamplerCustom). Defaults are the official release's.",
            inputs=[
                *video_inputs(),
                io.Int.Input("steps", default=25, min=1, max=10000,
                             tooltip="Steps of the full schedule (t0 = 1). Of these, round(steps × t0) run: the steps "
                                     "output."),
                io.Float.Input("t0", default=DEFAULT_T0, min=0.0, max=1.0, step=0.01,
                               tooltip="Where sampling starts, as a fraction of the schedule, in (0, 1]. 1 starts from "
                                       "the noisiest step (the official release); lower keeps more of the reference: "
                                       "a steadier video with less motion, in fewer steps."),
                io.Float.Input("p", default=DEFAULT_P, min=0.0, max=1.0, step=0.05,
                               tooltip="Probability that an element of a later frame keeps the sharp reference; the "
                                       "rest takes the blurred reference. 1 = no blur, 0 = fully blurred; a new mask "
                                       "per frame."),
                io.Int.Input("blur_kernel", default=DEFAULT_BLUR_KERNEL, min=1, max=255, step=2,
                             tooltip="Size of the Gaussian blur kernel, a positive odd number, in elements of the "
                                     "space below."),
                io.Float.Input("blur_sigma", default=DEFAULT_BLUR_SIGMA, min=0.1, max=1000.0, step=0.1,
                               tooltip="Standard deviation of the Gaussian blur (18 with kernel 9: close to a 9×9 box "
                                       "blur)."),
                io.Combo.Input("degrade_in", options=DEGRADE_SPACES, default="latent",
                               tooltip="Where the mask and blur act: on the reference latent (the official release), "
                                       "or on the reference picture, each frame then encoded by the VAE (slower; "
                                       "scale the kernel by 8 for a comparable blur)."),
                io.Int.Input("mask_seed", default=0, min=0, max=0xffffffffffffffff, control_after_generate=False,
                             tooltip="Seed of the masks; the same seed gives the same latent on every run (it never "
                                     "changes by itself). The noise comes from the sampler's seed."),
            ],
            outputs=[
                io.Latent.Output(display_name="latent",
                                 tooltip="frames × latent: frame 0 the clean reference (held by a noise mask), the "
                                         "others D(reference). Connect to KSampler and to Apply I2V-Adapter."),
                io.Int.Output(display_name="steps",
                              tooltip="The steps that run: connect to KSampler's (or BasicScheduler's) steps."),
                io.Float.Output(display_name="denoise",
                                tooltip="The denoise that starts the schedule at t0: connect to KSampler's (or "
                                        "BasicScheduler's) denoise together with steps."),
            ],
        )

    @classmethod
    def execute(cls, vae, image, frames, width, height, steps, t0, p, blur_kernel, blur_sigma, degrade_in, mask_seed):
        run, denoise = sampler_start(steps, t0)
        check_degradation(p, blur_kernel, blur_sigma)
        picture = reference_image(image, width, height, NODE)
        reference = vae.encode(picture)
        later = degraded_latents(vae, picture, reference, frames, p, blur_kernel, blur_sigma, degrade_in, mask_seed)
        return io.NodeOutput(with_reference_first(reference, later), run, denoise)
