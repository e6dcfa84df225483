"""KSampler step time and memory without and with each addition, on SD1.5 or SDXL."""
from functools import partial

import torch

from .. import targets
from ..graph import sample, video_latent, with_content_adapter, with_dqformer, with_i2v_adapter, with_look_back
from ..measure import Deadline, alternate
from ..models import Models
from ..report import Row, measured, met
from ..sizes import Video

BASELINE, I2V, LOOK_BACK, DQFORMER = "plain", "I2V-Adapter", "look-back layers", "DQFormer"


def configurations(models: Models, family: str, latent: dict) -> dict:
    """The plain model, with the I2V-Adapter, and on SD1.5 also with the Content-Adapter, with both, with look-back
    layers and with a DQFormer (SDXL's IP-Adapter Plus: 424 M more random parameters for the same patch on another
    family)."""
    plain = models.unet(family)
    adapted = with_i2v_adapter(models, plain, family, latent)
    if family != "sd15":
        return {BASELINE: plain, I2V: adapted}
    content = with_content_adapter(models, plain)
    return {BASELINE: plain, I2V: adapted, "Content-Adapter": content,
            "both adapters": with_i2v_adapter(models, content, family, latent),
            LOOK_BACK: with_look_back(models, plain, latent), DQFORMER: with_dqformer(models, plain, latent)}


@torch.inference_mode()  # as ComfyUI's executor runs a prompt
def run(models: Models, deadline: Deadline, title: str, family: str, video: Video, with_targets: bool) -> list[Row]:
    latent = video_latent(models, video)
    runs = {name: partial(sample, model, latent, models.conditioning(family), video.steps)
            for name, model in configurations(models, family, latent).items()}
    results = alternate(runs, models.sizes.repeats, models.sizes.gpu, deadline)
    base = results[BASELINE]
    rows = {name: measured(title, name, m, "s/step", None if name == BASELINE else base, 1 / video.steps)
            for name, m in results.items()}
    if with_targets:
        adapter = results[I2V]
        rows[I2V].target = f"time ≤ {targets.ADAPTER_TIME:.2f}×, peak ≤ {targets.ADAPTER_PEAK:.2f}×"
        rows[I2V].result = met(adapter.seconds <= targets.ADAPTER_TIME * base.seconds
                               and adapter.peak <= targets.ADAPTER_PEAK * base.peak)
        for name, limit in ((LOOK_BACK, targets.LOOK_BACK_TIME), (DQFORMER, targets.DQFORMER_TIME)):
            rows[name].target = f"time ≤ {limit:.2f}×"
            rows[name].result = met(results[name].seconds <= limit * base.seconds)
    return list(rows.values())
