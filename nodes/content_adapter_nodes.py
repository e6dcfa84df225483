"""Load Content-Adapter and Apply Content-Adapter (IP-Adapter Plus, the paper's Content-Adapter)."""
import folder_paths
from comfy_api.latest import io

from ..kernels.content_adapter_file import read_content_adapter
from .content_adapter_patch import apply_content_adapter
from .io_types import CATEGORY, ContentAdapterWeights
from .model_folders import IPADAPTER, MOTION_MODULES, full_path, missing_file_message

SAME_FILE = "from the IP-Adapter file"


class LoadContentAdapter(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="I2V_LoadContentAdapter",
            display_name="Load Content-Adapter (IP-Adapter Plus)",
            category=CATEGORY,
            description="Loads the Content-Adapter: h94's IP-Adapter Plus (.safetensors, or .bin read safely, tensors "
                        "only). For the official I2V-Adapter release, take the attention weights from its bundle "
                        "animatediff_v15_v1_ipplus.pth, as its inference does.",
            inputs=[
                io.Combo.Input("ipadapter_name", options=folder_paths.get_filename_list(IPADAPTER),
                               tooltip="An IP-Adapter Plus file in models/ipadapter (the folder ComfyUI_IPAdapter_plus "
                                       "uses): ip-adapter-plus_sd15 for SD1.5, ip-adapter-plus_sdxl_vit-h for SDXL. "
                                       "Its Resampler turns the image into 16 tokens."),
                io.Combo.Input("attention_weights", options=[SAME_FILE] + folder_paths.get_filename_list(MOTION_MODULES),
                               default=SAME_FILE,
                               tooltip="Where each cross-attention's to_k_ip/to_v_ip come from: the IP-Adapter file, "
                                       "or the official bundle animatediff_v15_v1_ipplus.pth in "
                                       "models/animatediff_models (the official release's pairing)."),
            ],
            outputs=[ContentAdapterWeights.Output(tooltip="The Content-Adapter, for Apply Content-Adapter.")],
        )

    @classmethod
    def validate_inputs(cls, ipadapter_name, attention_weights):
        if attention_weights != SAME_FILE and (message := missing_file_message(MOTION_MODULES, attention_weights)):
            return message
        return missing_file_message(IPADAPTER, ipadapter_name) or True

    @classmethod
    def execute(cls, ipadapter_name, attention_weights):
        key_values = None if attention_weights == SAME_FILE else full_path(MOTION_MODULES, attention_weights)
        return io.NodeOutput(read_content_adapter(full_path(IPADAPTER, ipadapter_name), key_values))


class ApplyContentAdapter(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="I2V_ApplyContentAdapter",
            display_name="Apply Content-Adapter",
            category=CATEGORY,
            description="Conditions every frame on the reference image's content through IP-Adapter Plus's decoupled "
                        "cross-attention (the I2V-Adapter paper's Content-Adapter; the official release always runs "
                        "it, at weight 1). Stacks with Apply I2V-Adapter and the temporal layers in any order.",
            inputs=[
                io.Model.Input("model", tooltip="An SD1.5 or SDXL model of the Content-Adapter's family."),
                ContentAdapterWeights.Input("content_adapter", tooltip="From Load Content-Adapter."),
                io.ClipVision.Input("clip_vision", tooltip="The image encoder the IP-Adapter was trained with, from "
                                                           "Load CLIP Vision: CLIP ViT-H for IP-Adapter Plus."),
                io.Image.Input("image", tooltip="The reference image (the first of a batch is used), centre-cropped to "
                                                "a square for the encoder."),
                io.Float.Input("weight", default=1.0, min=0.0, max=3.0, step=0.05,
                               tooltip="Scales the image attention: 1 as the official release, 0 leaves the model as "
                                       "it was, higher follows the image's content more closely."),
            ],
            outputs=[io.Model.Output(tooltip="The model with the Content-Adapter, for KSampler or SamplerCustom.")],
        )

    @classmethod
    def execute(cls, model, content_adapter, clip_vision, image, weight):
        if weight == 0.0:
            return io.NodeOutput(model)
        return io.NodeOutput(apply_content_adapter(model, content_adapter, clip_vision, image, weight))
