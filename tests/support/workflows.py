"""Running the shipped workflows/ on the test server: the test's random models in place of the user's files,
CPU-sized settings, and probes that save the latents next to the video."""
from dataclasses import dataclass
from pathlib import Path

import av
import torch
from safetensors.torch import load_file

from .comfy_server import ComfyServer
from .comfyui import PACK_ROOT
from ...evaluation.workflow_api import load_workflow, node_of_type, ui_to_api

WORKFLOWS = PACK_ROOT / "workflows"
# The files the tests write into the server's models/ and input/ folders, by the loader input that picks them.
TEST_FILES = {"ckpt_name": "random_sd15.safetensors", "adapter_name": "random_i2v_sd15.safetensors",
              "image": "reference.png", "model_folder": "tiny-qwen2-vl",
              "motion_module_name": "random_mm_sd15_v2.safetensors", "look_back_name": "random_look_back_sd15.safetensors",
              "ipadapter_name": "random_ip_adapter_plus_sd15.safetensors",
              "clip_name": "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors"}
# The official release's files in their own layouts (conftest's official_files), for the recipe graph.
OFFICIAL_TEST_FILES = {"adapter_name": "random_i2v_module.pth", "motion_module_name": "random_v15_v1_ipplus.pth",
                       "attention_weights": "random_v15_v1_ipplus.pth"}
# Same graphs, sized for a CPU: the frame counts stay as shipped.
CPU_SIZES = {"width": 64, "height": 64, "steps": 2}


def workflow_prompt(server: ComfyServer, name: str, files: dict | None = None) -> dict:
    """The shipped graph in API form, its loaders on TEST_FILES (`files` replaces some of them)."""
    test_files = TEST_FILES | (files or {})
    prompt = ui_to_api(load_workflow(WORKFLOWS / name), server.object_info())
    for node in prompt.values():
        inputs = node["inputs"]
        for key, value in inputs.items():
            if key in test_files and isinstance(value, str):
                inputs[key] = test_files[key]
            elif key in CPU_SIZES and isinstance(value, int):
                inputs[key] = min(value, CPU_SIZES[key])
    return prompt


@dataclass
class WorkflowResult:
    video_latent: torch.Tensor  # the latent the sampler started from
    sampled: torch.Tensor       # the latent the sampler returned
    video_frames: int
    video_size: tuple[int, int]
    outputs: dict               # every output node's UI output (e.g. Preview Any's text), by node id


def run_workflow(server: ComfyServer, prompt: dict, sampler: str = "KSampler") -> WorkflowResult:
    sampler_id = node_of_type(prompt, sampler)
    probes = {"probe_start": prompt[sampler_id]["inputs"]["latent_image"], "probe_sampled": [sampler_id, 0]}
    for probe, source in probes.items():
        prompt[probe] = {"class_type": "SaveLatent", "inputs": {"samples": source, "filename_prefix": f"probes/{probe}"}}
    outputs = server.run(prompt)["outputs"]
    latents = {p: _output_file(server, outputs[p]["latents"][0]) for p in probes}
    video = _output_file(server, outputs[node_of_type(prompt, "SaveVideo")]["images"][0])
    with av.open(str(video)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return WorkflowResult(load_file(str(latents["probe_start"]))["latent_tensor"],
                          load_file(str(latents["probe_sampled"]))["latent_tensor"],
                          len(frames), (frames[0].shape[1], frames[0].shape[0]), outputs)


def _output_file(server: ComfyServer, item: dict) -> Path:
    return server.base / "output" / item["subfolder"] / item["filename"]
