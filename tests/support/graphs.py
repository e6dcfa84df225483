"""Our nodes run in-process on the test's random models: the small graph pieces the tier-2 tests share."""
import torch

from ...kernels.adapter_file import adapter_from_tensors
from ...kernels.first_frame_attention import I2VAdapter
from ...kernels.unet_layout import SD15
from .images import astronaut

FRAMES, SIZE = 4, 64


def random_adapter(family=SD15, trained=True, seed=0):
    """Identity-initialised like a fresh adapter, or with a random (as-if trained) W'_O."""
    torch.manual_seed(seed)
    with torch.device("cpu" if family is SD15 else "meta"):
        adapter = I2VAdapter(family)
    for _, branch in adapter.branches():
        torch.nn.init.normal_(branch.to_q_ff.weight, std=branch.to_q_ff.in_features ** -0.5)
        torch.nn.init.normal_(branch.to_out_ff.weight, std=0.05 if trained else 0.0)
        torch.nn.init.zeros_(branch.to_out_ff.bias)
    return adapter_from_tensors(adapter.state_dict(), {}, "random")


def video_latent(vae, frames=FRAMES, size=SIZE):
    from ...nodes.video_latent import I2VVideoLatent
    return I2VVideoLatent.execute(vae, astronaut(), frames, size, size).result[0]


def apply_adapter(model, adapter, latent, strength=1.0):
    from ...nodes.i2v_adapter_nodes import ApplyI2VAdapter
    return ApplyI2VAdapter.execute(model, adapter, latent, strength).result[0]


def encode(clip, text):
    import nodes
    return nodes.CLIPTextEncode().encode(clip, text)[0]


def sample(model, clip, latent, seed=0, cfg=3.0, steps=2, denoise=1.0):
    """KSampler, euler / normal, as the stock node runs it."""
    import nodes
    return nodes.common_ksampler(model, seed, steps, cfg, "euler", "normal", encode(clip, "an astronaut waving"),
                                 encode(clip, "blurry"), latent, denoise=denoise)[0]["samples"]
