"""Tier 2: the trainer on the single-file SD1.5 checkpoint ComfyUI loads, and its files inside ComfyUI. The trainer
runs the UNet exactly as ComfyUI's patched model does at inference, and what it writes loads in the nodes."""
import pytest
import torch

from comfyui_i2v_adapter.evaluation.workflow_api import node_of_type
from comfyui_i2v_adapter.kernels.adapter_file import read_adapter
from comfyui_i2v_adapter.kernels.unet_layout import SD15
from comfyui_i2v_adapter.tests.support.graphs import FRAMES, apply_adapter, random_adapter, sample, video_latent
from comfyui_i2v_adapter.tests.support.videos import write_video_folder
from comfyui_i2v_adapter.tests.support.workflows import run_workflow, workflow_prompt

pytestmark = pytest.mark.comfyui


@pytest.fixture(scope="module")
def trained(comfyui, comfy_base, motion_files, module_tmp):
    """Both modules trained for two steps on real videos by the command line, on the checkpoint, a v2 motion
    module and a Content-Adapter (with a small CLIP image encoder, its config.json beside it), written into
    ComfyUI's models/."""
    import json

    from safetensors.torch import save_file

    from comfyui_i2v_adapter.tests.support.random_models import (random_ip_adapter_plus, small_clip_vision,
                                                                 small_clip_vision_config, write_ip_adapter_bin)
    from comfyui_i2v_adapter.training.train_adapter import main

    work = module_tmp
    write_video_folder(work / "videos")
    write_ip_adapter_bin(work / "ip-adapter-plus_sd15.bin", random_ip_adapter_plus(SD15, image_features=64))
    (work / "encoder").mkdir()
    save_file({k: v.contiguous() for k, v in small_clip_vision(64).get_sd().items()}, str(work / "encoder/model.safetensors"))
    (work / "encoder/config.json").write_text(json.dumps(small_clip_vision_config(64)))
    (comfy_base / "models/look_back").mkdir(exist_ok=True)
    outputs = {"i2v_adapter": comfy_base / "models/i2v_adapter/trained_on_videos.safetensors",
               "look_back": comfy_base / "models/look_back/trained_on_videos.safetensors"}
    code = main(["--base", str(comfy_base / "models/checkpoints/random_sd15.safetensors"),
                 "--data", str(work / "videos"),
                 "--motion-module", str(motion_files["v2"]),
                 "--content-adapter", str(work / "ip-adapter-plus_sd15.bin"),
                 "--image-encoder", str(work / "encoder/model.safetensors"),
                 "--train", "i2v_adapter", "look_back", "--out", str(outputs["i2v_adapter"]),
                 "--look-back-out", str(outputs["look_back"]), "--run-dir", str(work / "run"),
                 "--tokenizer", str(comfyui / "comfy/sd1_tokenizer"), "--frames", "4", "--stride", "2",
                 "--resolution", "64", "--steps", "2", "--learning-rate", "1e-3", "--workers", "0",
                 "--look-back-depth", "3", "--look-back-kernel", "3", "--save-dtype", "fp32", "--no-progress"])
    assert code == 0
    return outputs


@pytest.mark.parametrize("layout, content", [("v2", False), ("v1", True)])
def test_the_trainer_predicts_what_comfyuis_patched_model_predicts(sd15, comfy_base, comfyui, motion_files,
                                                                   look_back_file, layout, content, tmp_path):
    """Same checkpoint, motion module, look-back layers, adapter, latent (frame 0 clean), timestep and text: the
    trainer's diffusers UNet with its modules gives ComfyUI's noise prediction, so what trains is what runs at
    inference, with every module at the same place. v1 brings GroupNorm across frames (autoselect in both), and the
    Content-Adapter its attn2 processors, fed the tokens Apply Content-Adapter computed."""
    import comfy.patcher_extension

    from comfyui_i2v_adapter.kernels.content_adapter_file import read_content_adapter
    from comfyui_i2v_adapter.kernels.look_back_file import read_look_back
    from comfyui_i2v_adapter.kernels.motion_module_file import read_motion_module
    from comfyui_i2v_adapter.nodes.content_adapter_nodes import ApplyContentAdapter
    from comfyui_i2v_adapter.nodes.content_adapter_patch import image_features
    from comfyui_i2v_adapter.nodes.temporal_layer_nodes import ApplyLookBackLayers, ApplyMotionModule
    from comfyui_i2v_adapter.tests.support.images import astronaut
    from comfyui_i2v_adapter.tests.support.random_models import (random_ip_adapter_plus, small_clip_vision,
                                                                 write_ip_adapter_bin)
    from comfyui_i2v_adapter.training.base_checkpoint import load_base
    from comfyui_i2v_adapter.training.video_unet import VideoUNet

    model, clip, vae = sd15
    adapter, latent = random_adapter(seed=4), video_latent(vae)
    motion, look_back = read_motion_module(motion_files[layout]), read_look_back(look_back_file)
    patched = ApplyMotionModule.execute(model, motion, 1.0, "autoselect", "autoselect").result[0]
    patched = ApplyLookBackLayers.execute(patched, look_back, latent).result[0]
    patched = apply_adapter(patched, adapter, latent)
    content_adapter = tokens = None
    if content:
        write_ip_adapter_bin(tmp_path / "plus.bin", random_ip_adapter_plus(SD15, image_features=64))
        content_adapter, clip_vision = read_content_adapter(tmp_path / "plus.bin"), small_clip_vision(64)
        patched = ApplyContentAdapter.execute(patched, content_adapter, clip_vision, astronaut(), 1.0).result[0]
        with torch.no_grad():
            content_adapter = content_adapter.build()
            tokens = content_adapter.image_tokens(image_features(clip_vision, astronaut()))  # [cond, uncond]
    calls = []

    def record(executor, x, timesteps, context, y, control, transformer_options, **kwargs):
        out = executor(x, timesteps, context, y, control, transformer_options, **kwargs)
        calls.append((x.clone(), timesteps.clone(), context.clone(), out.clone(), transformer_options["cond_or_uncond"]))
        return out
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "record", record)
    sample(patched, clip, latent, steps=1)
    x, timesteps, context, comfy_out, sides = calls[0]
    del patched, calls

    base = load_base(comfy_base / "models/checkpoints/random_sd15.safetensors", comfyui / "comfy/sd1_tokenizer")
    trainer_model = VideoUNet(base.unet, SD15, adapter.build(), look_back.build(), motion.build(),
                              content_adapter=content_adapter, group_norm_across_frames=motion.version == "v1")
    videos = lambda t: t.unflatten(0, (-1, FRAMES))
    with torch.no_grad():
        trainer_out = trainer_model(videos(x), videos(timesteps)[:, 0], videos(context)[:, 0],
                                    image_tokens=None if tokens is None else tokens[sides])
    trainer_model.remove()
    error = (trainer_out.flatten(0, 1) - comfy_out).abs().max() / comfy_out.abs().max()
    assert error < 1e-4


def test_trained_files_carry_the_training_settings(trained):
    adapter = read_adapter(trained["i2v_adapter"])
    assert adapter.family is SD15 and len(adapter.state_dict) == 3 * 16
    assert {k: adapter.metadata[k] for k in ("base_checkpoint", "resolution", "frames", "steps", "noise_schedule",
                                             "group_norm", "content_adapter")} == {
        "base_checkpoint": "random_sd15.safetensors", "resolution": "64x64", "frames": "4", "steps": "2",
        "noise_schedule": "sqrt_linear (AnimateDiff)", "group_norm": "per frame",
        "content_adapter": "ip-adapter-plus_sd15.bin with model.safetensors"}
    assert adapter.noise_schedule.label == "sqrt_linear (AnimateDiff)"


def test_the_trained_adapter_changes_the_video_and_frame0_stays_the_reference(sd15, trained):
    model, clip, vae = sd15
    latent = video_latent(vae)
    plain = sample(apply_adapter(model, random_adapter(trained=False), latent), clip, latent)
    patched = sample(apply_adapter(model, read_adapter(trained["i2v_adapter"]), latent), clip, latent)
    assert torch.equal(patched[0], latent["samples"][0])
    assert all((patched[i] - plain[i]).abs().max() > 1e-4 for i in range(1, FRAMES))


def test_the_trained_files_load_in_the_shipped_workflows(server, trained, adapter_files, look_back_file):
    for workflow, loader, name, what in (("i2v_adapter_basic.json", "I2V_LoadAdapter", "adapter_name", "i2v_adapter"),
                                         ("i2v_look_back.json", "I2V_LoadLookBack", "look_back_name", "look_back")):
        prompt = workflow_prompt(server, workflow)
        prompt[node_of_type(prompt, loader)]["inputs"][name] = trained[what].name
        result = run_workflow(server, prompt)
        assert torch.equal(result.sampled[0], result.video_latent[0]), workflow
        assert torch.isfinite(result.sampled).all(), workflow


def test_the_demonstrations_tiny_files_are_refused_by_the_loaders(server, adapter_files, tmp_path):
    from comfyui_i2v_adapter.evaluation.comfy_client import ExecutionFailed
    from comfyui_i2v_adapter.training.demo import demo_config
    from comfyui_i2v_adapter.training.tiny_base import tiny_base
    from comfyui_i2v_adapter.training.tiny_world import SyntheticClips
    from comfyui_i2v_adapter.training.trainer import train

    config = demo_config(tmp_path, ("i2v_adapter",), steps=1, resume=None, progress=False)
    config.outputs["i2v_adapter"] = adapter_files / "tiny_demo.safetensors"
    train(config, tiny_base(), SyntheticClips(4, 8, 32), log=lambda *_: None)
    prompt = workflow_prompt(server, "i2v_adapter_basic.json")
    prompt[node_of_type(prompt, "I2V_LoadAdapter")]["inputs"]["adapter_name"] = "tiny_demo.safetensors"
    with pytest.raises(ExecutionFailed, match="was written by the trainer's built-in demonstration for its Tiny-demo "
                                              "model, which exists only inside the trainer"):
        server.run(prompt)
