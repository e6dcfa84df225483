"""comfyui-i2v-adapter: image-to-video blocks for SD1.5/SDXL + AnimateDiff in ComfyUI.

ComfyUI calls `comfy_entrypoint`. Host imports stay behind it so that `kernels` and the trainer import
without ComfyUI.
"""


async def comfy_entrypoint():
    from .nodes import I2VAdapterExtension
    return I2VAdapterExtension()
