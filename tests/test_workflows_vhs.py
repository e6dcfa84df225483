"""Tier 2: VideoHelperSuite's nodes around ours on the test server: a real video in (VHS Load Video), a video out
(VHS Video Combine). Skips when the ComfyUI checkout's custom_nodes has no VideoHelperSuite."""
import av
import pytest
import torch
from safetensors.torch import load_file

from comfyui_i2v_adapter.tests.support.custom_node_packs import VHS, requires
from comfyui_i2v_adapter.tests.support.videos import CLIPS, write_piece

pytestmark = [pytest.mark.comfyui, requires(VHS)]

FRAMES, WIDTH, HEIGHT = 4, 80, 64


@pytest.fixture
def vhs_server(server):
    """The test server, which installs VideoHelperSuite when the checkout has it (conftest)."""
    if "VHS_LoadVideo" not in server.object_info():
        pytest.fail(f"{VHS} is in the checkout but the server did not load it:\n{server.log_tail()}")
    return server


def vhs_prompt(video: str) -> dict:
    text = lambda words: {"class_type": "CLIPTextEncode", "inputs": {"text": words, "clip": ["checkpoint", 1]}}
    return {
        "checkpoint": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "random_sd15.safetensors"}},
        "adapter": {"class_type": "I2V_LoadAdapter", "inputs": {"adapter_name": "random_i2v_sd15.safetensors"}},
        "video": {"class_type": "VHS_LoadVideo", "inputs": {
            "video": video, "force_rate": 0, "custom_width": 0, "custom_height": 0, "frame_load_cap": 3,
            "skip_first_frames": 0, "select_every_nth": 1}},
        "latent": {"class_type": "I2V_VideoLatent", "inputs": {
            "vae": ["checkpoint", 2], "image": ["video", 0], "frames": FRAMES, "width": WIDTH, "height": HEIGHT}},
        "apply": {"class_type": "I2V_ApplyAdapter", "inputs": {
            "model": ["checkpoint", 0], "i2v_adapter": ["adapter", 0], "reference": ["latent", 0], "strength": 1.0}},
        "positive": text("bikes on a street"),
        "negative": text("blurry"),
        "sampler": {"class_type": "KSampler", "inputs": {
            "model": ["apply", 0], "seed": 0, "steps": 1, "cfg": 3.0, "sampler_name": "euler", "scheduler": "normal",
            "positive": ["positive", 0], "negative": ["negative", 0], "latent_image": ["latent", 0], "denoise": 1.0}},
        "decode": {"class_type": "VAEDecode", "inputs": {"samples": ["sampler", 0], "vae": ["checkpoint", 2]}},
        "combine": {"class_type": "VHS_VideoCombine", "inputs": {
            "images": ["decode", 0], "frame_rate": 8, "loop_count": 0, "filename_prefix": "vhs/i2v",
            "format": "video/h264-mp4", "pingpong": False, "save_output": True}},
        "probe_start": {"class_type": "SaveLatent", "inputs": {"samples": ["latent", 0], "filename_prefix": "vhs/start"}},
        "probe_sampled": {"class_type": "SaveLatent", "inputs": {"samples": ["sampler", 0],
                                                                 "filename_prefix": "vhs/sampled"}},
    }


def test_vhs_video_in_and_out_around_the_adapter(vhs_server, adapter_files):
    write_piece(CLIPS / "bikes.mp4", vhs_server.base / "input/bikes_vhs.mp4", 0, 6)
    outputs = vhs_server.run(vhs_prompt("bikes_vhs.mp4"))["outputs"]

    output = lambda item: vhs_server.base / "output" / item["subfolder"] / item["filename"]
    with av.open(str(output(outputs["combine"]["gifs"][0]))) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == FRAMES and {f.shape for f in frames} == {(HEIGHT, WIDTH, 3)}
    start, sampled = (load_file(str(output(outputs[p]["latents"][0])))["latent_tensor"]
                      for p in ("probe_start", "probe_sampled"))
    assert sampled.shape == (FRAMES, 4, HEIGHT // 8, WIDTH // 8) and torch.equal(sampled[0], start[0])
