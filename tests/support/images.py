"""Real pictures from scikit-image's bundled data, as ComfyUI IMAGE tensors ([batch, H, W, RGB] in 0..1)."""
import numpy as np
import torch
from skimage import data


def astronaut() -> torch.Tensor:
    return torch.from_numpy(data.astronaut().astype(np.float32) / 255.0)[None]
