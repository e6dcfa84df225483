"""Load / Apply Motion Module and Load / Apply Look-Back Layers."""
from comfy_api.latest import io

from ..kernels.look_back_file import read_look_back
from ..kernels.motion_module_file import read_motion_module
from ..kernels.noise_schedule import SCHEDULES
from .io_types import CATEGORY, LookBackWeights, MotionModuleWeights
from .model_folders import LOOK_BACK, MOTION_MODULES
from .temporal_layers_patch import AUTOSELECT, GROUP_NORMS, USE_EXISTING, apply_look_back, apply_motion_modules
from .weights_loader import WeightsFileLoader

BETA_SCHEDULES = [AUTOSELECT, *SCHEDULES, USE_EXISTING]


class LoadMotionModule(WeightsFileLoader):
    FOLDER, INPUT, read = MOTION_MODULES, "motion_module_name", staticmethod(read_motion_module)

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="I2V_LoadMotionModule",
            display_name="Load Motion Module",
            category=CATEGORY,
            description="Loads an AnimateDiff motion module: SD1.5 v1, v2 (with its mid-block module) or v3, SDXL "
                        "beta, as .ckpt (read safely, tensors only) or .safetensors, or a diffusers MotionAdapter file.",
            inputs=[cls.file_input("A file in models/animatediff_models (the folder AnimateDiff-Evolved uses).")],
            outputs=[MotionModuleWeights.Output(tooltip="The motion modules, for Apply Motion Module.")],
        )


class ApplyMotionModule(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="I2V_ApplyMotionModule",
            display_name="Apply Motion Module",
            category=CATEGORY,
            description="Inserts the motion modules' temporal attention after the UNet's spatial layers, making a "
                        "text-to-video model. Stacks with Apply Look-Back Layers and Apply I2V-Adapter in any order.",
            inputs=[
                io.Model.Input("model", tooltip="An SD1.5 or SDXL model of the motion module's family."),
                MotionModuleWeights.Input("motion_module", tooltip="From Load Motion Module."),
                io.Float.Input("scale", default=1.0, min=0.0, max=2.0, step=0.05,
                               tooltip="Strength of the temporal layers: 1 as trained, lower for less motion and "
                                       "more per-frame freedom, 0 turns them off."),
                io.Combo.Input("beta_schedule", options=BETA_SCHEDULES, default=AUTOSELECT,
                               tooltip="The noise schedule the MODEL samples with. autoselect: the one AnimateDiff "
                                       "trained with (sqrt_linear for SD1.5, linear up to 0.020 for SDXL), as "
                                       "AnimateDiff-Evolved; the official I2V-Adapter release samples with it too. "
                                       "use existing: keep the MODEL's (SD's default, unless changed before)."),
                io.Combo.Input("groupnorm", options=GROUP_NORMS, default=AUTOSELECT,
                               tooltip="How the UNet's ResNet GroupNorms take their statistics. autoselect: across "
                                       "each video's frames for AnimateDiff v1 modules (as v1 and the official "
                                       "I2V-Adapter release ran), per frame for v2/v3/SDXL."),
            ],
            outputs=[io.Model.Output(tooltip="The model with motion modules; its latent batch is the video's frames.")],
        )

    @classmethod
    def execute(cls, model, motion_module, scale, beta_schedule, groupnorm):
        return io.NodeOutput(apply_motion_modules(model, motion_module, scale, beta_schedule, groupnorm))


class LoadLookBackLayers(WeightsFileLoader):
    FOLDER, INPUT, read = LOOK_BACK, "look_back_name", staticmethod(read_look_back)

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="I2V_LoadLookBack",
            display_name="Load Look-Back Layers",
            category=CATEGORY,
            description="Loads look-back temporal layers trained by training/train_adapter.py (--train look_back).",
            inputs=[cls.file_input("A file in models/look_back.")],
            outputs=[LookBackWeights.Output(tooltip="The look-back layers, for Apply Look-Back Layers.")],
        )


class ApplyLookBackLayers(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="I2V_ApplyLookBack",
            display_name="Apply Look-Back Layers",
            category=CATEGORY,
            description="Adds a recurrent look-back convolution at the output of every UNet block: each frame is "
                        "updated from the frames before it, so the first frame (the image) propagates to the last. "
                        "Works with or without motion modules.",
            inputs=[
                io.Model.Input("model", tooltip="An SD1.5 or SDXL model of the layers' family."),
                LookBackWeights.Input("look_back", tooltip="From Load Look-Back Layers."),
                io.Latent.Input("reference", tooltip="The reference image's latent (frame 0 is used): it is held clean "
                                                     "as frame 0 at every step, the paper's hybrid initialisation. "
                                                     "Connect I2V Video Latent."),
            ],
            outputs=[io.Model.Output(tooltip="The model with look-back layers; frame 0 of the latent is the reference.")],
        )

    @classmethod
    def execute(cls, model, look_back, reference):
        return io.NodeOutput(apply_look_back(model, look_back, reference["samples"]))
