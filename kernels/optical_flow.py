"""torchvision's RAFT as the video metrics' optical-flow model: its weights files (raft_large or raft_small, told
apart by their tensors' names and shapes) and the flow of two IMAGE batches as kernels.video_metrics takes it."""
import os

import torch
import torch.nn.functional as F
from torchvision.models.optical_flow import RAFT, raft_large, raft_small

from .tensor_files import FileFormatError, load_tensors
from .video_metrics import FlowModel

ARCHITECTURES = {"raft_large": raft_large, "raft_small": raft_small}
ITERATIONS = 20  # EvalCrafter's RAFT refinement steps for FlowScore and WarpingError (torchvision's default: 12)
MULTIPLE = 8  # RAFT's features are 1/8 of the image
SMALLEST = 128  # and its correlation pyramid needs 16 of them on each side


def read_raft(path: str | os.PathLike) -> RAFT:
    """The RAFT whose state dict the file holds exactly (a .pth read with weights_only=True, or safetensors), in
    float32 on the CPU, in eval mode."""
    tensors, _ = load_tensors(path)
    shapes = {key: tuple(value.shape) for key, value in tensors.items()}
    expected = {}
    for name, build in ARCHITECTURES.items():
        with torch.device("meta"):
            model = build(weights=None)
        expected[name] = {key: tuple(value.shape) for key, value in model.state_dict().items()}
        if expected[name] == shapes:
            model.load_state_dict(tensors, assign=True)
            return model.float().eval()
    closest = max(expected, key=lambda name: len(expected[name].keys() & shapes.keys()))
    raise FileFormatError(
        f"{os.path.basename(path)} is not torchvision RAFT weights (raft_large or raft_small): "
        f"{_difference(expected[closest], shapes, closest)}. Use torchvision's files, e.g. "
        "raft_large_C_T_SKHT_V2-ff5fadd5.pth; the original RAFT repository's checkpoints (raft-things.pth) have "
        "another layout.")


def _difference(expected: dict, found: dict, name: str) -> str:
    missing = sorted(expected.keys() - found.keys())
    if missing:
        return f"{len(missing)} of {name}'s {len(expected)} tensors are missing, e.g. {missing[0]!r}"
    wrong = next((key for key in expected if expected[key] != found[key]), None)
    if wrong:
        return f"{wrong!r} is {list(found[wrong])}, {name}'s is {list(expected[wrong])}"
    return f"it holds {len(found) - len(expected)} tensors {name} has not, e.g. {sorted(found.keys() - expected)[0]!r}"


def raft_flow(raft: RAFT, device: torch.device) -> FlowModel:
    """RAFT (already on `device`) as a FlowModel: images scaled to [-1, 1] and padded by repeating the last row and
    column to a multiple of 8 and at least 128 on each side; the flow is cropped back to the images' size, in
    their pixels."""
    def flow(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        height, width = first.shape[1:3]
        padding = (0, _padded(width) - width, 0, _padded(height) - height)

        def prepare(images: torch.Tensor) -> torch.Tensor:
            scaled = images[..., :3].to(device, torch.float32).movedim(-1, 1) * 2 - 1
            return F.pad(scaled, padding, mode="replicate")

        with torch.no_grad():
            return raft(prepare(first), prepare(second), num_flow_updates=ITERATIONS)[-1][..., :height, :width]
    return flow


def _padded(size: int) -> int:
    return max(SMALLEST, -(-size // MULTIPLE) * MULTIPLE)
