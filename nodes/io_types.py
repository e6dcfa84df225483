"""Socket types the pack adds to ComfyUI."""
from comfy_api.latest import io

I2VAdapterWeights = io.Custom("I2V_ADAPTER")

CATEGORY = "I2V-Adapter"
