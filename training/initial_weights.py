"""`--init-from`: start trained parts from existing files (the official i2v_module.pth, our I2V-Adapter, look-back
or DQFormer files) instead of their identity start. Only weights are taken: the run starts at step 0 with a fresh
optimizer, so a run at another resolution (the paper's 256² then 512²) or on other videos can continue a file.

Each file's kind, family and shape must be what the run trains; the shape settings are not taken from the file but
must match the run's flags (the message names the flags that would), so a run's flags always describe its output.
"""
from dataclasses import dataclass
from pathlib import Path

import torch

from ..kernels.adapter_file import FORMAT_NAME as ADAPTER_FORMAT, adapter_from_tensors
from ..kernels.dqformer_file import FORMAT_NAME as DQFORMER_FORMAT, dqformer_from_tensors
from ..kernels.look_back_file import FORMAT_NAME as LOOK_BACK_FORMAT, look_back_from_tensors
from ..kernels.tensor_files import FileFormatError, load_tensors
from ..kernels.unet_layout import UNetFamily

KINDS = {ADAPTER_FORMAT: "i2v_adapter", LOOK_BACK_FORMAT: "look_back", DQFORMER_FORMAT: "dqformer"}
LABELS = {"i2v_adapter": "an I2V-Adapter", "look_back": "look-back layers", "dqformer": "a DQFormer"}
LOOK_BACK_FLAGS = {"depth": "--look-back-depth", "kernel": "--look-back-kernel",
                   "adapter_kernel": "--look-back-adapter-kernel", "dense": "--look-back-dense"}
DQFORMER_FLAGS = {"width": "--dqformer-width", "layers": "--dqformer-layers", "heads": "--dqformer-heads",
                  "queries": "--dqformer-queries"}


@dataclass
class InitialWeights:
    part: str                        # what it starts: one of the trainer's TRAINABLE
    path: Path
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, str]

    def describe(self) -> str:
        """What the file says of its own training, for the log."""
        known = [f"{self.metadata[k]} {k}" for k in ("steps", "resolution") if k in self.metadata]
        return f"{self.path.name}" + (f" ({', '.join(known)})" if known else "")


def _read(path: Path):
    """(part, the kernels' validated file object) of a file of any kind --init-from takes."""
    if not path.is_file():
        raise FileNotFoundError(f"--init-from {path} does not exist")
    tensors, metadata = load_tensors(path)  # pickles with weights_only=True
    kind = KINDS.get(metadata.get("format", ADAPTER_FORMAT))  # the official i2v_module.pth has no metadata
    if kind is None:
        raise FileFormatError(f"--init-from {path.name} is a {metadata['format']!r} file; it takes an I2V-Adapter "
                              "(ours or the official i2v_module.pth), look-back layers or a DQFormer")
    read = {"i2v_adapter": adapter_from_tensors, "look_back": look_back_from_tensors,
            "dqformer": dqformer_from_tensors}[kind]
    try:
        return kind, read(tensors, metadata, path.name)
    except FileFormatError as e:  # the kernels' messages start with the file's name
        raise FileFormatError(f"--init-from {e}") from None


def _differences(found: dict, wanted: dict, flags: dict[str, str]) -> tuple[str, str, str] | None:
    """(the file's settings, the run's, the flags that would match the file), or None when they agree."""
    if all(found[k] == wanted[k] for k in flags):
        return None
    show = lambda values: ", ".join(f"{k} {values[k]}" for k in flags)
    fix = []
    for key, flag in flags.items():
        if found[key] != wanted[key]:
            value = found[key]
            fix.append(flag if value is True else f"drop {flag}" if value is False else f"{flag} {value}")
    return show(found), show(wanted), ", ".join(fix)


def _check(kind: str, file, path: Path, config, family: UNetFamily, features) -> None:
    name = path.name
    if kind not in config.train:
        raise ValueError(f"--init-from {name} is {LABELS[kind]}, but this run trains only "
                         f"{' and '.join(config.train)}: add {kind} to --train, or leave the file out")
    if file.family is not family:
        raise ValueError(f"--init-from {name} is {LABELS[kind]} for {file.family.label}, but the base is "
                         f"{family.label}: use a file made for {family.label}")
    if kind == "look_back":
        differ = _differences(file.settings, config.look_back, LOOK_BACK_FLAGS)
    elif kind == "dqformer":
        differ = _differences(vars(file.shape), config.dqformer, DQFORMER_FLAGS)
        if differ is None and features is not None and file.shape.feature_dim != features.hidden_size:
            raise ValueError(f"--init-from {name} is a DQFormer for {file.vision_language_model} (hidden width "
                             f"{file.shape.feature_dim}), but this run's vision-language model {features.name} is "
                             f"{features.hidden_size} wide: use a DQFormer trained on that model (--vlm)")
    else:
        differ = None
    if differ is not None:
        found, wanted, fix = differ
        raise ValueError(f"--init-from {name} is {LABELS[kind]} with {found}, but this run's are {wanted}; to "
                         f"continue it: {fix}")


def initial_weights(config, family: UNetFamily, features=None) -> dict[str, InitialWeights]:
    """The validated files of config.init_from by the part each starts. `features`: the DQFormer's vision-language
    model, whose width is checked when given (the CLI checks everything else before it loads)."""
    found: dict[str, InitialWeights] = {}
    for path in map(Path, config.init_from):
        kind, file = _read(path)
        if kind in found:
            raise ValueError(f"--init-from {found[kind].path.name} and {path.name} are both {LABELS[kind]}: give one "
                             "file per trained part")
        _check(kind, file, path, config, family, features)
        found[kind] = InitialWeights(kind, path, file.state_dict, file.metadata)
    return found


@torch.no_grad()
def load_initial_weights(model, found: dict[str, InitialWeights], log) -> None:
    """Copy each file's weights into its part of the VideoUNet (cast to the trained parts' dtype)."""
    for part, weights in found.items():
        getattr(model, part).load_state_dict(weights.state_dict)
        log(f"{part} starts from {weights.describe()}")
