"""Eager against ComfyUI's TorchCompileModel on the I2V-adapted model: that it runs, the speed-up after warm-up, and
the recompilations per step (none after the first)."""
from functools import partial

import torch._dynamo
from comfy_extras.nodes_torch_compile import TorchCompileModel

from .. import targets
from ..graph import sample, video_latent, with_i2v_adapter
from ..measure import Deadline, alternate, warm_up
from ..models import Models
from ..report import Row, measured, met
from ..sizes import Video

EAGER = "eager"


def frames_compiled() -> int:
    """Frames dynamo has compiled in this process: a recompilation is one more."""
    return torch._dynamo.utils.counters["frames"]["total"]


@torch.inference_mode()  # as ComfyUI's executor runs a prompt
def run(models: Models, deadline: Deadline, title: str, video: Video, backend: str) -> list[Row]:
    latent = video_latent(models, video)
    adapted = with_i2v_adapter(models, models.unet("sd15"), "sd15", latent)
    compiled_name = f"TorchCompileModel ({backend})"
    models_by_name = {EAGER: adapted, compiled_name: TorchCompileModel.execute(adapted, backend).result[0]}
    sampling = partial(sample, latent=latent, conditioning=models.conditioning("sd15"))
    try:
        # The warm-up is one step (it compiles); the timed runs' schedule has other sigmas, so a guard on a step's
        # values would show as recompilations there.
        first = warm_up({name: partial(sampling, m, steps=1) for name, m in models_by_name.items()},
                        models.sizes.gpu, deadline)
        before = frames_compiled()
        results = alternate({name: partial(sampling, m, steps=video.steps) for name, m in models_by_name.items()},
                            models.sizes.repeats, models.sizes.gpu, deadline, first)
        recompiled = frames_compiled() - before
    finally:
        torch._dynamo.reset()  # its caches hold the compiled UNet
    steps = models.sizes.repeats * video.steps
    eager, compiled = results[EAGER], results[compiled_name]
    rows = [measured(title, EAGER, eager, "s/step", scale=1 / video.steps),
            measured(title, f"{compiled_name}: first step {compiled.first:.1f} s, {recompiled} recompilations in "
                            f"{steps} steps", compiled, "s/step", eager, 1 / video.steps)]
    rows[1].target = f"time ≤ {targets.COMPILE_TIME:.2f}×, {targets.COMPILE_RECOMPILATIONS} recompilations/step"
    rows[1].result = met(compiled.seconds <= targets.COMPILE_TIME * eager.seconds
                         and recompiled <= targets.COMPILE_RECOMPILATIONS * steps)
    return rows
