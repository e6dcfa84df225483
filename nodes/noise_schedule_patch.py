"""The noise schedule a MODEL samples with, set the way ComfyUI's own ModelSamplingDiscrete node sets it (an object
patch of `model_sampling`, so every sampler and scheduler sees it), and a warning when weights trained on another
schedule are sampled on this one."""
import logging
from types import SimpleNamespace

import torch

import comfy.model_base
import comfy.patcher_extension

from ..kernels.noise_schedule import SCHEDULES, NoiseSchedule
from .patch_support import SharedPatch

SCHEDULE_CHECK_KEY = "i2v_noise_schedule_check"


def model_sampling_for(model, schedule: NoiseSchedule):
    """ComfyUI's discrete model sampling of the model's prediction type on `schedule`'s betas."""
    return comfy.model_base.model_sampling(SimpleNamespace(sampling_settings=schedule.sampling_settings()),
                                           model.model.model_type)


def set_noise_schedule(patched, schedule: NoiseSchedule) -> None:
    patched.add_object_patch("model_sampling", model_sampling_for(patched, schedule))


def _sigmas(schedule: NoiseSchedule) -> torch.Tensor:
    alphas = schedule.alphas_cumprod()
    return ((1 - alphas) / alphas).sqrt().float()


def schedule_of(model_sampling) -> NoiseSchedule | None:
    """The known schedule `model_sampling` runs, if any."""
    sigmas = getattr(model_sampling, "sigmas", None)
    for schedule in SCHEDULES.values():
        if sigmas is not None and sigmas.shape == (schedule.timesteps,) and torch.allclose(
                sigmas.cpu(), _sigmas(schedule), rtol=1e-4):
            return schedule
    return None


class ScheduleCheck(SharedPatch):
    """Warns, when sampling starts, that the MODEL's schedule is not the one `what` was trained with."""

    def __init__(self, trained: NoiseSchedule, node: str, what: str):
        self.trained, self.node, self.what = trained, node, what

    def outer_sample(self, executor, *args, **kwargs):
        sampling = executor.class_obj.model_patcher.get_model_object("model_sampling")
        running = schedule_of(sampling)
        if running != self.trained:
            logging.warning("%s: %s was trained with the %s noise schedule, but the MODEL samples with %s. Set "
                            "beta_schedule to '%s' in Apply Motion Module (or AnimateDiff-Evolved's loader), or "
                            "expect every step at another noise level.", self.node, self.what, self.trained.label,
                            running.label if running else "another schedule", self.trained.label)
        return executor(*args, **kwargs)


def warn_on_other_schedule(patched, trained: NoiseSchedule, node: str, what: str) -> None:
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, SCHEDULE_CHECK_KEY,
                                 ScheduleCheck(trained, node, what).outer_sample)
