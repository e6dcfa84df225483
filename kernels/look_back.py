"""Look-back temporal layers (implicit semi-auto-regressive I2V, Algorithm 1).

At the output of each UNet block, frame i is updated from a window of the d-1 frames before it, as already
updated in this pass, and its own input: information flows from frame 0 to the last frame within one layer.
A channel-mixing Conv1d and a depth-wise 3D convolution adapter follow. Ours differs from the paper where it
must to be a safe plug-in: everything is residual and zero-initialised (a fresh layer is the identity), frame
0 (the clean reference image) is never changed, and the 3D adapter is causal in time so that a frame never
depends on later ones. The look-back Conv2d is per channel by default (`dense=False`: each channel sees its own
d-frame window; the Conv1d mixes channels); `dense=True` is the full d·n → n convolution, 125·n² parameters per
layer at the paper's 5×5×5.
"""
import torch
from einops import rearrange
from torch import nn

from .module_tree import attach
from .unet_layout import UNetFamily, block_output_sites


class LookBackLayer(nn.Module):
    def __init__(self, channels: int, depth: int = 5, kernel: int = 5, adapter_kernel: int = 3, dense: bool = False,
                 operations=nn, dtype=None, device=None):
        super().__init__()
        if depth < 2 or min(kernel, adapter_kernel) < 1 or kernel % 2 == 0 or adapter_kernel % 2 == 0:
            raise ValueError(f"look-back depth must be ≥ 2 and kernels odd and positive (got depth {depth}, kernel "
                             f"{kernel}, adapter kernel {adapter_kernel})")
        self.depth = depth
        groups = 1 if dense else channels
        # The look-back Conv2d over the d-frame window, split by what it reads: the frame's own input (batched over
        # all frames), and the d-1 frames before it as already updated (a conv3d whose depth spans those frames).
        self.look_back_own = operations.Conv2d(channels, channels, kernel, padding=kernel // 2, groups=groups,
                                               dtype=dtype, device=device)
        self.look_back_past = operations.Conv3d(channels, channels, (depth - 1, kernel, kernel), groups=groups,
                                                padding=(0, kernel // 2, kernel // 2), bias=False, dtype=dtype,
                                                device=device)
        self.channel_mix = operations.Conv1d(channels, channels, 1, dtype=dtype, device=device)
        # Padded k-1 frames at both ends in time: output frame t then reads frames t-k+1..t (causal); the last k-1
        # outputs are dropped, which costs less than padding a copy of the video in front.
        self.adapter = operations.Conv3d(channels, channels, adapter_kernel, groups=channels,
                                         padding=(adapter_kernel - 1, adapter_kernel // 2, adapter_kernel // 2),
                                         dtype=dtype, device=device)
        self.reset_to_identity()

    @torch.no_grad()
    def reset_to_identity(self) -> None:
        """Zero look-back and adapter, identity channel mix: the layer returns its input exactly."""
        for param in (*self.look_back_own.parameters(), self.look_back_past.weight, *self.adapter.parameters()):
            param.zero_()
        self.channel_mix.weight.copy_(torch.eye(self.channel_mix.weight.shape[0]).unsqueeze(-1))
        self.channel_mix.bias.zero_()

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        """x: [videos*frames, C, H, W], videos one after another; returns the same shape."""
        past = self.depth - 1
        # One buffer of the updated frames after d-1 zero frames (the window before frame 0): each frame starts as
        # its input plus its own look-back, all frames at once, and the recurrence adds each one's past in place.
        # A window is copied before its convolution (the convolution would copy the strided slice anyway), so
        # nothing autograd keeps for backward is written after.
        start = self.look_back_own(x).add_(x)
        start[::frames] = x[::frames]  # the reference frame is never changed
        u = x.new_zeros(x.shape[0] // frames, x.shape[1], past + frames, *x.shape[2:])
        u[:, :, past:] = rearrange(start, "(v f) c h w -> v c f h w", f=frames)
        for i in range(1, frames):  # the only sequential part
            u[:, :, past + i] += self.look_back_past(u[:, :, i:i + past].contiguous()).squeeze(2)
        u = u[:, :, past:]

        mixed = self.channel_mix(rearrange(u, "v c f h w -> v c (f h w)")).view(u.shape)
        out = u + self.adapter(mixed)[:, :, :frames]
        out[:, :, 0] = u[:, :, 0]  # the reference frame is never changed
        return rearrange(out, "v c f h w -> (v f) c h w")


class LookBackLayers(nn.Module):
    """A LookBackLayer at the output of every down block, the middle block and every up block of a family."""

    def __init__(self, family: UNetFamily, depth: int = 5, kernel: int = 5, adapter_kernel: int = 3,
                 dense: bool = False, operations=nn, dtype=None, device=None):
        super().__init__()
        self.family = family
        self.settings = dict(depth=depth, kernel=kernel, adapter_kernel=adapter_kernel, dense=dense)
        self.sites = [path for path, _ in block_output_sites(family)]
        for path, channels in block_output_sites(family):
            attach(self, path, LookBackLayer(channels, depth, kernel, adapter_kernel, dense, operations, dtype, device))

    def sites_and_modules(self) -> list[tuple[str, LookBackLayer]]:
        return [(path, self.get_submodule(path)) for path in self.sites]
