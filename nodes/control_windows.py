"""ControlNets under ComfyUI's context windows, on the pack's video models.

ComfyUI 0.3.64 hands a ControlNet the whole video's hint in every context window, and the ControlNet keeps the
hints of the video's first frames for every window (controlnet.broadcast_image_to cuts the batch to the window's
length from the front). While a window is computed, each ControlNet of its conds, and those chained before it, is
given that window's frames of its hint instead, and set back after. For the reference put in front of a window
that lacks frame 0 (reference_frame), the ControlNets' residuals get a zero row: the clean picture takes no hint.
"""
import torch

from comfy.patcher_extension import WrappersMP

from .patch_support import SharedPatch

KEY = "i2v_window_control_hints"


def _controls(conds: list) -> list:
    """Every ControlNet of the conds (the ones chained before each one included), once."""
    found = {}
    for cond in conds:
        for item in cond or []:
            control = item.get("control")
            while control is not None:
                found[id(control)] = control
                control = control.previous_controlnet
    return list(found.values())


class WindowHints(SharedPatch):
    """CALC_COND_BATCH wrapper: within a context window, each ControlNet sees the window's frames of its hint."""

    def calc_cond_batch(self, executor, model, conds, x_in, timestep, model_options):
        window = getattr(model_options.get("transformer_options", {}).get("context_window"), "index_list", None)
        hints = [(control, control.cond_hint_original) for control in (_controls(conds) if window else [])]
        per_frame = [(control, hint) for control, hint in hints if hint is not None and hint.shape[0] > max(window)]
        try:
            for control, hint in per_frame:
                control.cond_hint_original, control.cond_hint = hint[window], None
            return executor(model, conds, x_in, timestep, model_options)
        finally:
            for control, hint in per_frame:
                control.cond_hint_original, control.cond_hint = hint, None


def window_control_hints(patched) -> None:
    """Give `patched` (a clone being built) per-window ControlNet hints; once per MODEL."""
    if not patched.get_wrappers(WrappersMP.CALC_COND_BATCH, KEY):
        patched.add_wrapper_with_key(WrappersMP.CALC_COND_BATCH, KEY, WindowHints().calc_cond_batch)


def control_with_zero_rows_in_front(control: dict | None, chunks: int) -> dict | None:
    """ControlNet residuals ({"input": [...], "middle": [...], "output": [...]}) with a zero row in front of each
    chunk, for the reference put in front of a window."""
    if control is None:
        return None

    def padded(residual):
        if residual is None:
            return None
        video = residual.reshape(chunks, -1, *residual.shape[1:])
        return torch.cat([torch.zeros_like(video[:, :1]), video], dim=1).reshape(-1, *residual.shape[1:])
    return {part: [padded(residual) for residual in residuals] if isinstance(residuals, list) else residuals
            for part, residuals in control.items()}
