"""The reference image held as frame 0 through sampling: the I2V-Adapter's clean first frame, and the look-back
paper's hybrid image-noise initialisation. Keyed wrappers on the MODEL, so any sampler node works."""
import torch

import comfy.patcher_extension

from .ade_windows import ade_context_length, ade_window_with_reference_in_front, check_ade_windows
from .control_windows import control_with_zero_rows_in_front, window_control_hints
from .patch_support import REFERENCE_IN_FRONT, check_video_latent, frame_0_rows, lacks_reference

PIN_KEY = "i2v_reference_frame"
WRAPPERS = comfy.patcher_extension.WrappersMP


class PinnedReference:
    """Frame 0 enters every UNet call as the exact reference latent, at the same timestep as the other frames
    (as in training), its prediction is the reference, and the sampled latent's frame 0 is the reference."""

    def __init__(self, reference: torch.Tensor, reference_in_model_space: torch.Tensor, node: str):
        self.reference, self.model_space, self.node = reference, reference_in_model_space, node
        self._placed = {}  # (device, dtype) -> the model-space reference there: copied once, not per call

    def _model_space_like(self, batch: torch.Tensor) -> torch.Tensor:
        where = (batch.device, batch.dtype)
        if where not in self._placed:
            self._placed[where] = self.model_space.to(batch)
        return self._placed[where]

    def _pinned(self, batch: torch.Tensor, transformer_options: dict) -> torch.Tensor:
        """Every row of every chunk that holds frame 0 set to the reference."""
        rows = frame_0_rows(transformer_options)
        if not rows:
            return batch
        video = batch.reshape(len(transformer_options.get("cond_or_uncond", [0])), -1, *batch.shape[1:]).clone()
        for row in rows:
            video[:, row] = self._model_space_like(batch)[0]
        return video.reshape(batch.shape)

    def outer_sample(self, executor, noise, latent_image, sampler, sigmas, denoise_mask=None, callback=None,
                     disable_pbar=False, seed=None):
        check_video_latent(noise, self.reference, self.node,
                           "Encode the reference at the video's size (I2V Video Latent resizes it for you).")
        check_ade_windows(executor.class_obj.model_patcher, noise.shape[0], self.node)
        out = executor(noise, latent_image, sampler, sigmas, denoise_mask, callback, disable_pbar, seed)
        out[0] = self.reference.to(out)
        return out

    def apply_model(self, executor, x, t, c_concat, c_crossattn, control, transformer_options, **kwargs):
        return self._pinned(executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs),
                            transformer_options)

    def diffusion_model(self, executor, x, timesteps, context, y, control, transformer_options, **kwargs):
        # x is the UNet's own input here, after ComfyUI's sigma input scaling, so the reference goes in unscaled.
        if not lacks_reference(transformer_options):
            return executor(self._pinned(x, transformer_options), timesteps, context, y, control,
                            transformer_options, **kwargs)
        # A context window that does not start with frame 0 (long videos): the reference goes in front of it for
        # this call, with the window's first timestep and conditioning, no ControlNet residual, and its row is
        # dropped from the result.
        chunks = len(transformer_options.get("cond_or_uncond", [0]))
        x, timesteps, context, y = (None if t is None else _in_front(t, chunks) for t in (x, timesteps, context, y))
        control = control_with_zero_rows_in_front(control, chunks)
        in_front = {**transformer_options, REFERENCE_IN_FRONT: True}
        # AnimateDiff-Evolved's motion modules must be told the window is one frame longer (ade_windows).
        with ade_window_with_reference_in_front(transformer_options, x.device):
            out = executor(self._pinned(x, in_front), timesteps, context, y, control, in_front, **kwargs)
        return out.reshape(chunks, -1, *out.shape[1:])[:, 1:].reshape(-1, *out.shape[1:])


def _in_front(batch: torch.Tensor, chunks: int) -> torch.Tensor:
    """One more row in front of each chunk, a copy of the chunk's first row (the reference goes into x's)."""
    video = batch.reshape(chunks, -1, *batch.shape[1:])
    return torch.cat([video[:, :1], video], dim=1).reshape(-1, *batch.shape[1:])


def frames_per_call(guider, frames: int) -> tuple[int, int | None]:
    """(the most frames of one video a UNet call gets, the context length if windows are used): with context
    windows (ComfyUI's or AnimateDiff-Evolved's) the context length, plus the reference put in front."""
    handler = guider.model_options.get("context_handler")
    length = handler.context_length if handler is not None and frames > handler.context_length else None
    length = length or ade_context_length(guider.model_patcher, frames)
    if length is None:
        return frames, None
    return length + bool(guider.model_patcher.get_wrappers(WRAPPERS.OUTER_SAMPLE, PIN_KEY)), length


def pin_reference_frame(patched, reference: torch.Tensor, node: str) -> None:
    """Hold frame 0 of `patched` (a clone being built) at `reference`, the raw latent of the reference image.
    Several of our nodes need it; the second with the same reference changes nothing."""
    reference = reference[:1].float()
    pinned = patched.get_wrappers(WRAPPERS.OUTER_SAMPLE, PIN_KEY)
    if pinned:
        earlier = pinned[0].__self__
        if earlier.reference.shape == reference.shape and torch.equal(earlier.reference, reference):
            return
        raise ValueError(f"{node}: this MODEL already holds another reference frame (from {earlier.node}); connect "
                         "the same reference latent to both.")
    pin = PinnedReference(reference, patched.model.process_latent_in(reference), node)
    patched.add_wrapper_with_key(WRAPPERS.OUTER_SAMPLE, PIN_KEY, pin.outer_sample)
    patched.add_wrapper_with_key(WRAPPERS.APPLY_MODEL, PIN_KEY, pin.apply_model)
    patched.add_wrapper_with_key(WRAPPERS.DIFFUSION_MODEL, PIN_KEY, pin.diffusion_model)
    window_control_hints(patched)
