"""Which UNet family (kernels.unet_layout) a ComfyUI MODEL belongs to."""
import comfy.supported_models

from ..kernels.unet_layout import SD15, SDXL, UNetFamily

_FAMILY_OF_CONFIG = {comfy.supported_models.SD15: SD15, comfy.supported_models.SDXL: SDXL}


def family_of_model(model, node: str) -> UNetFamily:
    """The family of `model`, or a clear error naming the node when it is neither SD1.5 nor SDXL."""
    config = type(model.model.model_config)
    if config not in _FAMILY_OF_CONFIG:
        raise ValueError(f"{node} works on SD1.5 and SDXL models (and their fine-tunes); "
                         f"this MODEL is a {config.__name__} model.")
    return _FAMILY_OF_CONFIG[config]


def refuse_demo_family(family: UNetFamily, filename: str) -> None:
    """Files the trainer's built-in demonstration writes are for its tiny model, which ComfyUI has no checkpoint of."""
    if family.demo_only:
        raise ValueError(f"{filename} was written by the trainer's built-in demonstration for its {family.label} "
                         "model, which exists only inside the trainer. Train on your own SD1.5 or SDXL checkpoint: "
                         "python training/train_adapter.py --base <checkpoint> --data <videos> --out <file>")
