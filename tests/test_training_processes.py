"""Training in processes of its own: two processes under torchrun (gloo on the CPU, the code path of several GPUs
under accelerate) checkpoint together and resume exactly; bf16 autocast trains."""
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from comfyui_i2v_adapter.kernels.adapter_file import read_adapter

SCRIPT = Path(__file__).parent / "support" / "training_process.py"


def run(folder: Path, steps: int, *flags: str, processes: int = 2) -> list:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes), str(SCRIPT),
               str(folder), str(steps), *flags]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return [tuple(entry) for entry in json.loads((folder / "losses.json").read_text())]


def written(folder: Path) -> dict:
    return read_adapter(folder / "i2v_adapter_tiny_demo.safetensors").state_dict


def test_two_processes_checkpoint_together_and_resume_exactly(tmp_path):
    straight = run(tmp_path / "straight", 4)
    run(tmp_path / "resumed", 2)
    resumed = run(tmp_path / "resumed", 4, "--resume", "latest")
    assert [step for step, _ in straight] == [1, 2, 3, 4]
    assert resumed == straight[2:]
    state = json.loads((tmp_path / "resumed/run/checkpoints/checkpoint-00000004/trainer_state.json").read_text())
    assert state["settings"]["processes"] == 2 and state["data_position"] == 4
    files = [written(tmp_path / name) for name in ("straight", "resumed")]
    assert all(torch.equal(files[0][k], files[1][k]) for k in files[0])


def test_bf16_autocast_trains_close_to_fp32(tmp_path):
    full = run(tmp_path / "fp32", 2, processes=1)
    half = run(tmp_path / "bf16", 2, "--mixed-precision", "bf16", processes=1)
    assert [step for step, _ in half] == [1, 2]
    assert all(abs(a - b) < 0.05 * a for (_, a), (_, b) in zip(full, half)) and half != full
    adapter = written(tmp_path / "bf16")
    assert all(v.dtype == torch.float16 and torch.isfinite(v).all() for v in adapter.values())
    assert any(v.abs().max() > 0 for k, v in adapter.items() if "to_out_ff" in k)
