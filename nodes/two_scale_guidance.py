"""Two-Scale Guidance (AID): a guider for SamplerCustomAdvanced with a visual and a text guidance scale.

Three conds per step, batched into one UNet call where memory allows: the prompt with the picture, the negative
prompt with the picture, the negative prompt without it. "The picture" is what the pack's patches add of it (the
I2V-Adapter's first-frame branch, the Content-Adapter's image tokens); the prompt's part includes the DQFormer's
condition tokens. The conds' names give each its role (cond_roles). Frame 0 stays the pinned reference in all three.
"""
import comfy.samplers
import node_helpers
from comfy.patcher_extension import WrappersMP
from comfy_api.latest import io

from ..kernels.two_scale_guidance import ALL, add_text_guidance, predictions_needed
from .cond_roles import NEGATIVE_WITH_PICTURE, NEGATIVE_WITHOUT_PICTURE
from .content_adapter_patch import KEY as CONTENT_ADAPTER_KEY
from .i2v_adapter_patch import PATCH_KEY as I2V_ADAPTER_KEY
from .io_types import CATEGORY

NODE = "Two-Scale Guidance (AID)"


class TwoScaleGuider(comfy.samplers.CFGGuider):
    def set_conds(self, positive, negative):
        negative = node_helpers.conditioning_set_values(negative, {"prompt_type": "negative"})
        # Listed as ComfyUI's [cond, uncond] with the third after: at visual scale 1 a call is CFGGuider's.
        self.inner_set_conds({"positive": positive, NEGATIVE_WITH_PICTURE: negative,
                              NEGATIVE_WITHOUT_PICTURE: negative})

    def set_scales(self, visual_scale: float, text_scale: float):
        self.visual_scale, self.text_scale = visual_scale, text_scale

    def predict_noise(self, x, timestep, model_options={}, seed=None):
        needed = ALL
        if not model_options.get("disable_cfg1_optimization", False):
            cfg_functions = "sampler_cfg_function" in model_options or bool(
                model_options.get("sampler_post_cfg_function"))
            needed = predictions_needed(self.visual_scale, self.text_scale, cfg_functions)
        positive = self.conds.get("positive")
        picture = self.conds.get(NEGATIVE_WITH_PICTURE) if needed.picture else None
        unconditional = self.conds.get(NEGATIVE_WITHOUT_PICTURE) if needed.unconditional else None
        prompt_out, picture_out, unconditional_out = comfy.samplers.calc_cond_batch(
            self.inner_model, [positive, picture, unconditional], x, timestep, model_options)
        if picture is None:  # equal scales: single CFG between the prompt with the picture and the negative without
            return comfy.samplers.cfg_function(self.inner_model, prompt_out, unconditional_out, self.text_scale, x,
                                               timestep, model_options=model_options, cond=positive,
                                               uncond=unconditional)
        visual = comfy.samplers.cfg_function(self.inner_model, picture_out, unconditional_out, self.visual_scale, x,
                                             timestep, model_options=model_options, cond=picture, uncond=unconditional)
        return add_text_guidance(visual, picture_out, prompt_out, self.text_scale)


def check_picture_conditioning(model) -> None:
    """The visual scale weighs what the pack adds of the picture: without it the scale would do nothing."""
    if not (model.get_additional_models_with_key(I2V_ADAPTER_KEY)
            or model.get_wrappers(WrappersMP.DIFFUSION_MODEL, CONTENT_ADAPTER_KEY)):
        raise ValueError(f"{NODE}: the model has no picture conditioning, so the visual scale would do nothing. "
                         "Connect the MODEL from Apply I2V-Adapter (strength above 0) or Apply Content-Adapter, or "
                         "use CFGGuider for a model without them.")


class TwoScaleGuidance(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="I2V_TwoScaleGuidance",
            display_name=NODE,
            category=CATEGORY,
            description="Guides the picture and the prompt with separate scales, as AID: "
                        "ε(∅,∅) + visual·(ε(picture,∅) − ε(∅,∅)) + text·(ε(picture,prompt) − ε(picture,∅)). Three "
                        "model evaluations per step (two at visual scale 1 or with both scales equal). For "
                        "SamplerCustomAdvanced.",
            inputs=[
                io.Model.Input("model", tooltip="A model with Apply I2V-Adapter and/or Apply Content-Adapter (and "
                                                "any other patches, e.g. Apply DQFormer, motion modules)."),
                io.Conditioning.Input("positive", tooltip="The prompt. Its states and the DQFormer's condition "
                                                          "tokens belong to the text side."),
                io.Conditioning.Input("negative", tooltip="The negative prompt: the text side's 'no text' (∅), used "
                                                          "with and without the picture."),
                io.Float.Input("visual_scale", default=1.5, min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="Guidance on the picture: ε(picture, negative) against ε(no picture, "
                                       "negative). 1 turns it off (and skips a model evaluation); AID uses 1.5."),
                io.Float.Input("text_scale", default=12.0, min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="Guidance on the prompt, with the picture on both sides: ε(picture, prompt) "
                                       "against ε(picture, negative). AID uses 12. Equal scales are single CFG "
                                       "against a negative without the picture."),
            ],
            outputs=[io.Guider.Output(tooltip="For SamplerCustomAdvanced.")],
        )

    @classmethod
    def execute(cls, model, positive, negative, visual_scale, text_scale) -> io.NodeOutput:
        check_picture_conditioning(model)
        guider = TwoScaleGuider(model)
        guider.set_conds(positive, negative)
        guider.set_scales(visual_scale, text_scale)
        return io.NodeOutput(guider)
