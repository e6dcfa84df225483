"""Load I2V-Adapter and Apply I2V-Adapter."""
from comfy_api.latest import io

from ..kernels.adapter_file import read_adapter
from .i2v_adapter_patch import apply_i2v_adapter
from .io_types import CATEGORY, I2VAdapterWeights
from .model_folders import I2V_ADAPTER
from .weights_loader import WeightsFileLoader


class LoadI2VAdapter(WeightsFileLoader):
    FOLDER, INPUT, read = I2V_ADAPTER, "adapter_name", staticmethod(read_adapter)

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="I2V_LoadAdapter",
            display_name="Load I2V-Adapter",
            category=CATEGORY,
            description="Loads I2V-Adapter weights: this pack's .safetensors, or the official release's "
                        "i2v_module.pth (read safely, tensors only).",
            inputs=[cls.file_input("A file in models/i2v_adapter. The adapter must match the checkpoint's family "
                                   "(SD1.5 or SDXL).")],
            outputs=[I2VAdapterWeights.Output(tooltip="The adapter weights, for Apply I2V-Adapter.")],
        )


class ApplyI2VAdapter(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="I2V_ApplyAdapter",
            display_name="Apply I2V-Adapter",
            category=CATEGORY,
            description="Lets every frame attend to the first frame (the reference image), which stays clean through "
                        "sampling. Works with the stock KSampler; frame 0 of the sampled video is the reference.",
            inputs=[
                io.Model.Input("model", tooltip="An SD1.5 or SDXL model, with or without motion modules."),
                I2VAdapterWeights.Input("i2v_adapter", tooltip="From Load I2V-Adapter; its family must match the model."),
                io.Latent.Input("reference", tooltip="The reference image's latent; its frame 0 is used. Connect I2V "
                                                     "Video Latent, or a VAE Encode of the image at the video's size."),
                io.Float.Input("strength", default=1.0, min=0.0, max=2.0, step=0.05,
                               tooltip="Scales the cross-frame branch: 0 leaves the model as it was (frame 0 still "
                                       "pinned), 1 is as trained, above 1 follows the reference more closely."),
            ],
            outputs=[io.Model.Output(tooltip="The patched model, for KSampler or SamplerCustom.")],
        )

    @classmethod
    def execute(cls, model, i2v_adapter, reference, strength):
        return io.NodeOutput(apply_i2v_adapter(model, i2v_adapter, reference["samples"], strength))
