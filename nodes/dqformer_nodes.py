"""Load DQFormer and Apply DQFormer (AID's condition tokens from a vision-language model's hidden states)."""
from comfy_api.latest import io

from ..kernels.dqformer_file import read_dqformer
from .dqformer_patch import apply_dqformer
from .io_types import CATEGORY, DQFormerWeights, StateFeaturesType
from .model_folders import DQFORMER
from .weights_loader import WeightsFileLoader


class LoadDQFormer(WeightsFileLoader):
    FOLDER, INPUT, read = DQFORMER, "dqformer_name", staticmethod(read_dqformer)

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="I2V_LoadDQFormer",
            display_name="Load DQFormer",
            category=CATEGORY,
            description="Loads a DQFormer trained by training/train_adapter.py (--train dqformer): AID's dual-query "
                        "transformer that turns a vision-language model's hidden states into condition tokens.",
            inputs=[cls.file_input("A file in models/dqformer. It reads the hidden states of the vision-language "
                                   "model it was trained on, and makes tokens for its base's family.")],
            outputs=[DQFormerWeights.Output(tooltip="The DQFormer, for Apply DQFormer.")],
        )


class ApplyDQFormer(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="I2V_ApplyDQFormer",
            display_name="Apply DQFormer",
            category=CATEGORY,
            description="Adds AID's condition tokens beside the text's in every cross-attention, each frame on its "
                        "state's tokens (blended across state boundaries), on the conditional side. Stacks with the "
                        "I2V-Adapter, the Content-Adapter and the temporal layers in any order.",
            inputs=[
                io.Model.Input("model", tooltip="An SD1.5 or SDXL model of the DQFormer's family."),
                DQFormerWeights.Input("dqformer", tooltip="From Load DQFormer."),
                StateFeaturesType.Input("state_features",
                                        tooltip="From Decompose Prompt into States (its vision-language model must "
                                                "be the one the DQFormer was trained on)."),
                io.Float.Input("weight", default=1.0, min=0.0, max=3.0, step=0.05,
                               tooltip="Scales the condition tokens' attention: 1 as trained, 0 leaves the model "
                                       "as it was."),
            ],
            outputs=[io.Model.Output(tooltip="The model with the DQFormer's tokens, for KSampler or SamplerCustom.")],
        )

    @classmethod
    def execute(cls, model, dqformer, state_features, weight):
        if weight == 0.0:
            return io.NodeOutput(model)
        return io.NodeOutput(apply_dqformer(model, dqformer, state_features, weight))
