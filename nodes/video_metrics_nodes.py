"""I2V Video Metrics (the papers' CLIPTemp, ISIM, FlowScore and WarpingError of a decoded video) and Load Optical Flow
Model (torchvision RAFT from models/optical_flow), for comparing settings with numbers. docs/metrics.md."""
import math

import comfy.model_management
import comfy.utils
from comfy_api.latest import io, ui

from ..kernels.optical_flow import raft_flow, read_raft
from ..kernels.tensor_files import FileFormatError
from ..kernels.video_metrics import InputSimilarity, Motion, input_similarity, measure_motion, similarities_to_image
from .io_types import CATEGORY
from .model_folders import OPTICAL_FLOW, full_path
from .weights_loader import WeightsFileLoader

OpticalFlowModel = io.Custom("I2V_OPTICAL_FLOW")
CLIP_CHUNK = 16  # frames per CLIP vision call: its activations for 16 frames, never the whole video's
NODE = "I2V Video Metrics"
METRICS_KEY = "i2v_metrics"  # the ui entry with the numbers
# Each output and its tooltip, in order; also the names of the numbers in the node's ui (METRICS_KEY).
OUTPUTS = {
    "clip_temp": "CLIPTemp (I2V-Adapter): mean cosine similarity of the frames' CLIP "
                 "image embeddings to the input image's, 1 = identical. NaN without "
                 "clip_vision.",
    "isim_first": "ISIM(1st) (look-back paper): frame 0's similarity to the input image. "
                  "NaN without clip_vision.",
    "isim_average": "ISIM(Avg): the mean over all frames (the same number as CLIPTemp). "
                    "NaN without clip_vision.",
    "isim_decay": "ISIM decay: similarity lost per frame (minus the slope of a straight "
                  "line fitted to it over the frame index); 0 = no drift. NaN without "
                  "clip_vision.",
    "flow_score": "FlowScore: mean optical-flow magnitude between consecutive frames, in "
                  "pixels of the video; higher = more motion. NaN without optical_flow.",
    "warping_error": "WarpingError: mean squared RGB error (0..1 pixels, in units of "
                     "1e-3) of each next frame warped back onto the frame before, "
                     "occluded pixels left out; lower = steadier motion. NaN without "
                     "optical_flow.",
}


class LoadOpticalFlowModel(WeightsFileLoader):
    FOLDER, INPUT, read = OPTICAL_FLOW, "optical_flow_name", staticmethod(read_raft)

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="I2V_LoadOpticalFlowModel",
            display_name="Load Optical Flow Model",
            category=CATEGORY,
            description="Loads torchvision's RAFT (raft_large or raft_small, told from the file's tensors) for I2V "
                        "Video Metrics' FlowScore and WarpingError. Nothing is downloaded.",
            inputs=[cls.file_input("A torchvision RAFT weights file in models/optical_flow, e.g. "
                                   "raft_large_C_T_SKHT_V2-ff5fadd5.pth (.pth read tensors-only, or .safetensors).")],
            outputs=[OpticalFlowModel.Output(tooltip="The RAFT model, for I2V Video Metrics' optical_flow.")],
        )

    @classmethod
    def execute(cls, optical_flow_name):
        path = full_path(OPTICAL_FLOW, optical_flow_name)
        try:
            return io.NodeOutput(read_raft(path))
        except FileFormatError as e:
            raise FileFormatError(f"Load Optical Flow Model: optical_flow_name '{optical_flow_name}' in "
                                  f"models/{OPTICAL_FLOW} ({path}): {e}") from e


class VideoMetrics(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="I2V_VideoMetrics",
            display_name=NODE,
            category=CATEGORY,
            description="Measures a decoded video as the papers do: CLIPTemp and ISIM (how close the frames stay to "
                        "the input image, from CLIP image embeddings), FlowScore (how much it moves) and "
                        "WarpingError (how consistent that motion is, from RAFT optical flow). A metric whose model "
                        "is not connected is NaN and the node says which input it needs.",
            is_output_node=True,
            inputs=[
                io.Image.Input("images", tooltip="The video, frame 0 first (VAE Decode's output), 2 frames or more."),
                io.Image.Input("image", tooltip="The input image the video was made from (the first of a batch "
                                                "is used)."),
                io.ClipVision.Input("clip_vision", optional=True,
                                    tooltip="A CLIP vision model (Load CLIP Vision) for CLIPTemp and ISIM: frames "
                                            "and image are centre-cropped to its square input. Not connected: "
                                            "those metrics are NaN."),
                OpticalFlowModel.Input("optical_flow", optional=True,
                                       tooltip="From Load Optical Flow Model, for FlowScore and WarpingError. Not "
                                               "connected: those metrics are NaN."),
            ],
            outputs=[io.Float.Output(display_name=name, tooltip=tooltip) for name, tooltip in OUTPUTS.items()],
        )

    @classmethod
    def execute(cls, images, image, clip_vision=None, optical_flow=None):
        if images.shape[0] < 2:
            raise ValueError(f"{NODE}: images holds {images.shape[0]} frame; connect a video of 2 frames or more.")
        steps = (clip_vision is not None) * (1 + math.ceil(images.shape[0] / CLIP_CHUNK))
        steps += (optical_flow is not None) * (images.shape[0] - 1)
        bar = comfy.utils.ProgressBar(steps)

        def step():
            comfy.model_management.throw_exception_if_processing_interrupted()
            bar.update(1)

        similarity = None if clip_vision is None else _input_similarity(images, image, clip_vision, step)
        motion = None if optical_flow is None else _measure_motion(images, optical_flow, step)
        values = _values(similarity, motion)
        # The text for the node; the numbers by name for scripts reading the prompt's history (evaluation/).
        shown = {**ui.PreviewText(report(similarity, motion)).as_dict(), METRICS_KEY: [dict(zip(OUTPUTS, values))]}
        return io.NodeOutput(*values, ui=shown)


def _input_similarity(images, image, clip_vision, step) -> InputSimilarity:
    """From CLIP vision's projected embeddings (image_embeds), each picture centre-cropped to its square input."""
    def encode(pictures):
        return clip_vision.encode_image(pictures, crop=True)["image_embeds"]
    return input_similarity(similarities_to_image(images, image, encode, CLIP_CHUNK, step))


def _measure_motion(images, raft, step) -> Motion:
    """RAFT on ComfyUI's device for this node's run only, then back on the CPU: it holds no memory between runs."""
    device = comfy.model_management.get_torch_device()
    try:
        return measure_motion(images, raft_flow(raft.to(device), device), step)
    finally:
        raft.to("cpu")


def _values(similarity: InputSimilarity | None, motion: Motion | None) -> list[float]:
    similarities = [math.nan] * 4 if similarity is None else [
        similarity.clip_temp, similarity.isim_first, similarity.isim_average, similarity.isim_decay]
    motions = [math.nan] * 2 if motion is None else [motion.flow_score, motion.warping_error]
    return similarities + motions


def report(similarity: InputSimilarity | None, motion: Motion | None) -> str:
    """The text the node shows."""
    if similarity is None:
        lines = ["CLIPTemp, ISIM: not computed (connect clip_vision)"]
    else:
        lines = [f"CLIPTemp {similarity.clip_temp:.4f}",
                 f"ISIM first {similarity.isim_first:.4f}, average {similarity.isim_average:.4f}, "
                 f"decay {similarity.isim_decay:.5f} per frame"]
    if motion is None:
        lines.append("FlowScore, WarpingError: not computed (connect optical_flow: Load Optical Flow Model)")
    else:
        lines += [f"FlowScore {motion.flow_score:.4f} px", f"WarpingError {motion.warping_error:.4f} (x 1e-3)"]
    return "\n".join(lines)
