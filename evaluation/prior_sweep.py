"""The I2V-Adapter paper's Table 2 on your picture, prompt and models: the official recipe with I2V Video Metrics
(workflows/i2v_metrics.json), run by a running ComfyUI server over t0 at p = 1 and over p at t0 = 1, as the paper
varies them. Writes sweep.md (the table, the paper's numbers beside), sweep.png (CLIPTemp, FlowScore and
WarpingError against t0 and p) and sweep.json; the videos are saved by the server in output/prior_sweep/.

    python evaluation/prior_sweep.py --image picture.png --prompt "a cat turns its head" --out sweep

The server (--server, default http://127.0.0.1:8188) needs the graph's files (docs/metrics.md); --image is a file in
its input folder, as Load Image lists them. --set changes any widget of the graph, e.g.
--set CheckpointLoaderSimple.ckpt_name=my_sd15.safetensors; --size, --frames and --steps the video.
"""
import argparse
import copy
import json
import os
import runpy
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    runpy.run_path(str(Path(__file__).resolve().parents[1] / "standalone.py"))

from comfyui_i2v_adapter.evaluation.comfy_client import ComfyClient  # noqa: E402
from comfyui_i2v_adapter.evaluation.sweep_report import SweepRow, markdown_table, plot  # noqa: E402
from comfyui_i2v_adapter.evaluation.workflow_api import load_workflow, node_of_type, ui_to_api  # noqa: E402

GRAPH = Path(__file__).resolve().parents[1] / "workflows" / "i2v_metrics.json"
T0S = (1.0, 0.9, 0.8, 0.7, 0.6)
PS = (0.9, 0.7, 0.5, 0.3, 0.1)
FIXED = 1.0  # the paper varies t0 at p = 1 and p at t0 = 1
PRIOR, METRICS = "I2V_FrameSimilarityPrior", "I2V_VideoMetrics"
METRICS_KEY = "i2v_metrics"  # where I2V Video Metrics puts its numbers in the prompt's history (nodes/)


def widget_value(text: str):
    """--set's value: a number or true/false as JSON reads it, anything else as text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_settings(prompt: dict, settings: list[str]) -> None:
    """NodeType.input=value for every node of that type; a type or input the graph lacks is an error."""
    for setting in settings:
        target, _, value = setting.partition("=")
        class_type, _, name = target.partition(".")
        nodes = [node for node in prompt.values() if node["class_type"] == class_type]
        if not value or not nodes or any(name not in node["inputs"] for node in nodes):
            raise SystemExit(f"--set {setting}: expected NodeType.input=value with a node type and widget of "
                             f"{GRAPH.name}; its types: {sorted({n['class_type'] for n in prompt.values()})}")
        for node in nodes:
            node["inputs"][name] = widget_value(value)


def positive_prompt(prompt: dict) -> dict:
    """The CLIPTextEncode whose conditioning the sampler takes as positive."""
    source, _ = prompt[node_of_type(prompt, "KSampler")]["inputs"]["positive"]
    return prompt[source]["inputs"]


def template(client: ComfyClient, args) -> dict:
    prompt = ui_to_api(load_workflow(GRAPH), client.object_info())
    prompt[node_of_type(prompt, "LoadImage")]["inputs"]["image"] = args.image
    positive_prompt(prompt)["text"] = args.prompt
    prior = prompt[node_of_type(prompt, PRIOR)]["inputs"]
    for name, value in (("width", args.size), ("height", args.size), ("frames", args.frames), ("steps", args.steps)):
        if value is not None:
            prior[name] = value
    apply_settings(prompt, args.set)
    return prompt


def run_one(client: ComfyClient, prompt: dict, t0: float, p: float, varied: str, timeout: float) -> SweepRow:
    prompt = copy.deepcopy(prompt)
    prompt[node_of_type(prompt, PRIOR)]["inputs"].update(t0=t0, p=p)
    prompt[node_of_type(prompt, "SaveVideo")]["inputs"]["filename_prefix"] = f"prior_sweep/t0_{t0:.2f}_p_{p:.2f}"
    start = time.monotonic()
    entry = client.run(prompt, timeout)
    [metrics] = entry["outputs"][node_of_type(prompt, METRICS)][METRICS_KEY]
    return SweepRow(t0, p, varied, metrics, time.monotonic() - start)


def write(path: Path, text: str) -> None:
    """To a temporary name, then renamed: an earlier sweep's file is never left half written."""
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(text)
    os.replace(temporary, path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default="http://127.0.0.1:8188", help="the running ComfyUI's address")
    parser.add_argument("--image", required=True, help="the picture: a file in the server's input folder")
    parser.add_argument("--prompt", required=True, help="what the picture does")
    parser.add_argument("--out", type=Path, default=Path("prior_sweep"), help="folder for sweep.md/.png/.json")
    parser.add_argument("--t0", type=float, nargs="+", default=T0S, help=f"t0 values at p = 1 (default {T0S})")
    parser.add_argument("--p", type=float, nargs="+", default=PS, help=f"p values at t0 = 1 (default {PS})")
    parser.add_argument("--size", type=int, help="width and height in pixels (default: the graph's 512)")
    parser.add_argument("--frames", type=int, help="frames (default: the graph's 16)")
    parser.add_argument("--steps", type=int, help="the full schedule's DDIM steps (default: the graph's 25)")
    parser.add_argument("--set", action="append", default=[], metavar="NodeType.input=value",
                        help="change a widget of every node of that type (repeatable)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds each video may take")
    args = parser.parse_args(argv)

    client = ComfyClient(args.server)
    prompt = template(client, args)
    runs = [(t0, FIXED, "t0") for t0 in args.t0] + [(FIXED, p, "p") for p in args.p]
    rows = []
    for i, (t0, p, varied) in enumerate(runs):
        print(f"[{i + 1}/{len(runs)}] t0 {t0:.2f}, p {p:.2f}", flush=True)
        rows.append(run_one(client, prompt, t0, p, varied, args.timeout))
        print(f"    {rows[-1].metrics}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    write(args.out / "sweep.md", markdown_table(rows) + "\n")
    write(args.out / "sweep.json", json.dumps([row.__dict__ for row in rows], indent=1))
    plot(rows, args.out / "sweep.png")
    print(markdown_table(rows))
    print(f"written to {args.out}/sweep.md, sweep.png, sweep.json", file=sys.stderr)


if __name__ == "__main__":
    main()
