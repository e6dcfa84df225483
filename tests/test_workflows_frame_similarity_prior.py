"""Tier 2: the shipped Frame Similarity Prior workflow, and its bad inputs, through a real ComfyUI server."""
import math

import pytest
import torch

from comfyui_i2v_adapter.evaluation.comfy_client import ExecutionFailed, PromptRejected
from comfyui_i2v_adapter.evaluation.workflow_api import node_of_type
from comfyui_i2v_adapter.kernels.frame_similarity_prior import gaussian_blur
from comfyui_i2v_adapter.tests.support.workflows import run_workflow, workflow_prompt

pytestmark = pytest.mark.comfyui
WORKFLOW = "i2v_frame_similarity_prior.json"


def prior_prompt(server, **inputs):
    prompt = workflow_prompt(server, WORKFLOW)
    prompt[node_of_type(prompt, "I2V_FrameSimilarityPrior")]["inputs"].update(inputs)
    return prompt


def test_prior_workflow_starts_later_frames_from_the_degraded_reference_and_keeps_frame0(server, adapter_files):
    prompt = prior_prompt(server, t0=0.5)  # of the 2 CPU steps, 1 runs
    prompt[node_of_type(prompt, "I2V_AnchorLatentColour")]["inputs"]["strength"] = 0.5
    result = run_workflow(server, prompt)
    assert result.video_frames == 16 and result.video_size == (64, 64)
    assert torch.equal(result.sampled[0], result.video_latent[0])
    reference, later = result.video_latent[:1], result.video_latent[1:]
    blurred = gaussian_blur(reference, 9, 18.0)
    sharp = torch.isclose(later, reference.expand_as(later), atol=1e-6)
    assert (sharp | torch.isclose(later, blurred.expand_as(later), atol=1e-6)).all()
    assert abs(sharp.float().mean().item() - 0.5) < 6 * math.sqrt(0.25 / sharp.numel())
    assert all((result.sampled[i] - later[i - 1]).abs().max() > 0 for i in range(1, 16))


def test_p_above_1_is_refused_naming_the_input(server, adapter_files):
    with pytest.raises(PromptRejected, match=r"bigger than max of 1\.0") as rejected:
        server.run(prior_prompt(server, p=1.5))
    assert '"input_name": "p"' in str(rejected.value)


def test_t0_0_is_refused_with_the_range(server, adapter_files):
    with pytest.raises(ExecutionFailed, match=r"t0 0\.0 is outside \(0, 1\]"):
        server.run(prior_prompt(server, t0=0.0))


def test_an_even_blur_kernel_is_refused_with_the_odd_neighbours(server, adapter_files):
    with pytest.raises(ExecutionFailed, match="blur_kernel 8 must be a positive odd number .* use 7 or 9"):
        server.run(prior_prompt(server, blur_kernel=8))
