"""The papers' video metrics: CLIPTemp (I2V-Adapter) and ISIM first / average / decay (the look-back paper) from an
image encoder, FlowScore and WarpingError (I2V-Adapter, after EvalCrafter's code) from an optical-flow model.
The models come in as callables, and the video goes to them a chunk of frames (encoder) or one pair (flow) at a
time: the whole video stays where it is, only that part is on the models' device. docs/metrics.md has the
definitions and the choices the papers leave open."""
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

ImageEncoder = Callable[[torch.Tensor], torch.Tensor]  # IMAGE [B, H, W, 3] in 0..1 -> embeddings [B, D]
# Two IMAGE batches [B, H, W, 3] in 0..1 -> flow [B, 2, H, W] in pixels: (x, y) from each pixel of the first image
# to where its content is in the second.
FlowModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
WARPING_ERROR_SCALE = 1000.0  # reported in units of 1e-3, the scale of the I2V-Adapter paper's table (~10)


def nothing() -> None:
    """The default per-step callback."""


@dataclass(frozen=True)
class InputSimilarity:
    clip_temp: float  # I2V-Adapter: mean cosine similarity of the frames' embeddings to the input image's
    isim_first: float  # look-back paper: frame 0's similarity to the input image
    isim_average: float  # the mean over all frames (CLIPTemp's definition, with the same encoder)
    isim_decay: float  # similarity lost per frame: minus the least-squares slope over the frame index


@dataclass(frozen=True)
class Motion:
    flow_score: float  # mean optical-flow magnitude between consecutive frames, in pixels
    warping_error: float  # mean squared RGB error of frame i+1 warped back onto frame i, in 1e-3, occlusions left out


def similarities_to_image(frames: torch.Tensor, image: torch.Tensor, encode: ImageEncoder, chunk: int = 16,
                          on_step: Callable[[], None] = nothing) -> torch.Tensor:
    """[F] float32: cosine similarity of each frame's embedding to the first image of `image`, frames encoded
    `chunk` at a time. `on_step` runs after the image and after each chunk."""
    reference = F.normalize(encode(image[:1, ..., :3]).float(), dim=-1)[0]
    on_step()
    similarities = []
    for start in range(0, frames.shape[0], chunk):
        embeddings = F.normalize(encode(frames[start:start + chunk, ..., :3]).float(), dim=-1)
        similarities.append(embeddings @ reference.to(embeddings.device))
        on_step()
    return torch.cat(similarities)


def decay_per_frame(similarities: torch.Tensor) -> torch.Tensor:
    """Minus the slope of the least-squares line through (frame index, similarity): 0 for a video that keeps its
    similarity, positive when it drifts away from the image."""
    index = torch.arange(similarities.shape[0], dtype=torch.float64, device=similarities.device)
    centred = index - index.mean()
    values = similarities.double()
    return -(centred * (values - values.mean())).sum() / centred.square().sum().clamp_min(1.0)


def input_similarity(similarities: torch.Tensor) -> InputSimilarity:
    average = similarities.double().mean().item()
    return InputSimilarity(clip_temp=average, isim_first=similarities[0].item(), isim_average=average,
                           isim_decay=decay_per_frame(similarities).item())


def warp_back(image: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`image` [B, C, H, W] (the second frame) sampled bilinearly at x + flow(x): brought back onto the first frame's
    pixels. Also [B, H, W]: whether x + flow(x) lies inside the frame."""
    _, _, height, width = flow.shape
    rows, columns = torch.meshgrid(torch.arange(height, device=flow.device, dtype=flow.dtype),
                                   torch.arange(width, device=flow.device, dtype=flow.dtype), indexing="ij")
    x, y = columns + flow[:, 0], rows + flow[:, 1]
    grid = torch.stack([2 * x / max(width - 1, 1) - 1, 2 * y / max(height - 1, 1) - 1], dim=-1)
    warped = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)
    inside = (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)
    return warped, inside


def consistent_pixels(forward: torch.Tensor, backward: torch.Tensor) -> torch.Tensor:
    """[B, H, W]: the first frame's pixels seen in the second frame, by the forward-backward check of Sundaram et
    al. (the one in Lai et al.'s warping error, which EvalCrafter uses): going there and back must land within half
    a pixel (plus 1% of the motion). Pixels that leave the frame fail it."""
    backward_there, inside = warp_back(backward, forward)
    mismatch = (forward + backward_there).square().sum(1)
    allowed = 0.01 * (forward.square().sum(1) + backward_there.square().sum(1)) + 0.5
    return inside & (mismatch <= allowed)


def measure_motion(frames: torch.Tensor, flow: FlowModel, on_step: Callable[[], None] = nothing) -> Motion:
    """FlowScore and WarpingError of a video IMAGE [F, H, W, 3+] in 0..1, frames handed to `flow` one pair at a time
    (forward, then backward for the occlusion check). `on_step` runs after each pair."""
    if frames.shape[0] < 2:
        raise ValueError(f"FlowScore and WarpingError need 2 or more frames; the video has {frames.shape[0]}")
    flow_total = error_total = 0.0
    for i in range(frames.shape[0] - 1):
        first, second = frames[i:i + 1, ..., :3], frames[i + 1:i + 2, ..., :3]
        forward, backward = flow(first, second).float(), flow(second, first).float()
        first, second = (f.to(forward.device, torch.float32).movedim(-1, 1) for f in (first, second))
        warped, _ = warp_back(second, forward)
        seen = consistent_pixels(forward, backward)
        seen = torch.where(seen.any(), seen, torch.ones_like(seen))  # all occluded: EvalCrafter counts every pixel
        squared_error = (warped - first).square().sum(1)
        error_total = error_total + (squared_error * seen).sum() / seen.sum()
        flow_total = flow_total + forward.norm(dim=1).mean()
        on_step()
    pairs = frames.shape[0] - 1
    return Motion(flow_score=float(flow_total / pairs), warping_error=float(error_total / pairs) * WARPING_ERROR_SCALE)
