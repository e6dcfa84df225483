"""Two tiers: tier 1 needs torch only; tier 2 (marked `comfyui`) runs inside a real ComfyUI checkout and skips,
saying why, without one."""
import runpy
from pathlib import Path

import pytest
import torch

runpy.run_path(str(Path(__file__).resolve().parents[1] / "standalone.py"))

from comfyui_i2v_adapter.tests.support import official  # noqa: E402
from comfyui_i2v_adapter.tests.support.comfyui import NOT_FOUND, find_comfyui, import_comfyui  # noqa: E402

COMFYUI = find_comfyui()
OFFICIAL = official.find_official()


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


@pytest.fixture(scope="session")
def comfyui() -> Path:
    """ComfyUI imported in this process (CPU, fp32)."""
    import_comfyui(COMFYUI)
    return COMFYUI


@pytest.fixture(scope="session")
def comfy_base(tmp_path_factory, comfyui) -> Path:
    """A ComfyUI base directory (models/, input/, output/) holding the random models the tests build."""
    from comfyui_i2v_adapter.tests.support.random_models import write_random_sd15_checkpoint

    base = tmp_path_factory.mktemp("comfy_base")
    for folder in ("models/checkpoints", "models/i2v_adapter", "input", "output", "custom_nodes"):
        (base / folder).mkdir(parents=True)
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
def server(comfyui, comfy_base):
    """A ComfyUI server on comfy_base with the pack installed, and VideoHelperSuite when the checkout has it; the
    reference picture is in its input folder."""
    from PIL import Image
    from skimage import data

    from comfyui_i2v_adapter.tests.support.comfy_server import ComfyServer
    from comfyui_i2v_adapter.tests.support.custom_node_packs import VHS, pack_folder

    Image.fromarray(data.astronaut()).save(comfy_base / "input/reference.png")
    packs = tuple(folder for folder in [pack_folder(comfyui, VHS)] if folder)
    with ComfyServer(comfyui, comfy_base, packs) as running:
        yield running


@pytest.fixture
def seeded():
    torch.manual_seed(0)
