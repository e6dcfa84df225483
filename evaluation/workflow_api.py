"""UI-format workflows (what users share) to the API format `/prompt` runs, the way the frontend does it.

Widget values are positional in the order of the node's inputs (`/object_info` input_order); a widget with
`control_after_generate` (an INT named seed or noise_seed gets one unless its spec says otherwise) or an upload
button carries one more value after it. Notes (Note, MarkdownNote) exist only in the frontend and are skipped.
Muted, bypassed, reroute, primitive and subgraph nodes are not used by our workflows and are refused rather than
guessed.
"""
import json
from pathlib import Path

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
EXTRA_VALUE_FLAGS = ("control_after_generate", "image_upload", "video_upload", "audio_upload")
UPLOAD_FLAGS = EXTRA_VALUE_FLAGS[1:]
LEGACY_SEED_NAMES = ("seed", "noise_seed")  # the frontend gives these a control widget unless told otherwise
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
FRONTEND_ONLY = {"Note", "MarkdownNote"}
_MISSING = object()


def load_workflow(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def _is_widget(spec: list) -> bool:
    kind = spec[0]
    return isinstance(kind, list) or kind in WIDGET_TYPES


def widget_slots(info: dict) -> list[tuple[str, list, str]]:
    """The widget values the UI saves for a node of this /object_info entry, in order: (input name, its spec,
    "value" | "control" | "upload")."""
    slots = []
    for section in ("required", "optional"):
        for name in info["input_order"].get(section, []):
            spec = info["input"][section][name]
            if not _is_widget(spec):
                continue
            options = spec[1] if len(spec) > 1 else {}
            slots.append((name, spec, "value"))
            control = options.get("control_after_generate")
            if control is None and spec[0] == "INT":
                control = name in LEGACY_SEED_NAMES
            if control:
                slots.append((name, spec, "control"))
            if any(options.get(flag) for flag in UPLOAD_FLAGS):
                slots.append((name, spec, "upload"))
    return slots


def ui_to_api(workflow: dict, object_info: dict) -> dict:
    links = {link[0]: (str(link[1]), link[2]) for link in workflow["links"]}
    prompt = {}
    for node in workflow["nodes"]:
        if node["type"] in FRONTEND_ONLY:
            continue
        if node.get("mode", 0) != 0 or node["type"] not in object_info:
            raise ValueError(f"node {node['id']} ({node['type']}) is muted, bypassed or unknown; not supported here")
        info = object_info[node["type"]]
        linked = {i["name"]: links[i["link"]] for i in node.get("inputs", []) if i.get("link") is not None}
        values = iter(node.get("widgets_values", []))

        def next_value():
            value = next(values, _MISSING)
            if value is _MISSING:
                raise ValueError(f"node {node['id']} ({node['type']}) has fewer widget values than widgets")
            return value
        inputs = {}
        for name, _, kind in widget_slots(info):
            value = next_value()
            if kind == "value":
                inputs[name] = value
        inputs.update({name: list(source) for name, source in linked.items()})
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt


def node_of_type(prompt: dict, class_type: str) -> str:
    """The id of the only node of `class_type` in an API prompt."""
    ids = [k for k, v in prompt.items() if v["class_type"] == class_type]
    if len(ids) != 1:
        raise KeyError(f"expected one {class_type}, found {len(ids)}")
    return ids[0]
