"""A long video through ComfyUI core's Context Windows node on the recipe's model (SD1.5, AnimateDiff v1, the
Content-Adapter and the I2V-Adapter): step time per frame and peak memory, which must stay flat as frames grow."""
from dataclasses import replace
from functools import partial

import torch

import comfy.context_windows
from comfy_extras.nodes_context_windows import ContextWindowsManualNode

from .. import targets
from ..graph import recipe_base, sample, video_latent, with_i2v_adapter
from ..measure import Deadline, alternate
from ..models import Models
from ..report import Row, measured, met
from ..sizes import Video


class FirstSigmaHandler(comfy.context_windows.IndexListContextHandler):
    """ComfyUI 0.3.64's context windows look the step up by comparing the schedule with every element of the
    timestep elementwise, which fails for models that batch frames (one sigma per frame) unless steps + 1 == frames;
    later ComfyUI compares the first element, as this does."""

    def set_step(self, timestep, model_options):
        super().set_step(timestep[:1], model_options)


def windowed(model, length: int, overlap: int):
    """Context Windows (Manual), static schedule, pyramid fusion, over the frames (dim 0)."""
    model = ContextWindowsManualNode.execute(
        model, length, overlap, comfy.context_windows.ContextSchedules.STATIC_STANDARD, 1, False,
        comfy.context_windows.ContextFuseMethods.PYRAMID, 0).result[0]
    model.model_options["context_handler"].__class__ = FirstSigmaHandler  # the node's settings, later ComfyUI's step
    return model


@torch.inference_mode()  # as ComfyUI's executor runs a prompt
def run(models: Models, deadline: Deadline, title: str, videos: tuple[Video, ...], context: tuple[int, int]
        ) -> list[Row]:
    model = recipe_base(models)
    runs = {}
    for video in videos:
        latent = video_latent(models, video)
        runs[video] = partial(sample, windowed(with_i2v_adapter(models, model, "sd15", latent), *context), latent,
                              models.conditioning("sd15"), video.steps)
    per_frame = {video: replace(m, seconds=m.seconds / (video.steps * video.frames))
                 for video, m in alternate(runs, models.sizes.repeats, models.sizes.gpu, deadline).items()}
    first, last = per_frame[videos[0]], per_frame[videos[-1]]
    rows = [measured(title, f"{video.label}, windows of {context[0]} overlapping {context[1]}", m, "s/frame/step",
                     None if m is first else first) for video, m in per_frame.items()]
    rows[-1].target = f"peak ≤ {targets.LONG_VIDEO_PEAK:.2f}× {videos[0].frames} frames'"
    rows[-1].result = met(last.peak <= targets.LONG_VIDEO_PEAK * first.peak)
    return rows
