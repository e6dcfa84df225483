"""UI-format workflows (what users share) to the API format `/prompt` runs, the way the frontend does it.

Widget values are positional in the order of the node's inputs (`/object_info` input_order); a widget with
`control_after_generate` or an upload button carries one more value after it. Muted, bypassed, reroute,
primitive and subgraph nodes are not used by our workflows and are refused rather than guessed.
"""
import json
from pathlib import Path

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
EXTRA_VALUE_FLAGS = ("control_after_generate", "image_upload", "video_upload", "audio_upload")
_MISSING = object()


def load_workflow(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def _is_widget(spec: list) -> bool:
    kind = spec[0]
    return isinstance(kind, list) or kind in WIDGET_TYPES


def ui_to_api(workflow: dict, object_info: dict) -> dict:
    links = {link[0]: (str(link[1]), link[2]) for link in workflow["links"]}
    prompt = {}
    for node in workflow["nodes"]:
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
        for section in ("required", "optional"):
            for name in info["input_order"].get(section, []):
                spec = info["input"][section][name]
                if _is_widget(spec):
                    inputs[name] = next_value()
                    if any((spec[1] if len(spec) > 1 else {}).get(flag) for flag in EXTRA_VALUE_FLAGS):
                        next_value()
                if name in linked:
                    inputs[name] = list(linked[name])
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt


def node_of_type(prompt: dict, class_type: str) -> str:
    """The id of the only node of `class_type` in an API prompt."""
    ids = [k for k, v in prompt.items() if v["class_type"] == class_type]
    if len(ids) != 1:
        raise KeyError(f"expected one {class_type}, found {len(ids)}")
    return ids[0]
