"""No host synchronisation inside a UNet call: each MODEL patch of ours, alone and all stacked under context windows,
samples with KSampler while a guard (tests/support/host_sync.py) watches every UNet call after the first: the
pack's code reads no tensor on the host, makes no tensor from host data and makes no per-call copy or cast with
`.to()`. The guard is a test, never a runtime cost."""
import pytest
import torch

from comfyui_i2v_adapter.kernels.motion_module_file import read_motion_module
from comfyui_i2v_adapter.tests.support.graphs import apply_adapter, random_adapter, sample, video_latent
from comfyui_i2v_adapter.tests.support.host_sync import HostSyncGuard, guard_unet_calls_after_the_first
from comfyui_i2v_adapter.tests.support.images import astronaut

FRAMES = 4


def test_the_guard_finds_each_kind_of_sync_in_the_code_it_watches(tmp_path):
    from pathlib import Path
    x = torch.ones(3)
    guard = HostSyncGuard(code=Path(__file__).resolve().parent, allowed=())
    with guard:
        x.to(x), x.to(torch.float32)  # no new tensor: nothing to wait for
        x.sum().item()
        bool(x[0] > 0)
        torch.tensor([1.0, 2.0])
        x.to(torch.float16)
    assert guard.watched == 9 and [line.split(": ", 1)[1] for line in guard.found] == [
        "item", "__bool__", "tensor", ".to() made a new (3,) torch.float16 tensor on cpu"]
    with HostSyncGuard() as elsewhere:  # the pack's code only: this file is a test
        x.sum().item()
    assert elsewhere.found == [] and elsewhere.watched == 0


def _dqformer(model, tmp_path, latent):
    from comfyui_i2v_adapter.kernels.dqformer import DQFormer, DQFormerShape
    from comfyui_i2v_adapter.kernels.dqformer_file import read_dqformer, write_dqformer
    from comfyui_i2v_adapter.kernels.state_schedule import frame_state_weights
    from comfyui_i2v_adapter.kernels.unet_layout import SD15
    from comfyui_i2v_adapter.kernels.vlm_io import StateFeatures
    from comfyui_i2v_adapter.nodes.dqformer_nodes import ApplyDQFormer
    from comfyui_i2v_adapter.nodes.vlm_answer import DecomposedStates

    torch.manual_seed(3)
    hidden = 32
    dqformer = DQFormer(DQFormerShape(hidden, SD15.context_dim, width=64, layers=2, heads=4, queries=8))
    torch.nn.init.normal_(dqformer.proj_out.weight, std=0.5)
    write_dqformer(tmp_path / "dq.safetensors", dqformer, SD15, "tiny-vlm")
    features = StateFeatures("tiny-vlm", torch.randn(1, 5, hidden), torch.ones(1, 5, dtype=torch.bool),
                             torch.randn(2, 3, hidden), torch.ones(2, 3, dtype=torch.bool))
    states = DecomposedStates("tiny-vlm", features, frame_state_weights(FRAMES, 2, 1.0))
    return ApplyDQFormer.execute(model, read_dqformer(tmp_path / "dq.safetensors"), states, 1.0).result[0]


def _content(model, tmp_path, latent):
    from comfyui_i2v_adapter.kernels.content_adapter_file import read_content_adapter
    from comfyui_i2v_adapter.kernels.unet_layout import SD15
    from comfyui_i2v_adapter.nodes.content_adapter_nodes import ApplyContentAdapter
    from comfyui_i2v_adapter.tests.support.random_models import (random_ip_adapter_plus, small_clip_vision,
                                                                 write_ip_adapter_bin)
    write_ip_adapter_bin(tmp_path / "ip.bin", random_ip_adapter_plus(SD15, image_features=64))
    return ApplyContentAdapter.execute(model, read_content_adapter(tmp_path / "ip.bin"), small_clip_vision(64),
                                       astronaut(), 1.0).result[0]


def _motion(layout):
    def apply(model, tmp_path, latent, files):
        from comfyui_i2v_adapter.nodes.temporal_layer_nodes import ApplyMotionModule
        return ApplyMotionModule.execute(model, read_motion_module(files[layout]), 0.8, "autoselect",
                                         "autoselect").result[0]
    return apply


def _look_back(model, tmp_path, latent, path):
    from comfyui_i2v_adapter.kernels.look_back_file import read_look_back
    from comfyui_i2v_adapter.nodes.temporal_layer_nodes import ApplyLookBackLayers
    return ApplyLookBackLayers.execute(model, read_look_back(path), latent).result[0]


def _windows(model):
    from comfy_extras.nodes_context_windows import ContextWindowsManualNode
    return ContextWindowsManualNode.execute(model, 3, 1, "standard_static", 1, False, "pyramid", 0).result[0]


PATCHES = ["I2V-Adapter", "Content-Adapter", "DQFormer", "Motion Module v1 (GroupNorm across frames)",
           "Motion Module v3", "Look-Back", "all of them under context windows"]


@pytest.mark.comfyui
@pytest.mark.parametrize("patches", PATCHES)
def test_no_patch_of_ours_syncs_with_the_host_inside_a_unet_call(patches, sd15, motion_files, look_back_file,
                                                                  tmp_path):
    model, clip, vae = sd15
    latent = video_latent(vae, frames=FRAMES)
    each = {"I2V-Adapter": lambda m: apply_adapter(m, random_adapter(), latent),
            "Content-Adapter": lambda m: _content(m, tmp_path, latent),
            "DQFormer": lambda m: _dqformer(m, tmp_path, latent),
            "Motion Module v1 (GroupNorm across frames)": lambda m: _motion("v1")(m, tmp_path, latent, motion_files),
            "Motion Module v3": lambda m: _motion("v3")(m, tmp_path, latent, motion_files),
            "Look-Back": lambda m: _look_back(m, tmp_path, latent, look_back_file)}
    guard = HostSyncGuard()
    patched, calls = guard_unet_calls_after_the_first(model, guard)
    for name in (each if patches == PATCHES[-1] else [patches]):
        if name != "Motion Module v3" or patches != PATCHES[-1]:  # one motion module at a time
            patched = each[name](patched)
    if patches == PATCHES[-1]:
        patched = _windows(patched)
    with torch.inference_mode():  # as ComfyUI's executor runs a prompt
        sample(patched, clip, latent, steps=3)
    assert len(calls) >= 3 and guard.watched > 0, "the guard watched no code of ours"
    assert guard.found == [], "host syncs inside a UNet call:\n" + "\n".join(sorted(set(guard.found)))
