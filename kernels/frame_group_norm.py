"""GroupNorm whose statistics span all frames of a video, as AnimateDiff v1 and the official I2V-Adapter release
run their UNet: `torch.nn.GroupNorm` applied to a 5-D `b c f h w` tensor in every ResNet block and the output
norm. With a clean frame 0 beside noisy frames this moves frame 0's normalised activations (and so the keys and
values the adapter branch reads) by about 20% RMS at high noise levels compared with a per-frame GroupNorm.

Hosts hand the UNet its videos one after another in the batch (`(videos frames) c h w`). A view of an existing
GroupNorm module normalises `videos c (frames h) w` instead, which has exactly the 5-D statistics; the host says
how many videos each call holds. The view shares the module's state itself (the same `__dict__` object, not a
copy), so whatever a host records on the module (ComfyUI: patched-weight flags, weight functions, cast settings)
is one record, whichever of the two it reaches through.
"""
import torch
from einops import rearrange
from torch import nn


class VideoBatch:
    """How many videos the batch of the current UNet call holds; None outside a video call (per-frame norm)."""

    def __init__(self):
        self.videos: int | None = None
        self._views: dict[type, type] = {}

    def view_class(self, norm_class: type) -> type:
        """The class of the views of `norm_class` modules that read this batch (one per GroupNorm class)."""
        if norm_class not in self._views:
            self._views[norm_class] = type(f"{norm_class.__name__}AcrossFrames", (_AcrossFrames, norm_class),
                                           {"video_batch": self})
        return self._views[norm_class]


class _AcrossFrames:
    video_batch: VideoBatch  # on the view's class: the module's shared state holds nothing of the view

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        videos = self.video_batch.videos
        if videos is None or x.ndim != 4:
            return super().forward(x)
        if x.shape[0] % videos:
            raise ValueError(f"a batch of {x.shape[0]} frames cannot be split into {videos} videos")
        y = super().forward(rearrange(x, "(v f) c h w -> v c (f h) w", v=videos))
        return rearrange(y, "v c (f h) w -> (v f) c h w", h=x.shape[2])


def across_frames(norm: nn.GroupNorm, video_batch: VideoBatch) -> nn.GroupNorm:
    """A view of `norm` that normalises each video's frames together. It is `norm`'s state under another class:
    parameters, buffers and every setting are `norm`'s own, so weights stay where the host's model management puts
    them and the view can stand in `norm`'s place in the module tree (state-dict keys unchanged)."""
    view = object.__new__(video_batch.view_class(type(norm)))
    view.__dict__ = norm.__dict__
    return view
