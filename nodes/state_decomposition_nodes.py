"""Load Vision-Language Model and Decompose Prompt into States (AID's MLLM prompt decomposition)."""
import hashlib
import logging
from collections import OrderedDict

from comfy_api.latest import io

from ..kernels.state_answer import parse_answer, states_text
from ..kernels.state_prompt import AID_TEMPLATE, state_question
from ..kernels.state_schedule import frame_state_weights, schedule_string, state_starts
from .io_types import CATEGORY, StateFeaturesType, VisionLanguageModelType
from .model_folders import LLM
from .state_conditioning import per_frame_conditioning
from .vlm_answer import DecomposedStates, answer_features, ask, pictures
from .vlm_model import (DEVICES, DTYPES, load_vision_language_model, missing_folder_message, model_folder_names,
                        model_on_device)

NODE = "Decompose Prompt into States"
# The model's recent answers and hidden states, by what decides them: a re-queue with other settings downstream
# (frames, blend, CLIP) does not run the model again.
_RECENT, RECENT_ANSWERS = OrderedDict(), 8


def _model_work(vlm, images, question: str, instruction: str, states: int, max_new_tokens: int, temperature: float,
                seed: int):
    key = (vlm.name, str(vlm.model.dtype), hashlib.sha256(b"".join(p.tobytes() for p in images)).hexdigest(),
           question, max_new_tokens, temperature, seed if temperature > 0 else None)
    if key not in _RECENT:
        with model_on_device(vlm):  # the answer and its features in one trip to the device
            answer = ask(vlm, images, question, max_new_tokens, temperature, seed)
            result = parse_answer(answer, states, instruction)
            _RECENT[key] = (answer, result, answer_features(vlm, images, question, result.states))
        while len(_RECENT) > RECENT_ANSWERS:
            _RECENT.popitem(last=False)
    _RECENT.move_to_end(key)
    return _RECENT[key]


class LoadVisionLanguageModel(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="I2V_LoadVisionLanguageModel",
            display_name="Load Vision-Language Model",
            category=CATEGORY,
            description=f"Loads a local vision-language model (a Hugging Face folder in models/{LLM}, e.g. "
                        "Qwen2.5-VL-3B-Instruct or Qwen3-VL-2B-Instruct) with transformers, from local files only: "
                        "nothing is downloaded.",
            inputs=[
                io.Combo.Input("model_folder", options=model_folder_names(),
                               tooltip=f"A model folder in models/{LLM} (config.json, weights, processor and "
                                       "tokenizer files, as downloaded). Instruction-tuned models answer best."),
                io.Combo.Input("device", options=list(DEVICES), default="default",
                               tooltip="default: ComfyUI's device (the GPU), loaded and unloaded with ComfyUI's "
                                       "other models. cpu: always on the CPU (slow, but leaves the GPU free)."),
                io.Combo.Input("dtype", options=list(DTYPES), default="auto",
                               tooltip="Weight precision. auto: bfloat16 where the GPU supports it, else float16; "
                                       "float32 on the CPU."),
                io.Boolean.Input("keep_loaded", default=False,
                                 tooltip="On: the model stays on the GPU after answering, until ComfyUI needs the "
                                         "memory for another model. Off: it goes back to the offload device (RAM) "
                                         "right after answering, leaving the GPU to the sampler."),
                io.Boolean.Input("trust_remote_code", default=False,
                                 tooltip="Only for models transformers has no class for: runs the Python code that "
                                         "came in the model's folder, with your rights. Off by default because "
                                         "such code can do anything; switch it on only for folders whose source "
                                         "you trust."),
            ],
            outputs=[VisionLanguageModelType.Output(display_name="vlm",
                                                    tooltip="The model, for Decompose Prompt into States.")],
        )

    @classmethod
    def validate_inputs(cls, model_folder):
        return missing_folder_message(model_folder) or True

    @classmethod
    def execute(cls, model_folder, device, dtype, keep_loaded, trust_remote_code):
        return io.NodeOutput(load_vision_language_model(model_folder, device, dtype, keep_loaded, trust_remote_code))


class DecomposePromptIntoStates(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="I2V_DecomposePromptIntoStates",
            display_name=NODE,
            category=CATEGORY,
            description="Asks a vision-language model to split an instruction into coherent one-sentence states "
                        "aligned with the reference image (AID), and conditions each stretch of the video on its "
                        "state: a per-frame CONDITIONING for the stock KSampler, the states as text, and a "
                        "schedule for FizzNodes / AnimateDiff-Evolved prompt scheduling.",
            inputs=[
                VisionLanguageModelType.Input("vlm", tooltip="From Load Vision-Language Model."),
                io.Clip.Input("clip", tooltip="The checkpoint's CLIP: each state is encoded with it."),
                io.Image.Input("images", tooltip="The reference image (the video's first frame). A batch shows "
                                                 "the model several images in order (ViMi-style multimodal "
                                                 "prompt); put the reference first."),
                io.String.Input("instruction", multiline=True, default="",
                                tooltip="What happens in the video, e.g. 'tearing paper into two pieces'."),
                io.Int.Input("states", default=4, min=1, max=64,
                             tooltip="How many states the model is asked for (AID: four). At most one per frame."),
                io.Latent.Input("latent", tooltip="The video latent the conditioning is for (I2V Video Latent or the "
                                                  "Frame Similarity Prior): one conditioning row per frame. State i "
                                                  "of N starts at frame round(i·frames/N)."),
                io.Float.Input("blend_frames", default=2.0, min=0.0, max=256.0, step=0.5,
                               tooltip="Width in frames of the linear cross-fade between one state's embedding and "
                                       "the next, centred on the boundary; 0 cuts hard."),
                io.String.Input("template", multiline=True, default=AID_TEMPLATE,
                                tooltip="The question put to the model (AID's prompt by default). {instruction} "
                                        "becomes the instruction, {states} the number of states in words."),
                io.Int.Input("max_new_tokens", default=256, min=8, max=4096,
                             tooltip="The longest answer, in tokens; four one-sentence states take about 100."),
                io.Float.Input("temperature", default=0.0, min=0.0, max=2.0, step=0.05,
                               tooltip="0: greedy, the same answer every time. Above 0: sampling at this "
                                       "temperature (the model's own top-k/top-p off), repeatable with the seed."),
                io.Int.Input("sampling_seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=False,
                             tooltip="Seed of the model's sampling; unused when temperature is 0. Fixed, so that a "
                                     "re-queue does not run the model again."),
                io.Int.Input("max_image_side", default=768, min=64, max=4096, step=8,
                             tooltip="Images are shrunk to at most this many pixels a side before the model sees "
                                     "them: the model's cost grows with the image area."),
            ],
            outputs=[
                io.Conditioning.Output(display_name="positive",
                                       tooltip="One row per frame, each frame on its state (blended across "
                                               "boundaries); for KSampler's positive input."),
                io.String.Output(display_name="states",
                                 tooltip="The states, numbered, then notes on anything padded, cut or replaced."),
                io.String.Output(display_name="schedule",
                                 tooltip='"frame": "state" lines for FizzNodes\' Batch Prompt Schedule or '
                                         "AnimateDiff-Evolved's Prompt Scheduling (same frames)."),
                io.String.Output(display_name="answer", tooltip="The model's answer as it was written."),
                StateFeaturesType.Output(display_name="state_features",
                                         tooltip="The model's hidden states over the image and instruction and over "
                                                 "each state, with each frame's blend of the states: for Apply "
                                                 "DQFormer."),
            ],
        )

    @classmethod
    def execute(cls, vlm, clip, images, instruction, states, latent, blend_frames, template, max_new_tokens,
                temperature, sampling_seed, max_image_side):
        frames = latent["samples"].shape[0]
        try:  # bad inputs stop the node before the model runs
            question = state_question(template, instruction, states)
            state_starts(frames, states)
        except ValueError as e:
            raise ValueError(f"{NODE}: {e}") from None
        answer, result, features = _model_work(vlm, pictures(images, max_image_side), question, instruction, states,
                                               max_new_tokens, temperature, sampling_seed)
        for note in result.notes:
            logging.warning("%s: %s", NODE, note)
        weights = frame_state_weights(frames, states, blend_frames)
        positive = per_frame_conditioning(clip, result.states, weights)
        return io.NodeOutput(positive, states_text(result), schedule_string(result.states, frames), answer,
                             DecomposedStates(vlm.name, features, weights))
