"""Tier 2: I2V Video Metrics and Load Optical Flow Model inside ComfyUI: torchvision RAFT files (random weights in
their real layout) read from a models/optical_flow of the test's own, ComfyUI's CLIP vision model, the NaN and the
message of a metric whose model is missing, and a graph on a ComfyUI server passing the numbers on."""
import copy
import math

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from torchvision.models.optical_flow import raft_small

from comfyui_i2v_adapter.evaluation.comfy_client import PromptRejected
from comfyui_i2v_adapter.kernels.optical_flow import raft_flow
from comfyui_i2v_adapter.kernels.tensor_files import FileFormatError
from comfyui_i2v_adapter.kernels.video_metrics import input_similarity, measure_motion, similarities_to_image
from comfyui_i2v_adapter.tests.support.api_graph import Graph
from comfyui_i2v_adapter.tests.support.comfy_server import ComfyServer
from comfyui_i2v_adapter.tests.support.images import astronaut

pytestmark = pytest.mark.comfyui
RAFT_FILE = "raft_small_random.pth"
SIZE = 64


def pan_frames(count: int) -> torch.Tensor:
    """IMAGE [count, 64, 64, 3]: windows of the astronaut, each 2 pixels further right and down."""
    scene = torch.nn.functional.interpolate(astronaut().movedim(-1, 1), size=(128, 128), mode="area").movedim(1, -1)[0]
    return torch.stack([scene[32 - 2 * k:32 - 2 * k + SIZE, 32 - 2 * k:32 - 2 * k + SIZE] for k in range(count)])


def write_random_raft_small(path) -> torch.nn.Module:
    torch.manual_seed(0)
    raft = raft_small(weights=None).eval()
    torch.save(raft.state_dict(), path)
    return raft


@pytest.fixture
def flow_folder(comfyui, monkeypatch, tmp_path):
    """models/optical_flow of the test's own, with a random raft_small file and a file that is no RAFT; ComfyUI's
    folder table restored after the test."""
    import folder_paths

    from comfyui_i2v_adapter.nodes import model_folders

    monkeypatch.setattr(folder_paths, "folder_names_and_paths", copy.deepcopy(folder_paths.folder_names_and_paths))
    monkeypatch.setattr(folder_paths, "filename_list_cache", {})
    folder = tmp_path / "optical_flow"
    folder.mkdir()
    folder_paths.folder_names_and_paths[model_folders.OPTICAL_FLOW] = ([str(folder)], model_folders.WEIGHT_EXTENSIONS)
    write_random_raft_small(folder / RAFT_FILE)
    save_file({"proj_in.weight": torch.zeros(4, 4)}, str(folder / "not_raft.safetensors"))
    return folder


def loaded_raft(name: str = RAFT_FILE):
    from comfyui_i2v_adapter.nodes.video_metrics_nodes import LoadOpticalFlowModel

    return LoadOpticalFlowModel.execute(optical_flow_name=name).result[0]


def test_the_loader_lists_and_reads_a_raft_file_from_models_optical_flow(flow_folder):
    from comfyui_i2v_adapter.nodes.video_metrics_nodes import LoadOpticalFlowModel

    schema = LoadOpticalFlowModel.define_schema()
    assert schema.inputs[0].options == ["not_raft.safetensors", RAFT_FILE]
    written = torch.load(flow_folder / RAFT_FILE, weights_only=True)
    assert all(torch.equal(loaded_raft().state_dict()[k], v) for k, v in written.items())


def test_a_missing_file_names_the_input_and_the_folder_searched(flow_folder):
    from comfyui_i2v_adapter.nodes.video_metrics_nodes import LoadOpticalFlowModel

    message = LoadOpticalFlowModel.validate_inputs(optical_flow_name="raft_large_C_T_SKHT_V2-ff5fadd5.pth")
    assert "'raft_large_C_T_SKHT_V2-ff5fadd5.pth' was not found in models/optical_flow" in message
    assert str(flow_folder) in message
    with pytest.raises(FileNotFoundError, match="models/optical_flow"):
        loaded_raft("raft_large_C_T_SKHT_V2-ff5fadd5.pth")


def test_a_file_that_is_not_raft_names_the_input_the_folder_and_what_differs(flow_folder):
    with pytest.raises(FileFormatError) as refused:
        loaded_raft("not_raft.safetensors")
    message = str(refused.value)
    assert message.startswith("Load Optical Flow Model: optical_flow_name 'not_raft.safetensors' in "
                              "models/optical_flow")
    assert str(flow_folder) in message and "is not torchvision RAFT weights" in message


def test_the_node_measures_with_comfyuis_clip_vision_and_the_loaded_raft(flow_folder):
    from comfyui_i2v_adapter.nodes.video_metrics_nodes import VideoMetrics
    from comfyui_i2v_adapter.tests.support.random_models import small_clip_vision

    clip_vision, raft, frames = small_clip_vision(64), loaded_raft(), pan_frames(2)
    output = VideoMetrics.execute(images=frames, image=frames[:1], clip_vision=clip_vision, optical_flow=raft)

    def encode(images):
        return clip_vision.encode_image(images, crop=True)["image_embeds"]
    similarity = input_similarity(similarities_to_image(frames, frames[:1], encode))
    motion = measure_motion(frames, raft_flow(raft, torch.device("cpu")))
    expected = [similarity.clip_temp, 1.0, similarity.clip_temp, similarity.isim_decay, motion.flow_score,
                motion.warping_error]
    assert output.result == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert 0 < similarity.clip_temp < 1 and motion.flow_score > 0
    text = output.ui["text"][0]
    assert output.ui["i2v_metrics"] == [dict(zip(["clip_temp", "isim_first", "isim_average", "isim_decay", "flow_score",
                                                  "warping_error"], output.result))]
    assert f"CLIPTemp {similarity.clip_temp:.4f}" in text and f"FlowScore {motion.flow_score:.4f} px" in text
    assert next(raft.parameters()).device.type == "cpu"  # on ComfyUI's device for the run only


def test_metrics_whose_model_is_missing_are_nan_and_say_what_to_connect(comfyui):
    from comfyui_i2v_adapter.nodes.video_metrics_nodes import VideoMetrics

    frames = pan_frames(2)
    output = VideoMetrics.execute(images=frames, image=frames[:1])
    assert all(math.isnan(value) for value in output.result)
    text = output.ui["text"][0]
    assert "CLIPTemp, ISIM: not computed (connect clip_vision)" in text
    assert "FlowScore, WarpingError: not computed (connect optical_flow: Load Optical Flow Model)" in text


def test_a_single_frame_is_refused(comfyui):
    from comfyui_i2v_adapter.nodes.video_metrics_nodes import VideoMetrics

    with pytest.raises(ValueError, match="I2V Video Metrics: images holds 1 frame; connect a video of 2 frames"):
        VideoMetrics.execute(images=pan_frames(1), image=pan_frames(1))


@pytest.fixture(scope="module")
def metrics_server(comfyui, module_tmp):
    """A ComfyUI server with the pack, on a base directory of its own: models/optical_flow holds a random raft_small,
    input/ two frames of a pan."""
    base = module_tmp / "base"
    for folder in ("models/optical_flow", "input", "output", "custom_nodes"):
        (base / folder).mkdir(parents=True)
    write_random_raft_small(base / "models/optical_flow" / RAFT_FILE)
    for index, frame in enumerate(pan_frames(2)):
        Image.fromarray((frame.numpy() * 255).round().astype(np.uint8)).save(base / f"input/frame{index}.png")
    with ComfyServer(comfyui, base) as server:
        yield server


def metrics_graph(optical_flow_name: str = RAFT_FILE) -> tuple[Graph, str, str, str]:
    """Two frames loaded and batched, measured with RAFT; clip_temp and flow_score shown by Preview Any. Returns the
    graph and the ids of the metrics node and of the two previews."""
    graph = Graph()
    first = graph.out("LoadImage", image="frame0.png")
    video = graph.out("ImageBatch", image1=first, image2=graph.out("LoadImage", image="frame1.png"))
    raft = graph.out("I2V_LoadOpticalFlowModel", optical_flow_name=optical_flow_name)
    metrics = graph.add("I2V_VideoMetrics", images=video, image=first, optical_flow=raft)
    return graph, metrics, graph.add("PreviewAny", source=[metrics, 0]), graph.add("PreviewAny", source=[metrics, 4])


def test_a_graph_shows_the_metrics_and_passes_them_on(metrics_server, module_tmp):
    from comfyui_i2v_adapter.kernels.optical_flow import read_raft

    graph, metrics, clip_temp, flow_score = metrics_graph()
    outputs = metrics_server.run(graph.nodes)["outputs"]
    frames = torch.stack([torch.from_numpy(np.asarray(Image.open(module_tmp / f"base/input/frame{i}.png"),
                                                      dtype=np.float32) / 255.0) for i in range(2)])
    expected = measure_motion(frames, raft_flow(read_raft(module_tmp / "base/models/optical_flow" / RAFT_FILE),
                                                torch.device("cpu")))
    assert float(outputs[flow_score]["text"][0]) == pytest.approx(expected.flow_score, rel=1e-4)
    assert outputs[clip_temp]["text"] == ["nan"]
    shown = outputs[metrics]["text"][0]
    assert f"FlowScore {expected.flow_score:.3f}" in shown and "not computed (connect clip_vision)" in shown


def test_the_nodes_have_tooltips_everywhere(metrics_server):
    info = metrics_server.object_info()
    for node in ("I2V_VideoMetrics", "I2V_LoadOpticalFlowModel"):
        entry = info[node]
        assert entry["category"] == info["I2V_LoadAdapter"]["category"]
        for inputs in (entry["input"]["required"], entry["input"].get("optional", {})):
            assert all(options[1].get("tooltip") for options in inputs.values()), node
        assert len(entry["output_tooltips"]) == len(entry["output"]) and all(entry["output_tooltips"]), node
    assert info["I2V_LoadOpticalFlowModel"]["input"]["required"]["optical_flow_name"][1]["options"] == [RAFT_FILE]
    assert info["I2V_VideoMetrics"]["output_node"]


def test_a_graph_naming_a_missing_file_is_refused_naming_the_folder(metrics_server):
    graph, *_ = metrics_graph("raft_large_C_T_SKHT_V2-ff5fadd5.pth")
    with pytest.raises(PromptRejected, match="was not found in models/optical_flow"):
        metrics_server.run(graph.nodes)
