"""Tier 2: the shipped I2V-Adapter workflow, and the loader's bad inputs, through a real ComfyUI server."""
import pytest
import torch

from comfyui_i2v_adapter.evaluation.comfy_client import ExecutionFailed, PromptRejected
from comfyui_i2v_adapter.evaluation.workflow_api import node_of_type
from comfyui_i2v_adapter.tests.support.workflows import run_workflow, workflow_prompt

pytestmark = pytest.mark.comfyui


def adapter_prompt(server, **loader):
    prompt = workflow_prompt(server, "i2v_adapter_basic.json")
    prompt[node_of_type(prompt, "I2V_LoadAdapter")]["inputs"].update(loader)
    return prompt


def test_basic_workflow_makes_a_video_whose_frame0_is_the_reference(server, adapter_files, motion_files):
    result = run_workflow(server, workflow_prompt(server, "i2v_adapter_basic.json"))
    assert result.video_frames == 16 and result.video_size == (64, 64)
    assert torch.equal(result.sampled[0], result.video_latent[0])
    assert all((result.sampled[i] - result.video_latent[i]).abs().max() > 0 for i in range(1, 16))


def test_a_missing_adapter_file_names_the_folder_searched(server, adapter_files):
    with pytest.raises(PromptRejected) as rejected:
        server.run(adapter_prompt(server, adapter_name="mine.safetensors"))
    assert "'mine.safetensors' was not found in models/i2v_adapter (searched: " in str(rejected.value)
    assert str(adapter_files) in str(rejected.value)


def test_strength_out_of_range_is_refused_naming_the_input(server, adapter_files):
    prompt = adapter_prompt(server)
    prompt[node_of_type(prompt, "I2V_ApplyAdapter")]["inputs"]["strength"] = 5.0
    with pytest.raises(PromptRejected, match=r"bigger than max of 2\.0") as rejected:
        server.run(prompt)
    assert "strength" in str(rejected.value)


def test_a_file_that_is_no_adapter_is_refused(server, adapter_files, motion_files):
    with pytest.raises(ExecutionFailed, match="neither an I2V-Adapter safetensors file nor the official"):
        server.run(adapter_prompt(server, adapter_name="not_an_adapter.safetensors"))


def test_a_file_error_is_named_briefly_in_comfyuis_error_dialog(server, adapter_files, motion_files):
    """ComfyUI imports the pack by its folder path and names an error by its module: not that path."""
    with pytest.raises(ExecutionFailed) as failed:
        server.run(adapter_prompt(server, adapter_name="not_an_adapter.safetensors"))
    assert failed.value.exception_type == "comfyui-i2v-adapter.FileFormatError"


def test_an_sdxl_adapter_on_an_sd15_checkpoint_is_refused(server, adapter_files, motion_files):
    with pytest.raises(ExecutionFailed, match="This I2V-Adapter is for SDXL but the MODEL is SD1.5"):
        server.run(adapter_prompt(server, adapter_name="random_i2v_sdxl.safetensors"))


def test_nodes_sit_in_one_category_with_a_tooltip_on_every_input(server):
    ours = {k: v for k, v in server.object_info().items() if v["python_module"].endswith("comfyui-i2v-adapter")}
    assert {"I2V_LoadAdapter", "I2V_ApplyAdapter", "I2V_VideoLatent"} <= ours.keys()
    assert {v["category"].split("/")[0] for v in ours.values()} == {"I2V-Adapter"}
    for name, info in ours.items():
        for section in (info["input"].get("required", {}), info["input"].get("optional", {})):  # not "hidden"
            for input_name, spec in section.items():
                assert spec[1].get("tooltip"), f"{name}.{input_name} has no tooltip"
