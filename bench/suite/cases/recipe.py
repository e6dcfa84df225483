"""The recipe graph end to end at t0 = 1.0 / 0.8 / 0.6 on SD1.5 with AnimateDiff v1 and the Content-Adapter: Frame
Similarity Prior (encode, degrade), Apply I2V-Adapter, then KSampler with DDIM on ddim_uniform (as the official
release) from the prior's steps and denoise. Expected: time ∝ the steps that run; the recipe at t0 = 1.0 against the
same graph without the I2V-Adapter and the Content-Adapter."""
from functools import partial

import torch

from ....kernels.frame_similarity_prior import DEFAULT_BLUR_KERNEL, DEFAULT_BLUR_SIGMA, DEFAULT_P, sampler_start
from ....nodes.frame_similarity_prior import FrameSimilarityPrior
from .. import targets
from ..graph import animated, recipe_base, sample, with_i2v_adapter
from ..measure import Deadline, alternate, warm_up
from ..models import Models
from ..report import Row, measured, met
from ..sizes import Video


PLAIN = "without the adapters"


def end_to_end(models: Models, base, video: Video, t0: float, adapter: bool = True) -> None:
    """The nodes a new t0 runs again (ComfyUI keeps the outputs of the others, whose inputs did not change)."""
    latent, steps, denoise = FrameSimilarityPrior.execute(
        models.vae, models.image, video.frames, video.size, video.size, video.steps, t0, DEFAULT_P,
        DEFAULT_BLUR_KERNEL, DEFAULT_BLUR_SIGMA, "latent", 0).result
    sample(with_i2v_adapter(models, base, "sd15", latent) if adapter else base, latent, models.conditioning("sd15"),
           steps, "ddim", "ddim_uniform", denoise)


@torch.inference_mode()  # as ComfyUI's executor runs a prompt
def run(models: Models, deadline: Deadline, title: str, video: Video, t0s: tuple[float, ...]) -> list[Row]:
    video_model = animated(models)
    base = recipe_base(models, video_model)
    runs = {t0: partial(end_to_end, models, base, video, t0) for t0 in t0s}
    runs[PLAIN] = partial(end_to_end, models, video_model, video, max(t0s), adapter=False)
    first = warm_up({"warm-up": runs[min(t0s)]}, models.sizes.gpu, deadline)  # the shortest run loads it all
    results = alternate(runs, models.sizes.repeats, models.sizes.gpu, deadline, first)
    full, plain = results[max(t0s)], results.pop(PLAIN)
    rows = []
    for t0, m in results.items():
        steps = sampler_start(video.steps, t0)[0]
        name = f"t0 {t0:.1f}: {steps} of {video.steps} steps ({steps / video.steps:.2f}×)"
        rows.append(measured(title, name, m, "s", None if m is full else full))
    rows.append(measured(title, f"t0 {max(t0s):.1f} {PLAIN}", plain, "s"))
    rows[0].target = f"≤ {targets.RECIPE_TIME:.2f}× {PLAIN} ({full.seconds / plain.seconds:.3f}×)"
    rows[0].result = met(full.seconds <= targets.RECIPE_TIME * plain.seconds)
    return rows
