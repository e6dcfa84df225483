"""Tier 1: adapter files: the official `i2v_module.pth` layout, our safetensors, and what is refused."""
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from comfyui_i2v_adapter.kernels.adapter_file import convert_official, read_adapter, write_adapter
from comfyui_i2v_adapter.kernels.first_frame_attention import I2VAdapter
from comfyui_i2v_adapter.kernels.tensor_files import FileFormatError, atomic_path
from comfyui_i2v_adapter.kernels.unet_layout import SD15, SDXL


def random_official_state(seed=0, scale=1.0):
    """The official release's keys (bare diffusers UNet paths) with random values, as `i2v_module.pth` holds."""
    torch.manual_seed(seed)
    adapter = I2VAdapter(SD15)
    for p in adapter.parameters():
        torch.nn.init.normal_(p, std=scale)
    return adapter.state_dict()


@pytest.fixture
def official_pth(tmp_path):
    path = tmp_path / "i2v_module.pth"
    torch.save({"state_dict": random_official_state()}, path)
    return path


def branch_outputs(adapter_file, seed=1):
    adapter = I2VAdapter(adapter_file.family)
    adapter.load_state_dict(adapter_file.state_dict)
    torch.manual_seed(seed)
    return [branch(torch.randn(4, 6, branch.to_q_ff.in_features), *(torch.randn(2, 6, branch.to_q_ff.in_features),) * 2, 2, 8)
            for _, branch in adapter.branches()]


def test_official_pth_converts_reloads_and_gives_the_same_outputs(official_pth, tmp_path):
    converted = convert_official(official_pth, tmp_path / "mine.safetensors")
    original = read_adapter(official_pth)
    assert converted.family is SD15 and original.family is SD15
    assert converted.state_dict.keys() == original.state_dict.keys()
    assert all(torch.equal(converted.state_dict[k], original.state_dict[k]) for k in original.state_dict)
    assert all(torch.equal(a, b) for a, b in zip(branch_outputs(converted), branch_outputs(original)))
    with safe_open(str(tmp_path / "mine.safetensors"), "pt") as f:
        meta = f.metadata()
    assert meta["format"] == "i2v-adapter" and meta["format_version"] == "1" and meta["base"] == "sd15"
    assert len(json.loads(meta["layers"])) == 16 and meta["source"] == "i2v_module.pth"


@pytest.mark.parametrize("wrap", [lambda sd: sd, lambda sd: {f"module.{k}": v for k, v in sd.items()}],
                         ids=["bare", "module-prefixed"])
def test_official_variants_load(tmp_path, wrap):
    torch.save(wrap(random_official_state()), tmp_path / "a.pth")
    assert read_adapter(tmp_path / "a.pth").family is SD15


def test_sdxl_adapter_is_recognised(tmp_path):
    with torch.device("meta"):
        keys = {k: v.shape for k, v in I2VAdapter(SDXL).state_dict().items()}
    save_file({k: torch.zeros(s, dtype=torch.float16) for k, s in keys.items()}, str(tmp_path / "xl.safetensors"))
    assert read_adapter(tmp_path / "xl.safetensors").family is SDXL


class NotATensor:
    pass


def test_pickle_with_objects_is_refused_without_running_it(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": {"x": NotATensor()}}, f, protocol=2)
    with pytest.raises(FileFormatError, match="safe load"):
        read_adapter(path)


def test_pickle_with_non_tensor_entries_is_refused(tmp_path):
    torch.save({"layer.attn1.to_q_ff.weight": torch.zeros(2, 2), "epoch": 3}, tmp_path / "mixed.pth")
    with pytest.raises(FileFormatError, match="non-tensor entries.*'epoch': int"):
        read_adapter(tmp_path / "mixed.pth")


def test_a_file_that_is_no_adapter_is_named_as_such(tmp_path):
    save_file({"down_blocks.0.motion_modules.0.proj_in.weight": torch.zeros(2, 2)}, str(tmp_path / "mm.safetensors"))
    with pytest.raises(FileFormatError, match="neither an I2V-Adapter safetensors file nor the official"):
        read_adapter(tmp_path / "mm.safetensors")


def test_incomplete_or_misshapen_layers_are_refused(tmp_path):
    state = random_official_state()
    partial = {k: v for k, v in state.items() if not k.startswith("up_blocks")}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(FileFormatError, match="match no supported UNet layout"):
        read_adapter(tmp_path / "partial.pth")
    key = "mid_block.attentions.0.transformer_blocks.0.attn1.to_out_ff.bias"
    torch.save({**state, key: torch.zeros(3)}, tmp_path / "bad.pth")
    with pytest.raises(FileFormatError, match=r"to_out_ff.bias is \(3,\), expected \(1280,\)"):
        read_adapter(tmp_path / "bad.pth")


def test_metadata_must_agree_with_the_layers(tmp_path):
    state = {k: v.contiguous() for k, v in random_official_state().items()}
    save_file(state, str(tmp_path / "xl.safetensors"), metadata={"format": "i2v-adapter", "base": "sdxl"})
    with pytest.raises(FileFormatError, match="says it is for sdxl but its layers are SD1.5"):
        read_adapter(tmp_path / "xl.safetensors")
    save_file(state, str(tmp_path / "lb.safetensors"), metadata={"format": "look-back-layers"})
    with pytest.raises(FileFormatError, match="'look-back-layers' file, not an I2V-Adapter"):
        read_adapter(tmp_path / "lb.safetensors")


def test_writing_is_atomic(tmp_path):
    target = tmp_path / "adapter.safetensors"
    write_adapter(target, random_official_state(seed=1), SD15)
    before = target.read_bytes()
    with pytest.raises(FileFormatError):
        write_adapter(target, {"nonsense": torch.zeros(1)}, SD15)
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["adapter.safetensors"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_adapter(tmp_path / "missing" / "a.safetensors", random_official_state(), SD15)


def test_an_interrupted_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            open(tmp, "wb").write(b"half a fi")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["model.safetensors"]


def test_converter_command_line(official_pth, tmp_path):
    script = Path(__file__).resolve().parents[1] / "training" / "convert_official_i2v.py"
    done = subprocess.run([sys.executable, str(script), str(official_pth), str(tmp_path / "out.safetensors")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "SD1.5 I2V-Adapter, 16 layers, 24,793,280 parameters" in done.stdout
    assert read_adapter(tmp_path / "out.safetensors").family is SD15
    missing = subprocess.run([sys.executable, str(script), str(tmp_path / "nope.pth"), str(tmp_path / "x.safetensors")],
                             capture_output=True, text=True)
    assert missing.returncode == 1 and "nope.pth" in missing.stderr
