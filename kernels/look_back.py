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
import torch.nn.functional as F
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
        self.adapter = operations.Conv3d(channels, channels, adapter_kernel, groups=channels, dtype=dtype, device=device)
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
        h = rearrange(x, "(v f) c h w -> v f c h w", f=frames)
        own = rearrange(self.look_back_own(x), "(v f) c h w -> v f c h w", f=frames)
        past = self.depth - 1
        updated = [torch.zeros_like(h[:, 0])] * past + [h[:, 0]]  # zeros before the first frame
        for i in range(1, frames):  # the only sequential part
            window = torch.stack(updated[-past:], dim=2)  # [v, c, d-1, h, w], oldest first
            updated.append(h[:, i] + own[:, i] + self.look_back_past(window).squeeze(2))
        u = torch.stack(updated[past:], dim=2)  # [v, c, f, h, w]

        mixed = self.channel_mix(rearrange(u, "v c f h w -> v c (f h w)")).reshape(u.shape)
        k = self.adapter.kernel_size[0]
        out = u + self.adapter(F.pad(mixed, (k // 2, k // 2, k // 2, k // 2, k - 1, 0)))  # causal: past frames only
        out[:, :, 0] = h[:, 0]  # the reference frame is never changed
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
