"""ComfyUI nodes of the pack (V3 schema)."""
from comfy_api.latest import ComfyExtension

from .i2v_adapter_nodes import ApplyI2VAdapter, LoadI2VAdapter
from .video_latent import I2VVideoLatent


class I2VAdapterExtension(ComfyExtension):
    async def get_node_list(self):
        return [LoadI2VAdapter, ApplyI2VAdapter, I2VVideoLatent]
