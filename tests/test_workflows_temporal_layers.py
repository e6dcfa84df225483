"""Tier 2: the shipped temporal-layer workflows through a real ComfyUI server."""
import pytest
import torch

from comfyui_i2v_adapter.evaluation.comfy_client import ExecutionFailed, PromptRejected
from comfyui_i2v_adapter.evaluation.workflow_api import node_of_type
from comfyui_i2v_adapter.tests.support.workflows import run_workflow, workflow_prompt

pytestmark = pytest.mark.comfyui


def test_animatediff_workflow_runs_motion_module_and_adapter(server, motion_files, adapter_files):
    result = run_workflow(server, workflow_prompt(server, "i2v_animatediff.json"))
    assert result.video_frames == 16 and torch.equal(result.sampled[0], result.video_latent[0])


def test_look_back_workflow_runs_without_animatediff(server, look_back_file):
    result = run_workflow(server, workflow_prompt(server, "i2v_look_back.json"))
    assert result.video_frames == 16 and torch.equal(result.sampled[0], result.video_latent[0])


def test_a_missing_motion_module_and_a_file_that_is_none_are_named(server, motion_files, adapter_files):
    prompt = workflow_prompt(server, "i2v_animatediff.json")
    loader = prompt[node_of_type(prompt, "I2V_LoadMotionModule")]["inputs"]
    loader["motion_module_name"] = "mm_sd_v15_v2.ckpt"
    with pytest.raises(PromptRejected, match="'mm_sd_v15_v2.ckpt' was not found in models/animatediff_models"):
        server.run(prompt)
    (motion_files["v2"].parent / "not_a_motion_module.safetensors").symlink_to(adapter_files / "random_i2v_sd15.safetensors")
    loader["motion_module_name"] = "not_a_motion_module.safetensors"
    with pytest.raises(ExecutionFailed, match="not_a_motion_module.safetensors is not a motion module"):
        server.run(prompt)
