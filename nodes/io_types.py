"""Socket types the pack adds to ComfyUI."""
from comfy_api.latest import io

I2VAdapterWeights = io.Custom("I2V_ADAPTER")
MotionModuleWeights = io.Custom("I2V_MOTION_MODULE")
LookBackWeights = io.Custom("I2V_LOOK_BACK")
ContentAdapterWeights = io.Custom("I2V_CONTENT_ADAPTER")
VisionLanguageModelType = io.Custom("I2V_VLM")
StateFeaturesType = io.Custom("I2V_STATE_FEATURES")
DQFormerWeights = io.Custom("I2V_DQFORMER")

CATEGORY = "I2V-Adapter"
