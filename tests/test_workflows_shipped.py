"""The shipped example graphs (workflows/*.json) as the UI reads them: every widget value where the frontend
expects it and valid for its input, the layout a new user can read (no overlapping nodes, left-to-right wires,
the four groups, a Note), and a download entry on every loader. Layout checks are tier 1; the checks against
the server's /object_info are tier 2."""
import json
import math
import re

import pytest

from comfyui_i2v_adapter.evaluation.workflow_api import CONTROL_VALUES, FRONTEND_ONLY, widget_slots
from comfyui_i2v_adapter.tests.support.workflows import WORKFLOWS

NAMES = sorted(p.stem for p in WORKFLOWS.glob("*.json"))
GROUPS = ["Models", "Conditioning", "Sampling", "Output"]
CLIP_GROUPS = ["Models", "Clip 1", "Clip 2", "Clip 3", "Output"]  # the long video: one group per clip
TITLE_HEIGHT = 30  # LiteGraph.NODE_TITLE_HEIGHT: the title bar sits above a node's pos
# The file inputs of the loaders in the graphs, and the models/ folder each reads.
LOADER_FOLDERS = {"CheckpointLoaderSimple": {"ckpt_name": "checkpoints"},
                  "CLIPVisionLoader": {"clip_name": "clip_vision"},
                  "I2V_LoadAdapter": {"adapter_name": "i2v_adapter"},
                  "I2V_LoadMotionModule": {"motion_module_name": "animatediff_models"},
                  "I2V_LoadContentAdapter": {"ipadapter_name": "ipadapter", "attention_weights": "animatediff_models"},
                  "I2V_LoadLookBack": {"look_back_name": "look_back"},
                  "I2V_LoadVisionLanguageModel": {"model_folder": "LLM"},
                  "I2V_LoadDQFormer": {"dqformer_name": "dqformer"},
                  "I2V_LoadOpticalFlowModel": {"optical_flow_name": "optical_flow"}}
# Files no single URL serves: the Note must say where they come from instead.
NO_DOWNLOAD = {("I2V_LoadLookBack", "look_back_name"): "--train look_back",
               ("I2V_LoadVisionLanguageModel", "model_folder"): "models/LLM/",
               ("I2V_LoadDQFormer", "dqformer_name"): "--train dqformer",
               ("I2V_LoadOpticalFlowModel", "optical_flow_name"): "docs/metrics.md"}  # torchvision's own address
SAME_FILE = "from the IP-Adapter file"  # Load Content-Adapter's attention_weights when the IP-Adapter has them


def workflow(name: str) -> dict:
    return json.loads((WORKFLOWS / f"{name}.json").read_text())


def note_text(graph: dict) -> str:
    return "\n".join(n["widgets_values"][0] for n in graph["nodes"] if n["type"] in FRONTEND_ONLY)


def box(node: dict) -> tuple[float, float, float, float]:
    (x, y), (w, h) = node["pos"], node["size"]
    return x, y - TITLE_HEIGHT, x + w, y + h


def overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def group_box(group: dict) -> tuple[float, float, float, float]:
    x, y, w, h = group["bounding"]
    return x, y, x + w, y + h


def test_every_graph_has_a_thumbnail_for_the_template_browser():
    """ComfyUI's template browser shows workflows/<name>.json under the file name, with workflows/<name>.jpg."""
    assert "i2v_adapter_official" in NAMES and {path.stem for path in WORKFLOWS.glob("*.jpg")} == set(NAMES)
    for name in NAMES:
        assert (WORKFLOWS / f"{name}.jpg").read_bytes()[:3] == b"\xff\xd8\xff", f"{name}.jpg is no JPEG"


@pytest.mark.parametrize("name", NAMES)
def test_no_node_overlaps_another(name):
    nodes = workflow(name)["nodes"]
    for i, a in enumerate(nodes):
        for b in nodes[i + 1:]:
            assert not overlap(box(a), box(b)), f"{name}: node {a['id']} ({a['type']}) overlaps {b['id']} ({b['type']})"


@pytest.mark.parametrize("name", NAMES)
def test_wires_run_left_to_right(name):
    graph = workflow(name)
    nodes = {n["id"]: n for n in graph["nodes"]}
    for link_id, source, _, target, _, _ in graph["links"]:
        assert box(nodes[source])[2] < box(nodes[target])[0], f"{name}: link {link_id} runs back ({source} -> {target})"


@pytest.mark.parametrize("name", NAMES)
def test_the_groups_hold_every_node_and_the_note_says_what_to_do(name):
    graph = workflow(name)
    assert [g["title"] for g in graph["groups"]] == (CLIP_GROUPS if name == "i2v_long_video" else GROUPS)
    boxes = [group_box(g) for g in graph["groups"]]
    assert all(not overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:]), f"{name}: groups overlap"
    assert [b[0] for b in boxes] == sorted(b[0] for b in boxes)  # left to right, in data-flow order
    notes = [n for n in graph["nodes"] if n["type"] in FRONTEND_ONLY]
    assert len(notes) == 1 and notes[0].get("title"), f"{name}: one titled Note"
    for node in graph["nodes"]:
        homes = [g for g in boxes if g[0] <= box(node)[0] and g[1] < box(node)[1] and box(node)[2] <= g[2]
                 and box(node)[3] <= g[3]]
        assert len(homes) == (0 if node in notes else 1), f"{name}: node {node['id']} is in {len(homes)} groups"
        assert node in notes or not overlap(box(node), box(notes[0]))
    text = note_text(graph)
    assert "**Change first**" in text and "**Files" in text, f"{name}: the Note says what to change and what to get"


@pytest.mark.comfyui
@pytest.mark.parametrize("name", NAMES)
def test_every_widget_value_is_where_the_ui_reads_it_and_valid(server, name):
    """The frontend assigns widgets_values by position: a count off by one shifts every later value into the
    wrong widget. Every value must also be one the widget accepts."""
    object_info = server.object_info()
    graph = workflow(name)
    text = note_text(graph)
    for node in graph["nodes"]:
        if node["type"] in FRONTEND_ONLY:
            continue
        where = f"{name}: node {node['id']} ({node['type']})"
        slots = widget_slots(object_info[node["type"]])
        values = node.get("widgets_values") or []
        assert len(values) == len(slots), f"{where}: {len(values)} widget values, the UI expects {len(slots)}: " \
                                          f"{[(n, k) for n, _, k in slots]}"
        downloads = {m["name"] for m in node.get("properties", {}).get("models", [])}
        for (input_name, spec, kind), value in zip(slots, values):
            what = f"{where}.{input_name} = {value!r}"
            if kind == "control":
                assert value in CONTROL_VALUES, what
            elif kind == "upload":
                assert value in ("image", "video", "audio"), what
            elif isinstance(spec[0], list) or spec[0] == "COMBO":
                options = spec[0] if isinstance(spec[0], list) else spec[1]["options"]
                no_download = NO_DOWNLOAD.get((node["type"], input_name))
                assert (value in options or value in downloads or (no_download and value in text)), \
                    f"{what}: not one of {options[:8]}, nor a file the node's models entries or Note name"
            else:
                options = spec[1] if len(spec) > 1 else {}
                kinds = {"INT": (int,), "FLOAT": (int, float), "STRING": (str,), "BOOLEAN": (bool,)}[spec[0]]
                assert isinstance(value, kinds) and (spec[0] == "BOOLEAN" or not isinstance(value, bool)), what
                if spec[0] in ("INT", "FLOAT"):
                    assert options.get("min", -math.inf) <= value <= options.get("max", math.inf), what


@pytest.mark.comfyui
@pytest.mark.parametrize("name", NAMES)
def test_every_loader_carries_its_download_for_the_missing_models_dialog(server, name):
    """properties.models entries ({name, url, directory}) for the file each loader picks, in the folder it reads
    from; the frontend offers them only when name equals the widget's value and directory is a folder the server
    knows."""
    folders = server.get("/models")
    graph = workflow(name)
    text = note_text(graph)
    for node in graph["nodes"]:
        if node["type"] not in LOADER_FOLDERS:
            continue
        values = dict(zip((n for n, _, k in widget_slots(server.object_info()[node["type"]]) if k == "value"),
                          node["widgets_values"]))
        entries = node.get("properties", {}).get("models", [])
        for entry in entries:
            assert set(entry) == {"name", "url", "directory"} and entry["directory"] in folders, entry
            assert re.fullmatch(r"https://huggingface\.co/[\w.-]+/[\w.-]+/resolve/main/[\w./-]+", entry["url"]), entry
        for input_name, folder in LOADER_FOLDERS[node["type"]].items():
            value, where = values[input_name], f"{name}: node {node['id']} ({node['type']}).{input_name}"
            if (node["type"], input_name) in NO_DOWNLOAD:
                assert value in text and NO_DOWNLOAD[node["type"], input_name] in text, f"{where}: the Note says how"
                continue
            if value == SAME_FILE:
                continue
            assert {"name": value, "directory": folder} in [{k: e[k] for k in ("name", "directory")} for e in entries], \
                f"{where}: no models entry for {value!r} in {folder}"
            assert value in text and f"models/{folder}/" in text, f"{where}: the Note names the file and its folder"
