"""Socket types the pack adds to ComfyUI."""
from comfy_api.latest import io

I2VAdapterWeights = io.Custom("I2V_ADAPTER")
MotionModuleWeights = io.Custom("I2V_MOTION_MODULE")
LookBackWeights = io.Custom("I2V_LOOK_BACK")
ContentAdapterWeights = io.Custom("I2V_CONTENT_ADAPTER")
VisionLanguageModelType = io.Custom("I2V_VLM")

CATEGORY = "I2V-Adapter"
