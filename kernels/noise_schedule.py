"""The noise schedules a base and its temporal layers are trained with, by the names users meet them under.

ComfyUI and diffusers name the same two beta curves oppositely: ComfyUI's `linear` (SD1.5's and SDXL's default) is
diffusers' `scaled_linear` (linear in √β), ComfyUI's `sqrt_linear` is diffusers' `linear` (linear in β), the curve
AnimateDiff and the official I2V-Adapter release train and sample with. At t = 961, √ᾱ is 0.085 on the first and
0.050 on the second: a model sampled on the other schedule runs every step at another noise level.
"""
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class NoiseSchedule:
    label: str            # the option users pick, and the value files record
    comfy_name: str       # ComfyUI's beta_schedule
    diffusers_name: str   # diffusers' beta_schedule
    linear_start: float = 0.00085
    linear_end: float = 0.012
    timesteps: int = 1000

    def alphas_cumprod(self) -> torch.Tensor:
        """ᾱ_t for t = 0..timesteps-1, in float64."""
        if self.diffusers_name == "linear":
            betas = torch.linspace(self.linear_start, self.linear_end, self.timesteps, dtype=torch.float64)
        else:
            betas = torch.linspace(self.linear_start ** 0.5, self.linear_end ** 0.5, self.timesteps,
                                   dtype=torch.float64) ** 2
        return torch.cumprod(1 - betas, dim=0)

    def sampling_settings(self) -> dict:
        """What ComfyUI's ModelSamplingDiscrete reads from a model config."""
        return {"beta_schedule": self.comfy_name, "linear_start": self.linear_start, "linear_end": self.linear_end,
                "timesteps": self.timesteps}


SD_DEFAULT = NoiseSchedule("linear (SD default)", "linear", "scaled_linear")
ANIMATEDIFF = NoiseSchedule("sqrt_linear (AnimateDiff)", "sqrt_linear", "linear")
ANIMATEDIFF_SDXL = NoiseSchedule("linear (AnimateDiff-SDXL)", "linear", "scaled_linear", linear_end=0.020)
SCHEDULES = {schedule.label: schedule for schedule in (ANIMATEDIFF, ANIMATEDIFF_SDXL, SD_DEFAULT)}


def animatediff_schedule(family_name: str) -> NoiseSchedule:
    """The schedule AnimateDiff's motion modules of a family were trained with (AnimateDiff-Evolved's autoselect)."""
    return ANIMATEDIFF_SDXL if family_name == "sdxl" else ANIMATEDIFF


def schedule_named(label: str, where: str) -> NoiseSchedule:
    if label not in SCHEDULES:
        raise ValueError(f"{where}: unknown noise schedule {label!r}; known: {', '.join(SCHEDULES)}")
    return SCHEDULES[label]


def recorded_schedule(metadata: dict[str, str], name: str) -> NoiseSchedule:
    """The schedule a file's weights were trained with: its `noise_schedule` metadata; before the trainer recorded
    it, the SD default it trained with; the official release (no metadata), AnimateDiff's."""
    if "noise_schedule" in metadata:
        return schedule_named(metadata["noise_schedule"], name)
    return SD_DEFAULT if "trainer" in metadata else ANIMATEDIFF
