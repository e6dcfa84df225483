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


def guided_sample(model, guider_of, latent, steps: int = 2):
    """What SamplerCustomAdvanced samples with the GUIDER `guider_of(model)`: euler on the normal schedule, seeded
    noise."""
    import comfy.samplers

    guider = guider_of(model)
    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "normal", steps)
    noise = torch.randn(latent["samples"].shape, generator=torch.Generator().manual_seed(0))
    return guider.sample(noise, latent["samples"], comfy.samplers.sampler_object("euler"), sigmas,
                         denoise_mask=latent.get("noise_mask"), seed=0)


def cond_outputs(model, guider_of, latent, steps: int = 2) -> dict:
    """The UNet's output of each cond the guider names, on its first call: {name: [frames, ...]}."""
    import comfy.patcher_extension

    outputs, names, frames = {}, {}, latent["samples"].shape[0]

    def record(executor, x, timesteps, context, y, control, transformer_options, **kwargs):
        out = executor(x, timesteps, context, y, control, transformer_options, **kwargs)
        for chunk, uuid in enumerate(transformer_options["uuids"]):
            outputs.setdefault(names[uuid], out[chunk * frames:(chunk + 1) * frames].clone())
        return out

    def name_conds(executor, *args, **kwargs):
        names.update({c["uuid"]: name for name, conds in executor.class_obj.conds.items() for c in conds})
        return executor(*args, **kwargs)
    probed = model.clone()
    probed.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "record", record)
    probed.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, "names", name_conds)
    guided_sample(probed, guider_of, latent, steps)
    return outputs
