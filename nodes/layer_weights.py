"""The layers a weights file brings into the UNet (I2V-Adapter branches, motion modules, look-back layers): built
once per loaded file and shared by every Apply node and clone that uses it, as one additional model ComfyUI loads
and offloads with the UNet.

Their dtype is decided when sampling starts, from the patcher being sampled (its compute dtype, with whatever
ModelComputeDtype or other dtype patch it carries), never from the shared base model when a node runs, where
another patcher's object patches may still be applied. The weights are then stored in that dtype, converted from
the file's own tensors (never from an earlier conversion); ComfyUI's cast ops run them in any other dtype that
reaches them.
"""
import weakref

import torch

import comfy.model_patcher
import comfy.ops
from comfy.patcher_extension import WrappersMP

from .patch_support import SharedPatch

_BUILT = weakref.WeakValueDictionary()  # id(file) -> its FileLayers, alive while a MODEL uses them


def compute_dtype(patcher) -> torch.dtype:
    """The dtype `patcher`'s UNet computes in (BaseModel._apply_model's rule, with its own object patches)."""
    return patcher.get_model_object("manual_cast_dtype") or patcher.model.get_dtype()


class FileLayers(SharedPatch):
    """`module` holds the file's tensors (no copy while the dtypes agree); `patcher` is its additional model."""

    def __init__(self, file, module: torch.nn.Module, load_device, offload_device):
        self.file, self.module = file, module  # the file keeps the id in _BUILT valid
        self.patcher = comfy.model_patcher.ModelPatcher(module, load_device, offload_device)

    def store_in(self, dtype: torch.dtype) -> None:
        state = self.file.state_dict
        for name, tensor in [*self.module.named_parameters(), *self.module.named_buffers()]:
            if tensor.is_floating_point() and tensor.dtype != dtype:
                tensor.data = state[name].to(device=tensor.device, dtype=dtype)

    def outer_sample(self, executor, *args, **kwargs):
        self.store_in(compute_dtype(executor.class_obj.model_patcher))
        return executor(*args, **kwargs)


def file_layers(file, model) -> FileLayers:
    """The layers of `file` (a kernels weights file with build()), for `model`'s devices, built on first use."""
    layers = _BUILT.get(id(file))
    if layers is None or (layers.patcher.load_device, layers.patcher.offload_device) != (
            model.load_device, model.offload_device):
        module = file.build(operations=comfy.ops.manual_cast, dtype=None)
        layers = FileLayers(file, module, model.load_device, model.offload_device)
        _BUILT[id(file)] = layers
    return layers


def add_file_layers(patched, key: str, layers: FileLayers) -> None:
    """Give `patched` (a clone being built) the layers as its additional model `key`, stored in its dtype when it
    samples."""
    patched.set_additional_models(key, [layers.patcher])
    patched.add_wrapper_with_key(WrappersMP.OUTER_SAMPLE, key, layers.outer_sample)
