"""Random draws determined by their position in the run alone (seed, step, clip, process), so that a resumed run
draws exactly what an uninterrupted one would, whatever the data-loading workers did."""
import torch


def generator(*parts: int) -> torch.Generator:
    value = 0
    for part in parts:
        value = (value * 1_000_003 + part + 1) % (2 ** 63)
    return torch.Generator().manual_seed(value)
