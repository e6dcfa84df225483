"""What our MODEL patches share: how videos sit in the batches ComfyUI hands to the UNet, the host's attention,
and patch objects that survive ModelPatcher.clone() without copying weights."""
import re

import torch

import comfy.ldm.modules.attention as comfy_attention
import comfy.utils


class SharedPatch:
    """Our patch objects are immutable and share their weights. ModelPatcher.clone() deep-copies model_options,
    so a copy returns the same object instead of duplicating the weights."""

    def __deepcopy__(self, memo):
        return self


REFERENCE_IN_FRONT = "i2v_reference_in_front"  # set while a window is sampled with the reference put first


def context_window(transformer_options: dict) -> list[int] | None:
    """The frame indices of the context window being sampled (ComfyUI core or AnimateDiff-Evolved), if any."""
    window = transformer_options.get("context_window")
    return getattr(window, "index_list", None) or transformer_options.get("ad_params", {}).get("sub_idxs")


def lacks_reference(transformer_options: dict) -> bool:
    """A context window is being sampled that does not start with frame 0, and no reference was put in front."""
    window = context_window(transformer_options)
    return window is not None and window[0] != 0 and not transformer_options.get(REFERENCE_IN_FRONT)


def frame_0_rows(transformer_options: dict) -> list[int]:
    """Where frame 0 (the reference image) sits in each chunk of the batch: first without context windows or with
    the reference put in front, and wherever the window holds frame 0 (a looped window may hold it anywhere)."""
    window = context_window(transformer_options)
    if window is None:
        return [0]
    front = int(bool(transformer_options.get(REFERENCE_IN_FRONT)))
    return [0] * front + [row + front for row, frame in enumerate(window) if frame == 0]


def frames_per_video(batch: torch.Tensor, transformer_options: dict, needs_reference: str | None = None) -> int:
    """ComfyUI batches the cond/uncond videos one after another; each chunk is one video or one window of it.
    `needs_reference` names a node that needs frame 0 (the reference image) first in every chunk."""
    if needs_reference and lacks_reference(transformer_options):
        window = context_window(transformer_options)
        raise RuntimeError(
            f"{needs_reference}: a context window (frames {window[0]}..{window[-1]}) does not start with frame 0, "
            "the reference image, and nothing put the reference in front of it. Use a context length of at least "
            "the frame count, or sample without context windows.")
    return batch.shape[0] // len(transformer_options.get("cond_or_uncond", [0]))


def check_video_latent(video: torch.Tensor, reference: torch.Tensor, node: str, fix: str) -> None:
    """A video latent of at least 2 frames whose frames are the reference latent's size; `fix` says how to make
    the two match."""
    if video.ndim != 4 or video.shape[0] < 2:
        frames = video.shape[0] if video.ndim == 4 else f"a {video.ndim}-D latent"
        raise ValueError(f"{node} needs a video latent of at least 2 frames (frame 0 is the reference image); the "
                         f"sampler got {frames}. Make the latent with 'I2V Video Latent' and frames ≥ 2.")
    if video.shape[1:] != reference.shape[1:]:
        size = lambda t: f"{t.shape[-1] * 8}×{t.shape[-2] * 8} px ({t.shape[1]} channels)"
        raise ValueError(f"{node}: the reference latent is {size(reference)} but the video latent is {size(video)}. "
                         f"{fix}")


def host_attention(transformer_options: dict, attn_precision=None):
    """ComfyUI's attention backend (xformers, SDPA, sage, ...) in the signature the kernels take."""
    def attend(q, k, v, heads):
        return comfy_attention.optimized_attention(q, k, v, heads, attn_precision=attn_precision,
                                                   transformer_options=transformer_options)
    return attend


_COMFY_ATTENTION = re.compile(r"(input|middle|output)_blocks?\.(\d+)\.(?:\d+\.)?transformer_blocks\.(\d+)\.(attn[12])\.")


def attention_layers(unet_config: dict, attention: str) -> dict[str, tuple[tuple[str, int, int], str]]:
    """diffusers path of every `attention` ("attn1" or "attn2") -> (the key ComfyUI's replace patches use for it:
    block, block id, transformer index; the path of the module in ComfyUI's UNet)."""
    layers = {}
    for diffusers_key, comfy_key in comfy.utils.unet_to_diffusers(unet_config).items():
        match = _COMFY_ATTENTION.match(comfy_key)
        if match and match[4] == attention and diffusers_key.endswith(f".{attention}.to_q.weight"):
            block, number, index = match.groups()[:3]
            # The UNet reports its middle block as ("middle", 0) whatever its position in middle_block.
            key = (block, 0 if block == "middle" else int(number), int(index))
            layers[diffusers_key.removesuffix(".to_q.weight")] = (key, comfy_key.removesuffix(".to_q.weight"))
    return layers


def attention_patch_keys(unet_config: dict, attention: str) -> dict[str, tuple[str, int, int]]:
    """diffusers path of every `attention` -> the key ComfyUI's replace patches use for it."""
    return {path: key for path, (key, _) in attention_layers(unet_config, attention).items()}


def chunk_frames(transformer_options: dict, rows: int) -> list[int]:
    """The video frame of each row of one chunk of the UNet's batch: all frames, or a context window's (the
    reference in front counts as frame 0)."""
    window = context_window(transformer_options)
    if window is None:
        return list(range(rows))
    frames = [0] * bool(transformer_options.get(REFERENCE_IN_FRONT)) + list(window)
    if len(frames) != rows:
        raise RuntimeError(f"a chunk of {rows} frames cannot be the context window {window[0]}..{window[-1]}")
    return frames
