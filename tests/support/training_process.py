"""Run by tests/test_training_processes.py in a process of its own (accelerate's settings are fixed per process),
alone or under torchrun: the tiny base trained as on several GPUs, by processes on the CPU (gloo). Writes the
reduced loss of each step this run made to losses.json."""
import argparse
import json
import os
import runpy
from pathlib import Path

runpy.run_path(str(Path(__file__).resolve().parents[2] / "standalone.py"))
os.environ["ACCELERATE_USE_CPU"] = "true"

from comfyui_i2v_adapter.training.demo import demo_config  # noqa: E402
from comfyui_i2v_adapter.training.tiny_base import tiny_base  # noqa: E402
from comfyui_i2v_adapter.training.tiny_world import SyntheticClips  # noqa: E402
from comfyui_i2v_adapter.training.trainer import train  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("folder", type=Path)
parser.add_argument("steps", type=int)
parser.add_argument("--resume")
parser.add_argument("--mixed-precision", default="no")
args = parser.parse_args()
config = demo_config(args.folder, ("i2v_adapter", "look_back"), args.steps, args.resume, progress=False)
config.batch_size, config.checkpoint_every, config.mixed_precision = 2, 2, args.mixed_precision
config.save_dtype = "fp16"
result = train(config, tiny_base(), SyntheticClips(16, 8, 32), log=lambda *_: None)
if os.environ.get("RANK", "0") == "0":
    (args.folder / "losses.json").write_text(json.dumps(result.losses))
