"""AnimateDiff-Evolved's context windows with the reference image put in front (reference_frame.PinnedReference).

ADE's motion modules do not take a window's frame count from the batch: ADE's sampler tells them before each
window (MotionModelGroup.set_sub_idxs and set_video_length, in evaluate_context_windows of animatediff/sampling.py)
and they split the batch into videos of that many frames. For the one UNet call that carries the reference in
front of a window, they are told the same way that the window is one frame longer and starts with frame 0, and
are set back as ADE left them after the call. Nothing of ADE's is replaced; ADE is never imported: only the
objects it puts in transformer_options and on the ModelPatcher are used.
"""
from contextlib import contextmanager

# ADE's keys on the ModelPatcher (ModelPatcherHelper.PARAMS and .ADE): its sampling settings and motion models.
ADE_PARAMS, ADE_MOTION_MODELS = "ADE_params", "ADE"
_WHOLE_VIDEO_SCHEDULES = ("view_as_context",)  # one window of every frame: it starts with frame 0


@contextmanager
def ade_window_with_reference_in_front(transformer_options: dict, device):
    """For the call with the reference in front of an ADE context window: ADE's motion models are told its length
    plus one and its frames as [0, *window] (the effect and scale masks ADE indexes by frame line up too)."""
    state = transformer_options.get("ADGS")
    window = transformer_options.get("ad_params", {}).get("sub_idxs")
    motion_models = getattr(state, "motion_models_devices", {}).get(device)
    if motion_models is None or not window:
        yield
        return
    full_length = state.params.full_length
    motion_models.set_sub_idxs([0, *window])
    motion_models.set_video_length(len(window) + 1, full_length)
    try:
        yield
    finally:
        motion_models.set_sub_idxs(window)
        motion_models.set_video_length(len(window), full_length)


def ade_context_length(model_patcher, frames: int) -> int | None:
    """The longest context window ADE's context options give a video of `frames` frames, if they give windows."""
    params = model_patcher.get_attachment(ADE_PARAMS)
    lengths = [c.context_length for c in getattr(getattr(params, "context_options", None), "contexts", [])
               if c.context_length and frames > c.context_length and c.context_schedule not in _WHOLE_VIDEO_SCHEDULES]
    return max(lengths, default=None)


def check_ade_windows(model_patcher, frames: int, node: str) -> None:
    """Before the first step: a window with the reference in front must fit ADE's motion models' position
    encodings (ADE checks the context length alone), and their per-frame inputs, if any, must cover it."""
    params = model_patcher.get_attachment(ADE_PARAMS)
    motion_models = model_patcher.get_additional_models_with_key(ADE_MOTION_MODELS)
    if params is None or not motion_models:
        return
    for context in params.context_options.contexts:
        length = context.context_length
        # Without windows, or with the whole video as one window, no reference is put in front.
        if not length or frames <= length or context.context_schedule in _WHOLE_VIDEO_SCHEDULES:
            continue
        for motion_model in motion_models:
            name = motion_model.model.mm_info.mm_name
            # AnimateLCM-I2V, CameraCtrl and MotionCtrl inputs are cut to each window before the UNet call: one
            # frame short of the window with the reference in front.
            if motion_model.model.needs_apply_model_wrapper():
                raise ValueError(
                    f"{node}: the motion model {name} takes per-frame inputs (AnimateLCM-I2V, CameraCtrl or MotionCtrl) "
                    f"that AnimateDiff-Evolved cuts to each context window; they cannot cover the reference image put "
                    f"in front of a window. Set the context options' context_length to {frames} (the frame count) or "
                    f"more, or use a plain AnimateDiff motion model.")
            # With ADE's views, at most view_length frames reach the motion modules at once (ADE checks that).
            limit = motion_model.model.encoding_max_len
            if not context.view_options and limit is not None and length + 1 > limit:
                raise ValueError(
                    f"{node}: AnimateDiff-Evolved's context windows of {length} frames get the reference image put in "
                    f"front of every window that does not start with frame 0 ({length + 1} frames), but the motion "
                    f"model {name} handles at most {limit}. Set the context options' context_length to {limit - 1} or "
                    f"less.")
