"""All of an SD1.5 UNet's look-back layers against all of its AnimateDiff v2 motion modules, on the hidden states the
UNet gives them, at growing frame counts (the look-back recurrence is sequential over frames: its time must stay
linear)."""
from functools import partial

import torch

import comfy.ops

from ....kernels.look_back import LookBackLayers
from ....kernels.unet_layout import SD15, block_output_sites, motion_module_sites
from ....tests.support.random_models import fill_random
from ...harness import run_temporal_layers
from .. import targets
from ..measure import Deadline, alternate
from ..models import Models
from ..report import Row, measured, met

MOTION, LOOK_BACK = "motion modules (v2)", "look-back"


def layer_kinds(models: Models, max_frames: int) -> dict:
    """{kind: (layers, sites)}; the look-back layers at the paper's defaults (depth 5, 5×5, 3×3×3)."""
    options = dict(dtype=models.sizes.dtype, device=models.device)
    look_back = LookBackLayers(SD15, **options)
    fill_random(look_back)
    motion = models.motion_module(max_frames, mid_block=True).build(operations=comfy.ops.disable_weight_init,
                                                                      dtype=models.sizes.dtype).to(models.device)
    return {MOTION: (motion, motion_module_sites(SD15, mid_block=True)),
            LOOK_BACK: (look_back, block_output_sites(SD15))}


def forward(layers, sites, frames: int, latent: int, models: Models) -> None:
    run_temporal_layers(layers, sites, frames, latent, models.device, models.sizes.dtype)


@torch.inference_mode()  # as sampling runs them
def run(models: Models, deadline: Deadline, title: str, frames: tuple[int, ...], size: int) -> list[Row]:
    kinds = layer_kinds(models, max(frames))
    results = {}
    for count in frames:
        runs = {(kind, count): partial(forward, layers, sites, count, size // 8, models)
                for kind, (layers, sites) in kinds.items()}
        results |= alternate(runs, models.sizes.repeats, models.sizes.gpu, deadline)
    rows = [measured(title, f"{kind}, {count} frames", m, "s", None if kind == MOTION else results[MOTION, count])
            for (kind, count), m in results.items()]
    fewest, most = min(frames), max(frames)
    growth, limit = results[LOOK_BACK, most].seconds / results[LOOK_BACK, fewest].seconds, \
        targets.LOOK_BACK_LINEARITY * most / fewest
    rows[-1].target = f"look-back T({most})/T({fewest}) = {growth:.2f} ≤ {limit:.1f}"
    rows[-1].result = met(growth <= limit)
    return rows
