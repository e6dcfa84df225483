"""Tier 2: the official recipe graph (workflows/i2v_adapter_official.json) on a real ComfyUI server, on random
files in the official release's layouts: i2v_module.pth, the bundle's v1 motion modules and IP attention weights,
h94's IP-Adapter Plus and a CLIP ViT-H."""
import pytest
import torch

from comfyui_i2v_adapter.evaluation.workflow_api import load_workflow, node_of_type, ui_to_api
from comfyui_i2v_adapter.tests.support.workflows import OFFICIAL_TEST_FILES, WORKFLOWS, run_workflow, workflow_prompt

pytestmark = pytest.mark.comfyui
WORKFLOW = "i2v_adapter_official.json"


def inputs(prompt: dict, class_type: str) -> dict:
    return prompt[node_of_type(prompt, class_type)]["inputs"]


def test_the_graph_sets_what_the_official_release_runs(server):
    prompt = ui_to_api(load_workflow(WORKFLOWS / WORKFLOW), server.object_info())
    prior = node_of_type(prompt, "I2V_FrameSimilarityPrior")
    assert inputs(prompt, "I2V_LoadMotionModule")["motion_module_name"] == "animatediff_v15_v1_ipplus.pth"
    assert inputs(prompt, "I2V_LoadAdapter")["adapter_name"] == "i2v_module.pth"
    assert inputs(prompt, "I2V_LoadContentAdapter") == {"ipadapter_name": "ip-adapter-plus_sd15.safetensors",
                                                         "attention_weights": "animatediff_v15_v1_ipplus.pth"}
    assert inputs(prompt, "CLIPVisionLoader")["clip_name"] == "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors"
    motion = inputs(prompt, "I2V_ApplyMotionModule")
    assert (motion["scale"], motion["beta_schedule"], motion["groupnorm"]) == (1.0, "autoselect", "autoselect")
    assert {k: v for k, v in prompt[prior]["inputs"].items() if not isinstance(v, list)} == {
        "frames": 16, "width": 512, "height": 512, "steps": 25, "t0": 1.0, "p": 0.5, "blur_kernel": 9,
        "blur_sigma": 18.0, "degrade_in": "latent", "mask_seed": 0}
    sampler = inputs(prompt, "KSampler")
    assert (sampler["sampler_name"], sampler["scheduler"], sampler["cfg"]) == ("ddim", "ddim_uniform", 7.5)
    assert sampler["steps"] == [prior, 1] and sampler["denoise"] == [prior, 2] and sampler["latent_image"] == [prior, 0]
    assert inputs(prompt, "I2V_ApplyAdapter")["strength"] == 1.0
    assert inputs(prompt, "I2V_ApplyContentAdapter")["weight"] == 1.0
    assert inputs(prompt, "CreateVideo")["fps"] == 8.0
    negative = prompt[sampler["negative"][0]]["inputs"]["text"]
    assert negative == "worst quality, low quality, normal quality, lowres, bad anatomy, bad hands, watermark, moles"
    assert prompt[node_of_type(prompt, "SaveVideo")]["inputs"]["video"][0] == node_of_type(prompt, "CreateVideo")
    assert prompt[node_of_type(prompt, "CreateVideo")]["inputs"]["images"][0] == node_of_type(prompt, "I2V_ColourMatch")


def test_the_recipe_makes_a_video_whose_frame0_is_the_reference(server, official_files):
    result = run_workflow(server, workflow_prompt(server, WORKFLOW, OFFICIAL_TEST_FILES))
    assert result.video_frames == 16 and result.video_size == (64, 64)  # the shipped 16 frames, at the CPU's size
    assert torch.equal(result.sampled[0], result.video_latent[0])
    assert all((result.sampled[i] - result.video_latent[i]).abs().max() > 0 for i in range(1, 16))
