"""What installs the pack says the same everywhere, and the nodes need only requirements.txt."""
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

PACK = Path(__file__).resolve().parents[1]


def requirements(path: Path) -> set[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {line for line in lines if line}


def test_pyproject_lists_exactly_the_requirements_files():
    project = tomllib.loads((PACK / "pyproject.toml").read_text())["project"]
    assert set(project["dependencies"]) == requirements(PACK / "requirements.txt")
    assert set(project["optional-dependencies"]["training"]) == requirements(PACK / "training/requirements.txt")


def test_torch_is_never_pinned():
    for path in (PACK / "requirements.txt", PACK / "training/requirements.txt"):
        assert not any(re.match(r"torch\b", line) for line in requirements(path)), path


@pytest.mark.comfyui
def test_the_nodes_load_without_the_trainers_packages(comfyui):
    """In a process where accelerate (the trainer's one package that ComfyUI itself does not bring; av and tqdm
    are ComfyUI's requirements too) cannot be imported, ComfyUI loads the pack and lists its nodes."""
    probe = f"""
import asyncio, importlib.util, sys
sys.modules["accelerate"] = None  # import fails
sys.path.insert(0, {str(comfyui)!r})
from comfy.cli_args import args
args.cpu = True
spec = importlib.util.spec_from_file_location("comfyui_i2v_adapter_probe", {str(PACK / '__init__.py')!r},
                                              submodule_search_locations=[{str(PACK)!r}])
pack = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = pack
spec.loader.exec_module(pack)
extension = asyncio.run(pack.comfy_entrypoint())
print(len(asyncio.run(extension.get_node_list())))
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=comfyui)
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split()[-1]) >= 14


def test_the_registry_release_is_ready():
    """pyproject's [tool.comfy] names a publisher and the workflow publishes on a version change, with the token
    docs/publishing.md tells the owner to store."""
    comfy = tomllib.loads((PACK / "pyproject.toml").read_text())["tool"]["comfy"]
    assert comfy["PublisherId"] and comfy["DisplayName"]
    workflow = (PACK / ".github/workflows/publish.yml").read_text()
    assert "Comfy-Org/publish-node-action@v1" in workflow and "paths: [pyproject.toml]" in workflow
    assert "secrets.REGISTRY_ACCESS_TOKEN" in workflow
    assert "REGISTRY_ACCESS_TOKEN" in (PACK / "docs/publishing.md").read_text()
