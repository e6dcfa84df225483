"""The suite's cases in order, for a mode's sizes: what each measures is its module in bench/suite/cases."""
from dataclasses import dataclass

from .sizes import Sizes

FAMILY_LABELS = {"sd15": "SD1.5", "sdxl": "SDXL"}


@dataclass(frozen=True)
class Case:
    title: str
    kind: str        # its module in bench/suite/cases and its limit in Sizes.limits
    arguments: dict


def plan(sizes: Sizes) -> list[Case]:
    targets_at = next(i for i, (family, _) in enumerate(sizes.ksampler) if family == "sd15")
    return [
        *(Case(f"KSampler {FAMILY_LABELS[family]} {video.label}", "ksampler",
               dict(family=family, video=video, with_targets=i == targets_at))
          for i, (family, video) in enumerate(sizes.ksampler)),
        Case(f"Temporal layers SD1.5 {sizes.temporal_size}²", "temporal",
             dict(frames=sizes.temporal_frames, size=sizes.temporal_size)),
        Case(f"Each addition against its floor, {sizes.floor_videos}×{sizes.floor.label}", "floor",
             dict(video=sizes.floor, videos=sizes.floor_videos)),
        Case(f"Recipe graph {sizes.recipe.label}, {sizes.recipe.steps}-step DDIM", "recipe",
             dict(video=sizes.recipe, t0s=sizes.t0s)),
        Case(f"Long video, context windows of {sizes.context[0]}", "long_video",
             dict(videos=sizes.long_video, context=sizes.context)),
        Case(f"TorchCompileModel {sizes.compile.label}", "compile",
             dict(video=sizes.compile, backend=sizes.compile_backend)),
        Case(f"Training, I2V-Adapter only, {sizes.training_precision}", "training", dict(videos=sizes.training)),
        Case(f"Official release's pipeline {sizes.official.label}, {sizes.official.steps}-step DDIM", "official",
             dict(video=sizes.official)),
    ]
