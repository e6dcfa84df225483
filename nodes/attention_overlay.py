"""Our cross-attention additions laid over whatever attention each layer has when the UNet is called.

ComfyUI calls one replace patch per attention layer: the one under the layer's 3-part key (block, number,
transformer index), else the one under its 2-part key (block, number). A pack that registers a replace hides the
other key's patch, and a later pack at the same key replaces the earlier one (or, in ComfyUI_IPAdapter_plus, calls
its own methods on it). So our additions are never registered as replace patches on the MODEL. A DIFFUSION_MODEL
wrapper instead looks, on every UNet call, at the replace patches that are live for that call (the MODEL's, and
those a guider adds for one pass, as PerturbedAttentionGuidance does), and gives the UNet, for that call only, a
replace per layer that runs the live one (or the host's attention) and adds ours. Whoever registered first or
last, each patch keeps its effect; nothing is written into the MODEL's options.
"""
from typing import Callable

import torch

from .patch_support import SharedPatch, host_attention

LayerKey = tuple[str, int, int]
# (q, the attention's output so far, extra_options) -> that output with our term added in place
Addition = Callable[[torch.Tensor, torch.Tensor, dict], torch.Tensor]


class OverAttention:
    """One layer's replace for one call: the live replace (or the host's attention), then our addition."""

    def __init__(self, live, addition: Addition):
        self.live, self.addition = live, addition

    def __call__(self, q, k, v, extra_options):
        if self.live is None:
            out = host_attention(extra_options, extra_options["attn_precision"])(q, k, v, extra_options["n_heads"])
        else:  # its output may be a tensor it keeps (PAG returns v): ours to add to is a copy
            out = self.live(q, k, v, extra_options).clone()
        return self.addition(q, out, extra_options)


class AttentionOverlay(SharedPatch):
    """DIFFUSION_MODEL wrapper laying `additions` ({layer key: Addition}) over the live `attention` replaces."""

    KEPT = 4  # per layer: the live patches of the passes a sampling alternates between (a guider's extra pass)

    def __init__(self, attention: str, additions: dict[LayerKey, Addition]):
        self.attention, self.additions = attention, additions
        # The same objects for the same live patches on every call, so torch.compile's guards hold; the oldest go,
        # so a patch another node replaced is not kept alive.
        self._over: dict[LayerKey, dict[int, OverAttention]] = {key: {} for key in additions}

    def _layer(self, key: LayerKey, live) -> OverAttention:
        kept = self._over[key]
        over = kept.get(id(live))
        if over is None or over.live is not live:
            over = kept[id(live)] = OverAttention(live, self.additions[key])
            while len(kept) > self.KEPT:
                del kept[next(iter(kept))]
        return over

    def diffusion_model(self, executor, x, timesteps, context, y, control, transformer_options, **kwargs):
        replaces = transformer_options.get("patches_replace", {})
        live = replaces.get(self.attention, {})
        over = {key: self._layer(key, live[key] if key in live else live.get(key[:2])) for key in self.additions}
        options = {**transformer_options, "patches_replace": {**replaces, self.attention: {**live, **over}}}
        return executor(x, timesteps, context, y, control, options, **kwargs)
