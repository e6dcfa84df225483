"""Two tiers: tier 1 needs torch only; tier 2 (marked `comfyui`) runs inside a real ComfyUI checkout and skips,
saying why, without one."""
import runpy
from pathlib import Path

import pytest
import torch

runpy.run_path(str(Path(__file__).resolve().parents[1] / "standalone.py"))

from comfyui_i2v_adapter.tests.support.comfyui import NOT_FOUND, find_comfyui, import_comfyui  # noqa: E402

COMFYUI = find_comfyui()


def pytest_report_header(config):
    return f"tier 2: ComfyUI at {COMFYUI}" if COMFYUI else f"tier 2: SKIPPED. {NOT_FOUND}"


def pytest_collection_modifyitems(config, items):
    if COMFYUI is None:
        for item in items:
            if "comfyui" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=NOT_FOUND))


def pytest_terminal_summary(terminalreporter):
    if COMFYUI is None:
        terminalreporter.write_line(f"WARNING {NOT_FOUND}", yellow=True, bold=True)


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
def server(comfyui, comfy_base):
    """A ComfyUI server on comfy_base with the pack installed; the reference picture is in its input folder."""
    from PIL import Image
    from skimage import data

    from comfyui_i2v_adapter.tests.support.comfy_server import ComfyServer

    Image.fromarray(data.astronaut()).save(comfy_base / "input/reference.png")
    with ComfyServer(comfyui, comfy_base) as running:
        yield running


@pytest.fixture
def seeded():
    torch.manual_seed(0)
