"""GroupNorm whose statistics span all frames of a video, as AnimateDiff v1 and the official I2V-Adapter release
run their UNet: `torch.nn.GroupNorm` applied to a 5-D `b c f h w` tensor in every ResNet block and the output
norm. With a clean frame 0 beside noisy frames this moves frame 0's normalised activations (and so the keys and
values the adapter branch reads) by about 20% RMS at high noise levels compared with a per-frame GroupNorm.

Hosts hand the UNet its videos one after another in the batch (`(videos frames) c h w`). A view of an existing
GroupNorm module normalises each video's frames together, in that layout: ATen's GroupNorm normalises each frame,
each video's statistics follow from the frames' (law of total variance), and one pass (`addcmul` with a scale and
shift per frame and channel) moves each frame onto them with the affine: no permuted copy of the batch in or out.
The host says how many videos each call holds, and how the norm's weight and bias are read (a host that casts or
patches weights per call). The view shares the module's state itself (the same `__dict__` object, not a copy), so
whatever a host records on the module (ComfyUI: patched-weight flags, weight functions, cast settings) is one
record, whichever of the two it reaches through.
"""
import torch
from torch import nn


def own_affine(norm: nn.GroupNorm, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    return norm.weight, norm.bias


class VideoBatch:
    """How many videos the batch of the current UNet call holds; None outside a video call (per-frame norm).
    `affine(norm, x)` gives the weight and bias the norm applies to `x` (default: its parameters as they are)."""

    def __init__(self, affine=own_affine):
        self.videos: int | None = None
        self.affine = affine
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
        channels, groups, frames = x.shape[1], self.num_groups, x.shape[0] // videos
        # ATen's GroupNorm per frame (fast on every device, differentiable, its statistics included), then each
        # video's statistics by the law of total variance (a group holds as many values in every frame), and the
        # per-frame output moved onto them: one more pass, in the input's layout, over values of order 1.
        normed, frame_mean, frame_rstd = torch.ops.aten.native_group_norm(x, None, None, x.shape[0], channels,
                                                                          x[0, 0].numel(), groups, self.eps)
        dtype = torch.promote_types(x.dtype, torch.float32)
        frame_mean = frame_mean.to(dtype).view(videos, frames, groups)
        frame_rstd = frame_rstd.to(dtype).view(videos, frames, groups)
        mean = frame_mean.mean(1, keepdim=True)
        rstd = torch.rsqrt((frame_rstd.pow(-2) - self.eps).mean(1, keepdim=True)
                           + frame_mean.var(1, correction=0, keepdim=True) + self.eps)
        scale = (rstd / frame_rstd).repeat_interleave(channels // groups, dim=2)  # [videos, frames, channels]
        shift = ((frame_mean - mean) * rstd).repeat_interleave(channels // groups, dim=2)
        weight, bias = self.video_batch.affine(self, x)
        if weight is not None:
            scale, shift = scale * weight, shift * weight + bias
        per_frame = (x.shape[0], channels, 1, 1)
        return torch.addcmul(shift.to(x.dtype).view(per_frame), normed, scale.to(x.dtype).view(per_frame))


def across_frames(norm: nn.GroupNorm, video_batch: VideoBatch) -> nn.GroupNorm:
    """A view of `norm` that normalises each video's frames together. It is `norm`'s state under another class:
    parameters, buffers and every setting are `norm`'s own, so weights stay where the host's model management puts
    them and the view can stand in `norm`'s place in the module tree (state-dict keys unchanged)."""
    view = object.__new__(video_batch.view_class(type(norm)))
    view.__dict__ = norm.__dict__
    return view
