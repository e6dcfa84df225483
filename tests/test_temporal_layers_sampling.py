"""Tier 2: motion modules and look-back layers inside a real ComfyUI, on a random-weight SD1.5 checkpoint."""
import pytest
import torch

from comfyui_i2v_adapter.kernels.look_back import LookBackLayers
from comfyui_i2v_adapter.kernels.look_back_file import read_look_back, write_look_back
from comfyui_i2v_adapter.kernels.motion_module import MotionModules
from comfyui_i2v_adapter.kernels.motion_module_file import read_motion_module
from comfyui_i2v_adapter.kernels.unet_layout import SD15, SDXL
from comfyui_i2v_adapter.tests.support.graphs import FRAMES, apply_adapter, random_adapter, sample, video_latent

pytestmark = pytest.mark.comfyui


def with_motion(model, path, scale=1.0):
    from comfyui_i2v_adapter.nodes.temporal_layer_nodes import ApplyMotionModule
    return ApplyMotionModule.execute(model, read_motion_module(path), scale, "autoselect", "autoselect").result[0]


def with_look_back(model, path, latent):
    from comfyui_i2v_adapter.nodes.temporal_layer_nodes import ApplyLookBackLayers
    return ApplyLookBackLayers.execute(model, read_look_back(path), latent).result[0]


def img2img(model, clip, latent):
    """One step from the latent at denoise 0.5: every frame's content reaches the model."""
    return sample(model, clip, latent, steps=1, denoise=0.5)


def change_per_frame(model, clip, latent, frame):
    moved = {**latent, "samples": latent["samples"].clone()}
    moved["samples"][frame] += 0.5
    return (img2img(model, clip, moved) - img2img(model, clip, latent)).abs().amax(dim=(1, 2, 3))


@pytest.fixture(scope="module")
def moving_latent(sd15):
    torch.manual_seed(5)
    return {"samples": torch.randn(FRAMES, 4, 8, 8)}


@pytest.mark.parametrize("layout", ["v1", "v2", "v3", "diffusers"])
def test_each_layout_loads_injects_and_moves_frames_together(sd15, motion_files, moving_latent, layout):
    model, clip, _ = sd15
    motion = read_motion_module(motion_files[layout])
    assert motion.version == {"v1": "v1", "v2": "v2", "v3": "v3", "diffusers": "v2"}[layout]
    change = change_per_frame(with_motion(model, motion_files[layout]), clip, moving_latent, frame=2)
    assert (change > 1e-3).all()


def test_without_temporal_layers_frames_are_independent(sd15, moving_latent):
    """The control for the test above: the plain SD1.5 base moves only the frame that changed."""
    model, clip, _ = sd15
    change = change_per_frame(model, clip, moving_latent, frame=2)
    assert change[2] > 1e-3 and torch.equal(change[[0, 1, 3]], torch.zeros(3))


def test_a_plain_clone_of_the_original_model_samples_exactly_as_before(sd15, motion_files, look_back_file, moving_latent):
    model, clip, _ = sd15
    before = img2img(model, clip, moving_latent)
    patched = with_look_back(with_motion(model, motion_files["v2"]), look_back_file, moving_latent)
    assert not torch.equal(img2img(patched, clip, moving_latent), before)
    assert torch.equal(img2img(model.clone(), clip, moving_latent), before)


def test_look_back_is_causal_through_comfyui(sd15, look_back_file, moving_latent):
    model, clip, _ = sd15
    change = change_per_frame(with_look_back(model, look_back_file, moving_latent), clip, moving_latent, frame=2)
    assert torch.equal(change[:2], torch.zeros(2)) and (change[2:] > 1e-3).all()


def test_temporal_layers_and_adapter_stack_in_any_order(sd15, motion_files, look_back_file):
    model, clip, vae = sd15
    latent = video_latent(vae)
    adapter = random_adapter()
    steps = {"motion": lambda m: with_motion(m, motion_files["v2"]),
             "look_back": lambda m: with_look_back(m, look_back_file, latent),
             "adapter": lambda m: apply_adapter(m, adapter, latent)}
    results = []
    for order in (("motion", "look_back", "adapter"), ("adapter", "look_back", "motion"), ("look_back", "adapter", "motion")):
        patched = model
        for name in order:
            patched = steps[name](patched)
        results.append(img2img(patched, clip, latent))
    assert torch.equal(results[0], results[1]) and torch.equal(results[0], results[2])
    assert torch.equal(results[0][0], latent["samples"][0])


def test_more_frames_than_the_encoding_allows_is_refused_before_sampling(sd15, motion_files):
    model, clip, _ = sd15
    with pytest.raises(ValueError, match="at most 24 frames .* the latent has 25"):
        img2img(with_motion(model, motion_files["v1"]), clip, {"samples": torch.zeros(25, 4, 8, 8)})


def test_context_windows_too_long_for_the_reference_in_front_are_refused_before_sampling(sd15, motion_files):
    """v1 covers 24 frames: ComfyUI's windows of 24 get the reference put in front of those that lack frame 0."""
    from comfy_extras.nodes_context_windows import ContextWindowsManualNode
    model, clip, vae = sd15
    latent = video_latent(vae, frames=25)
    windowed = ContextWindowsManualNode.execute(apply_adapter(with_motion(model, motion_files["v1"]), random_adapter(),
                                                              latent), 24, 4, "standard_static", 1, False, "pyramid", 0)
    with pytest.raises(ValueError, match=r"at most 24 frames at once .* context windows of 24 frames with the reference "
                                         r"image put in front .* give it 25\. Use context windows of at most 23 frames"):
        img2img(windowed.result[0], clip, latent)


def test_weights_of_the_other_family_are_refused(sd15, tmp_path):
    from comfyui_i2v_adapter.tests.support.random_models import meta_sdxl_model
    model, _, _ = sd15
    with torch.device("meta"):
        sdxl_modules = MotionModules(SDXL, 32, mid_block=False).state_dict()
    torch.save({k: torch.zeros(1).expand(v.shape) for k, v in sdxl_modules.items()}, tmp_path / "mm_sdxl_v10_beta.ckpt")
    with pytest.raises(ValueError, match="Apply Motion Module: these weights are for SDXL but the MODEL is SD1.5"):
        with_motion(model, tmp_path / "mm_sdxl_v10_beta.ckpt")
    write_look_back(tmp_path / "lb_sd15.safetensors", LookBackLayers(SD15, depth=2, kernel=1, adapter_kernel=1))
    with pytest.raises(ValueError, match="Apply Look-Back Layers: these weights are for SD1.5 but the MODEL is SDXL"):
        with_look_back(meta_sdxl_model(), tmp_path / "lb_sd15.safetensors", {"samples": torch.zeros(1, 4, 8, 8)})


def test_context_windows_without_frame_0_get_the_reference_in_front(sd15, look_back_file):
    """Long videos: every window the UNet sees starts with the clean reference, so the look-back layers (and the
    I2V-Adapter) always see the image; the rows added for that are dropped again."""
    import comfy.patcher_extension
    from comfy_extras.nodes_context_windows import ContextWindowsManualNode
    model, clip, vae = sd15
    latent = video_latent(vae, frames=6)
    windowed = ContextWindowsManualNode.execute(with_look_back(model, look_back_file, latent), 4, 1, "standard_static",
                                                1, False, "pyramid", 0).result[0]
    reference = model.model.process_latent_in(latent["samples"][:1])[0]
    seen = []

    def probe(executor, x, timesteps, context, y, control, transformer_options, **kwargs):
        window = transformer_options["context_window"].index_list
        frames = x.shape[0] // len(transformer_options["cond_or_uncond"])
        seen.append((window[0], frames, all(torch.equal(x[c], reference) for c in range(0, x.shape[0], frames))))
        return executor(x, timesteps, context, y, control, transformer_options, **kwargs)
    windowed.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "probe", probe)
    # 5 steps for 6 frames: ComfyUI 0.3.64's context windows compare the step's sigmas with the batch elementwise.
    out = sample(windowed, clip, latent, steps=5, cfg=1.0)
    assert {(start, frames) for start, frames, _ in seen} == {(0, 4), (2, 5)}
    assert all(clean for *_, clean in seen) and torch.equal(out[0], latent["samples"][0])
