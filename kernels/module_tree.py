"""Modules placed at dotted diffusers paths, so that `state_dict()` keys are exactly a file format's keys."""
from torch import nn


def attach(root: nn.Module, path: str, module: nn.Module) -> None:
    """Put `module` at `path` (e.g. `down_blocks.0.motion_modules.1`) below `root`, creating empty parents."""
    *parents, leaf = path.split(".")
    for name in parents:
        if name not in root._modules:
            root.add_module(name, nn.Module())
        root = root._modules[name]
    root.add_module(leaf, module)
