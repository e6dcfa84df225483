"""Random draws determined by their position in the run alone (seed, step, clip, process), so that a resumed run
draws exactly what an uninterrupted one would, whatever the data-loading workers did."""
import torch


def generator(*parts: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator on `device` (draws made where they are used: no copy from the host)."""
    value = 0
    for part in parts:
        value = (value * 1_000_003 + part + 1) % (2 ** 63)
    return torch.Generator(device).manual_seed(value)
