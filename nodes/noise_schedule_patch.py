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


def set_lcm_sampling(patched) -> None:
    """What ComfyUI's ModelSamplingDiscrete node sets for sampling "lcm" (AnimateLCM's, as AnimateDiff-Evolved's
    autoselect gives it)."""
    from comfy_extras.nodes_model_advanced import ModelSamplingDiscrete  # core's node, imported where used
    lcm = ModelSamplingDiscrete().patch(patched, "lcm", False)[0]
    patched.add_object_patch("model_sampling", lcm.get_model_object("model_sampling"))


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
    """When sampling starts, one warning per schedule that files on the MODEL were trained with and the MODEL does
    not sample with; `trained` holds (schedule, node, what) of every such file."""

    def __init__(self, trained: tuple[tuple[NoiseSchedule, str, str], ...]):
        self.trained = trained

    def outer_sample(self, executor, *args, **kwargs):
        running = schedule_of(executor.class_obj.model_patcher.get_model_object("model_sampling"))
        for schedule in dict.fromkeys(schedule for schedule, _, _ in self.trained if schedule != running):
            files = [(node, what) for trained, node, what in self.trained if trained == schedule]
            plural = len(files) > 1 or files[0][1].startswith("these")
            logging.warning("%s %s trained with the %s noise schedule, but the MODEL samples with %s. Set "
                            "beta_schedule to '%s' in Apply Motion Module (or AnimateDiff-Evolved's loader), or "
                            "expect every step at another noise level.",
                            " and ".join(f"{node}: {what}" for node, what in files), "were" if plural else "was",
                            schedule.label, running.label if running else "another schedule", schedule.label)
        return executor(*args, **kwargs)


def warn_on_other_schedule(patched, trained: NoiseSchedule, node: str, what: str) -> None:
    """One check per MODEL, however many of our files it carries."""
    earlier = patched.get_wrappers(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, SCHEDULE_CHECK_KEY)
    checks = tuple(entry for wrapper in earlier for entry in wrapper.__self__.trained)
    patched.remove_wrappers_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, SCHEDULE_CHECK_KEY)
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, SCHEDULE_CHECK_KEY,
                                 ScheduleCheck(checks + ((trained, node, what),)).outer_sample)
