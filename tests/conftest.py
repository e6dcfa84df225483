"""Two tiers: tier 1 needs torch only; tier 2 (marked `comfyui`) runs inside a real ComfyUI checkout and skips,
saying why, without one."""
import runpy
import shutil
from pathlib import Path

import pytest
import torch

runpy.run_path(str(Path(__file__).resolve().parents[1] / "standalone.py"))

from comfyui_i2v_adapter.tests.support import official  # noqa: E402
from comfyui_i2v_adapter.tests.support.comfyui import NOT_FOUND, find_comfyui, import_comfyui  # noqa: E402

COMFYUI = find_comfyui()
OFFICIAL = official.find_official()
CALL_PASSED = pytest.StashKey[bool]()


def pytest_report_header(config):
    return [f"tier 2: ComfyUI at {COMFYUI}" if COMFYUI else f"tier 2: SKIPPED. {NOT_FOUND}",
            f"tier 3: the official release at {OFFICIAL[0]}, run by {OFFICIAL[1]}" if OFFICIAL
            else f"tier 3: SKIPPED. {official.NOT_FOUND}"]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if COMFYUI is None and "comfyui" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=NOT_FOUND))
        elif OFFICIAL is None and "official" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=official.NOT_FOUND))


def pytest_terminal_summary(terminalreporter):
    for missing, message in ((COMFYUI is None, NOT_FOUND), (OFFICIAL is None, official.NOT_FOUND)):
        if missing:
            terminalreporter.write_line(f"WARNING {message}", yellow=True, bold=True)


# The tests write gigabytes of random models: a passed test's folder goes as soon as its fixtures are torn down
# (a failed one's stays for reading), so the disk holds one test's files at a time, not the session's.
@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash[CALL_PASSED] = report.passed
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    folder = getattr(item, "funcargs", {}).get("tmp_path")
    yield
    if folder is not None and item.stash.get(CALL_PASSED, False):
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def module_tmp(request, tmp_path_factory) -> Path:
    """A folder for one test module's files, removed when the module is done."""
    folder = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def comfyui(tmp_path_factory) -> Path:
    """ComfyUI imported in this process (CPU, fp32), its folders (models/, input/, output/) in a base directory of
    the session's, never the checkout's: a user's ComfyUI with models and other packs changes no test."""
    import_comfyui(COMFYUI, tmp_path_factory.mktemp("comfy_base"))
    return COMFYUI


@pytest.fixture(scope="session")
def comfy_base(comfyui) -> Path:
    """The session's ComfyUI base directory, holding the random models the tests build."""
    import folder_paths

    from comfyui_i2v_adapter.tests.support.random_models import write_random_sd15_checkpoint

    base = Path(folder_paths.base_path)
    for folder in ("models/checkpoints", "models/i2v_adapter", "input", "output", "custom_nodes"):
        (base / folder).mkdir(parents=True, exist_ok=True)  # ComfyUI makes some when imported
    write_random_sd15_checkpoint(base / "models/checkpoints/random_sd15.safetensors")
    return base


@pytest.fixture(scope="session")
def sd15(comfy_base):
    """(model, clip, vae) of the random SD1.5 checkpoint, loaded by ComfyUI."""
    import comfy.sd

    return comfy.sd.load_checkpoint_guess_config(str(comfy_base / "models/checkpoints/random_sd15.safetensors"))[:3]


@pytest.fixture(scope="session")
def adapter_files(comfy_base) -> Path:
    """models/i2v_adapter with a random trained-looking SD1.5 adapter, an SDXL one, and a file that is no adapter."""
    from safetensors.torch import save_file

    from comfyui_i2v_adapter.kernels.adapter_file import write_adapter
    from comfyui_i2v_adapter.kernels.first_frame_attention import I2VAdapter
    from comfyui_i2v_adapter.kernels.unet_layout import SD15, SDXL

    folder = comfy_base / "models/i2v_adapter"
    for family, name in ((SD15, "random_i2v_sd15.safetensors"), (SDXL, "random_i2v_sdxl.safetensors")):
        torch.manual_seed(0)
        adapter = I2VAdapter(family, dtype=torch.float16)
        for p in adapter.parameters():
            torch.nn.init.normal_(p, std=0.02)
        write_adapter(folder / name, adapter.state_dict(), family)
    save_file({"down_blocks.0.motion_modules.0.temporal_transformer.proj_in.weight": torch.zeros(4, 4)},
              str(folder / "not_an_adapter.safetensors"))
    return folder


@pytest.fixture(scope="session")
def motion_files(comfy_base) -> dict:
    """Random SD1.5 motion modules in models/animatediff_models, one per layout: {layout: path}."""
    from comfyui_i2v_adapter.tests.support.random_models import write_random_motion_modules

    folder = comfy_base / "models/animatediff_models"
    folder.mkdir(exist_ok=True)
    return {layout: folder / name for layout, name in write_random_motion_modules(folder).items()}


@pytest.fixture(scope="session")
def look_back_file(comfy_base) -> Path:
    """Random (as if trained) SD1.5 look-back layers in models/look_back."""
    from comfyui_i2v_adapter.kernels.look_back import LookBackLayers
    from comfyui_i2v_adapter.kernels.look_back_file import write_look_back
    from comfyui_i2v_adapter.kernels.unet_layout import SD15

    torch.manual_seed(2)
    layers = LookBackLayers(SD15, depth=3, kernel=3, adapter_kernel=3)
    for p in layers.parameters():
        torch.nn.init.normal_(p, std=0.05)
    folder = comfy_base / "models/look_back"
    folder.mkdir(exist_ok=True)
    write_look_back(folder / "random_look_back_sd15.safetensors", layers)
    return folder / "random_look_back_sd15.safetensors"


@pytest.fixture(scope="session")
def ade(comfyui, comfy_base, motion_files):
    """AnimateDiff-Evolved from the checkout's custom_nodes, imported into this process; its models folder
    (models/animatediff_models) holds the random motion modules. Skips when the pack is not there."""
    from comfyui_i2v_adapter.tests.support.custom_node_packs import ADE, load_pack, missing, pack_folder

    if pack_folder(comfyui, ADE) is None:
        pytest.skip(missing(comfyui, ADE))
    load_pack(comfyui, ADE, comfy_base)
    return motion_files


@pytest.fixture(scope="session")
def official_files(comfy_base, motion_files) -> dict:
    """The official release's files with random weights, in their own layouts, where the recipe graph's loaders
    look: i2v_module.pth (a pickle) in models/i2v_adapter; the bundle animatediff_v15_v1_ipplus.pth's v1 motion
    modules and IP attention weights (without its 1.7 GB UNet) in models/animatediff_models; h94's IP-Adapter Plus
    in models/ipadapter; a CLIP ViT-H image encoder (632 M parameters, 1.3 GB, written once) in
    models/clip_vision. Returns {folder: path}."""
    from safetensors.torch import save_file

    from comfyui_i2v_adapter.kernels.unet_layout import SD15, cross_attention_layers
    from comfyui_i2v_adapter.tests.support.graphs import random_adapter
    from comfyui_i2v_adapter.tests.support.random_models import random_ip_adapter_plus, write_random_clip_vision_h
    from comfyui_i2v_adapter.tests.support.workflows import OFFICIAL_TEST_FILES, TEST_FILES

    models = comfy_base / "models"
    paths = {"i2v_adapter": models / "i2v_adapter" / OFFICIAL_TEST_FILES["adapter_name"],
             "animatediff_models": models / "animatediff_models" / OFFICIAL_TEST_FILES["motion_module_name"],
             "ipadapter": models / "ipadapter" / TEST_FILES["ipadapter_name"],
             "clip_vision": models / "clip_vision" / TEST_FILES["clip_name"]}
    for path in paths.values():
        path.parent.mkdir(exist_ok=True)
    torch.save(random_adapter(seed=11).state_dict, paths["i2v_adapter"])
    h94 = random_ip_adapter_plus(SD15)
    save_file(h94, str(paths["ipadapter"]))
    attn2 = [path for path, _ in cross_attention_layers(SD15)]
    ip = {f"{attn2[(int(k.split('.')[1]) - 1) // 2]}.{k.split('.', 2)[2]}": v.half()
          for k, v in h94.items() if k.startswith("ip_adapter.")}
    torch.save(torch.load(motion_files["v1"], weights_only=True)["state_dict"] | ip, paths["animatediff_models"])
    write_random_clip_vision_h(paths["clip_vision"])
    return paths


@pytest.fixture(scope="session")
def server(comfyui, comfy_base):
    """A ComfyUI server on comfy_base with the pack installed, and VideoHelperSuite when the checkout has it; the
    shipped graphs' inputs are in its input folder (the reference picture, the ControlNet graph's video)."""
    from PIL import Image
    from skimage import data

    from comfyui_i2v_adapter.tests.support.comfy_server import ComfyServer
    from comfyui_i2v_adapter.tests.support.custom_node_packs import VHS, pack_folder
    from comfyui_i2v_adapter.tests.support.videos import CLIPS, write_piece

    Image.fromarray(data.astronaut()).save(comfy_base / "input/reference.png")
    write_piece(CLIPS / "bikes.mp4", comfy_base / "input/control.mp4", 0, 20)
    packs = tuple(folder for folder in [pack_folder(comfyui, VHS)] if folder)
    with ComfyServer(comfyui, comfy_base, packs) as running:
        yield running


@pytest.fixture
def seeded():
    torch.manual_seed(0)
