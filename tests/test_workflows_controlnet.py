"""Tier 2: the shipped ControlNet graph (workflows/i2v_controlnet.json: the official recipe with a Canny ControlNet
per frame, frame 0's edges from the picture, the others' from a control video loaded with core nodes) on a real
ComfyUI server, on random files in the official layouts and a random SD1.5 ControlNet."""
import pytest
import torch

from comfyui_i2v_adapter.evaluation.workflow_api import node_of_type
from comfyui_i2v_adapter.tests.support.workflows import OFFICIAL_TEST_FILES, run_workflow, workflow_prompt

pytestmark = pytest.mark.comfyui
WORKFLOW = "i2v_controlnet.json"
CONTROLNET = "random_controlnet_sd15.safetensors"


@pytest.fixture(scope="module")
def prompt(server, official_files):
    from comfyui_i2v_adapter.tests.support.random_models import write_random_controlnet_sd15

    folder = server.base / "models/controlnet"
    folder.mkdir(exist_ok=True)
    write_random_controlnet_sd15(folder / CONTROLNET)
    return workflow_prompt(server, WORKFLOW, OFFICIAL_TEST_FILES | {"control_net_name": CONTROLNET})


def test_frame_0s_hint_is_the_pictures_own_and_the_others_the_videos(server, prompt):
    edges = prompt[node_of_type(prompt, "ControlNetApplyAdvanced")]["inputs"]["image"][0]
    frames = prompt[prompt[edges]["inputs"]["image"][0]]["inputs"]
    assert prompt[frames["image1"][0]]["class_type"] == "ImageScale"
    assert prompt[prompt[frames["image1"][0]]["inputs"]["image"][0]]["class_type"] == "LoadImage"
    later = prompt[frames["image2"][0]]
    assert later["class_type"] == "ImageFromBatch" and (later["inputs"]["batch_index"], later["inputs"]["length"]) == (
        1, 15)


def test_the_controlnet_graph_makes_a_video_the_control_moves(server, prompt):
    controlled = run_workflow(server, prompt)
    assert controlled.video_frames == 16 and controlled.video_size == (64, 64)
    assert torch.equal(controlled.sampled[0], controlled.video_latent[0])
    prompt[node_of_type(prompt, "ControlNetApplyAdvanced")]["inputs"]["strength"] = 0.0
    free = run_workflow(server, prompt)
    assert all((controlled.sampled[i] - free.sampled[i]).abs().max() > 1e-3 for i in range(1, 16))
