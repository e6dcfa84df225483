"""Tier 2: the composition matrix. Each Apply node of ours beside each node of ComfyUI core (and of
AnimateDiff-Evolved and ComfyUI_IPAdapter_plus, where installed) that patches a MODEL, its conditioning or drives the
sampling, in both orders where the order can differ, as graphs on a server of its own. Every cell:

- runs;
- keeps frame 0 exactly the reference where ours pin it (I2V-Adapter, Look-Back);
- keeps the other node's effect: its effect with ours, mean |S(ours + it) − S(ours)| over frames 1.., divided by
  its effect without ours, mean |S(it) − S(plain)|, lies in [1/RATIO, RATIO] (a node silently switched off gives
  ≈ 0; random weights of ours move the operating point, so the ratio is not 1: RescaleCFG rescales the cond−uncond
  gap, which the Content-Adapter's image tokens widen); a schedule node beside the motion module's own schedule
  decides the schedule in either order, so both orders sample the same; a node whose effect exists only
  across frames (context windows) must change what ours sample where a frame depends on later ones (motion
  modules), and leave it as it was where none does;
- leaves nothing behind: after each row, the shipped basic graph samples exactly what it sampled first on the
  fresh server.

The ratios are written to the server's folder as composition_matrix.md (`-s` prints them).
"""
import shutil
from pathlib import Path

import pytest
import torch

from comfyui_i2v_adapter.tests.support.composition import (FILES, FRAMES, INTERACTING, OTHERS, PINS_FRAME_0, STEPS,
                                                           cell_graph)
from comfyui_i2v_adapter.tests.support.custom_node_packs import pack_folder

pytestmark = pytest.mark.comfyui
RATIO = 4.0           # the other node's effect with ours is within a factor 4 of its effect without
UNCHANGED = 1e-5      # relative: ours that make no frames interact sample the same under context windows
SCHEDULE_NODES = {"ModelSamplingDiscrete lcm", "ModelSamplingDiscrete v_prediction"}
BASIC = "i2v_adapter_basic.json"
REPORT = []


def effect(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a[1:] - b[1:]).abs().mean().item()


@pytest.fixture(scope="module")
def matrix_server(comfyui, comfy_base, adapter_files, motion_files, look_back_file, official_files, module_tmp):
    """A fresh server of its own, with the packs users combine ours with (where installed) and every file the
    cells load; its models are links to the session's files and the matrix's own (a LoRA, a ControlNet, a tiny
    vision-language model and a DQFormer for it)."""
    from PIL import Image
    from skimage import data

    from comfyui_i2v_adapter.kernels.dqformer import DQFormer, DQFormerShape
    from comfyui_i2v_adapter.kernels.dqformer_file import write_dqformer
    from comfyui_i2v_adapter.kernels.unet_layout import SD15
    from comfyui_i2v_adapter.tests.support.comfy_server import ComfyServer
    from comfyui_i2v_adapter.tests.support.custom_node_packs import VHS
    from comfyui_i2v_adapter.tests.support.random_models import (write_random_controlnet_sd15,
                                                                 write_random_lora_sd15)
    from comfyui_i2v_adapter.tests.support.tiny_vlms import write_tiny_vlm
    from comfyui_i2v_adapter.tests.support.workflows import TEST_FILES

    base = module_tmp
    models = base / "models"
    for folder in ("input", "output", "custom_nodes", "models/loras", "models/controlnet", "models/dqformer",
                   "models/LLM"):
        (base / folder).mkdir(parents=True)
    for source in [comfy_base / "models/checkpoints" / FILES["ckpt_name"], adapter_files / FILES["adapter_name"],
                   motion_files["v1"], motion_files["v2"], look_back_file, *official_files.values()]:
        link = models / source.parent.name / source.name
        link.parent.mkdir(exist_ok=True)
        if not link.exists():
            link.symlink_to(source)
    write_random_lora_sd15(models / "loras" / FILES["lora_name"])
    write_random_controlnet_sd15(models / "controlnet" / FILES["control_net_name"])
    vlm = write_tiny_vlm(models / "LLM" / FILES["model_folder"])
    torch.manual_seed(0)
    dqformer = DQFormer(DQFormerShape(_hidden_size(vlm), SD15.context_dim, width=64, layers=2, heads=4, queries=8))
    torch.nn.init.normal_(dqformer.proj_out.weight, std=0.1)  # as if trained: not zero
    write_dqformer(models / "dqformer" / FILES["dqformer_name"], dqformer, SD15, vlm.name)
    Image.fromarray(data.astronaut()).save(base / "input" / TEST_FILES["image"])
    packs = tuple(folder for name in (VHS, "ComfyUI-AnimateDiff-Evolved", "ComfyUI_IPAdapter_plus")
                  if (folder := pack_folder(comfyui, name)))
    with ComfyServer(comfyui, base, packs) as server:
        yield server
    shutil.rmtree(base / "output", ignore_errors=True)


def _hidden_size(folder: Path) -> int:
    import json
    config = json.loads((folder / "config.json").read_text())
    return config.get("text_config", config)["hidden_size"]


class Runs:
    """Sampled latents of the cells (and the latents they started from), each graph run once on the matrix server."""

    def __init__(self, server):
        self.server, self.done = server, {}

    def _latent(self, outputs: dict, save: str) -> torch.Tensor:
        from safetensors.torch import load_file
        item = outputs[save]["latents"][0]
        return load_file(str(self.server.base / "output" / item["subfolder"] / item["filename"]))["latent_tensor"]

    def run(self, ours: str | None, other: str | None, ours_first: bool = True, size_of: str | None = None):
        """(sampled, start) latents of a cell; `size_of` sizes a graph without `other` as that node's (its frames
        and steps)."""
        size = OTHERS[size_of or other] if (size_of or other) else None
        frames, steps = (size.frames, size.steps) if size else (FRAMES, STEPS)
        key = (ours, other, ours_first, frames, steps)
        if key not in self.done:
            prompt, sampled, start = cell_graph(ours, other, ours_first, frames, steps)
            outputs = self.server.run(prompt)["outputs"]
            self.done[key] = self._latent(outputs, sampled), self._latent(outputs, start)
        return self.done[key]

    def __call__(self, *cell, **size) -> torch.Tensor:
        return self.run(*cell, **size)[0]


@pytest.fixture(scope="module")
def fresh_basic(matrix_server):
    """What the shipped basic graph samples on the fresh server, before any cell ran."""
    from comfyui_i2v_adapter.tests.support.workflows import run_workflow, workflow_prompt
    return run_workflow(matrix_server, workflow_prompt(matrix_server, BASIC)).sampled


@pytest.fixture(scope="module")
def runs(matrix_server, fresh_basic):
    yield Runs(matrix_server)
    table = ["| other node | ours | order | effect with ours ÷ without |", "|---|---|---|---|", *REPORT]
    (matrix_server.base.parent / "composition_matrix.md").write_text("\n".join(table) + "\n")
    print("\n" + "\n".join(table))


def _report(other: str, ours: str, ours_first: bool, value: str) -> None:
    REPORT.append(f"| {other} | {ours} | {'ours first' if ours_first else 'theirs first'} | {value} |")


@pytest.mark.parametrize("other", OTHERS)
def test_every_cell_runs_keeps_frame_0_and_the_other_nodes_effect(other, runs, matrix_server, fresh_basic, comfyui):
    from comfyui_i2v_adapter.tests.support.workflows import run_workflow, workflow_prompt

    spec = OTHERS[other]
    if spec.pack and pack_folder(comfyui, spec.pack) is None:
        pytest.skip(f"{spec.pack} is not in {comfyui / 'custom_nodes'}: put it there to run this row")
    plain, alone = runs(None, None, size_of=other), runs(None, other)
    for ours in spec.ours:
        mine, start = runs.run(ours, None, size_of=other)
        for ours_first in ((True, False) if spec.order else (True,)):
            both = runs(ours, other, ours_first)
            where = f"{ours} {'before' if ours_first else 'after'} {other}"
            if ours in PINS_FRAME_0:
                assert torch.equal(both[0], start[0]), f"{where}: frame 0 is not the reference"
            if spec.temporal:  # windows change what frames that interact sample, and nothing else
                change = effect(both, mine) / effect(mine, plain)
                _report(other, ours, ours_first, f"changes ours by {change:.3g}")
                if ours in INTERACTING:
                    assert change > 1e-3, f"{where}: the windows change nothing"
                else:
                    assert change < UNCHANGED, f"{where}: the windows change a video whose frames do not interact"
            elif other in SCHEDULE_NODES and ours == "Motion Module":
                # Before ours, autoselect keeps it; after ours, it replaces ours: its schedule either way.
                assert torch.equal(both, runs(ours, other, not ours_first)), f"{where}: the order decides the schedule"
                _report(other, ours, ours_first, "its schedule in either order")
            elif other == "CFGGuider":  # the same sampling as KSampler's
                assert torch.equal(both, mine), f"{where}: SamplerCustomAdvanced + CFGGuider is not KSampler"
                _report(other, ours, ours_first, "equal to KSampler")
            else:
                ratio = effect(both, mine) / effect(alone, plain)
                _report(other, ours, ours_first, f"{ratio:.3f}")
                assert 1 / RATIO <= ratio <= RATIO, f"{where}: its effect is {ratio:.3f}× what it is without ours"
    after = run_workflow(matrix_server, workflow_prompt(matrix_server, BASIC)).sampled
    assert torch.equal(after, fresh_basic), f"after the {other} row the basic graph samples something else"
