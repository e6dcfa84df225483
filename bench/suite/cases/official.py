"""The anchor: the official I2V-Adapter release's own pipeline (bench/official_pipeline.py, in its own environment)
against our recipe graph on the same device, at the same sizes, steps, CFG and t0 = 1.0 (the official pipeline
starts every run at its first timestep), both from random weights of the same shapes. Expected: ours ÷ official
≤ 0.7 on a GPU (the official code clones frame 0's keys and values for every frame; we read them as views). Runs
where the tier-3 environment is found (I2V_OFFICIAL_PATH, I2V_OFFICIAL_PYTHON); a row saying so otherwise."""
import json
import statistics
import subprocess
import tempfile
from functools import partial
from pathlib import Path

import torch

from ....kernels.unet_layout import SD15
from ....tests.support import random_models
from ....tests.support.official import NOT_FOUND, find_official, official_bundle, run_in_official_environment, \
    write_official_layout
from .. import targets
from ..graph import V1_FRAMES, animated, recipe_base
from ..measure import Deadline, alternate
from ..models import CLIP_VISION_WIDTH, Models
from ..report import Row, measured, met
from ..sizes import Video
from .recipe import end_to_end

TIMER = Path(__file__).resolve().parents[2] / "official_pipeline.py"
OFFICIAL = "the official release's pipeline"


def write_layout(models: Models, unet: torch.nn.Module, work: Path) -> None:
    """The official release's files, as its inference.py reads them: our recipe's UNet, AnimateDiff v1 motion modules
    and adapters of the same shapes."""
    from PIL import Image
    checkpoint = {f"model.diffusion_model.{k}": v.cpu() for k, v in unet.state_dict().items()}
    motion = random_models.random_motion_modules(V1_FRAMES, mid_block=False, shared=models.sizes.shared_weights)
    ip_adapter = random_models.random_ip_adapter_plus(SD15, CLIP_VISION_WIDTH)
    random_models.write_ip_adapter_bin(work / "ip-adapter-plus_sd15.bin", ip_adapter)
    Image.fromarray((models.image[0] * 255).byte().numpy()).save(work / "picture.png")
    write_official_layout(work, official_bundle(checkpoint, motion, ip_adapter), models.i2v_adapter("sd15").state_dict,
                          work / "ip-adapter-plus_sd15.bin", random_models.small_clip_vision_config(CLIP_VISION_WIDTH),
                          models.clip_vision.get_sd(), work / "picture.png")


def time_official(models: Models, work: Path, video: Video, deadline: Deadline) -> dict:
    checkout, python = find_official()
    gpu = models.sizes.gpu
    # fp16 on a GPU as inference.py runs it; fp32 on the CPU, the only precision its code runs there
    (work / "spec.json").write_text(json.dumps({
        "official": str(checkout), "frames": video.frames, "size": video.size, "steps": video.steps, "cfg": 7.5,
        "repeats": models.sizes.repeats, "device": "cuda" if gpu else "cpu", "dtype": "float16" if gpu else "float32"}))
    try:
        run_in_official_environment(TIMER, work, checkout, python, max(deadline.left(), 1), gpu)
    except subprocess.TimeoutExpired:
        deadline.check()
        raise
    return json.loads((work / "timing.json").read_text())


@torch.inference_mode()  # as ComfyUI's executor runs a prompt
def run(models: Models, deadline: Deadline, title: str, video: Video) -> list[Row]:
    if find_official() is None:
        return [Row(title, OFFICIAL, result=f"not run: {NOT_FOUND}")]
    base = recipe_base(models, animated(models))
    with tempfile.TemporaryDirectory() as folder:
        write_layout(models, base.model.diffusion_model, Path(folder))  # before sampling: the plain UNet's tensors
        ours = alternate({"ours": partial(end_to_end, models, base, video, 1.0)}, models.sizes.repeats,
                         models.sizes.gpu, deadline)["ours"]
        official = time_official(models, Path(folder), video, deadline)
    seconds = statistics.median(official["seconds"])
    peak = f"{official['peak'] / 2 ** 20:.0f}" if official["peak"] else ""
    row = measured(title, "our recipe graph", ours, "s")
    row.time_ratio = f"{ours.seconds / seconds:.3f}× official"
    row.target = f"≤ {targets.OFFICIAL_TIME:.2f}× official"
    row.result = met(ours.seconds <= targets.OFFICIAL_TIME * seconds)
    return [Row(title, OFFICIAL, f"{seconds:.3f} s", peak=peak), row]
