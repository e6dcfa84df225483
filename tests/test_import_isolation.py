"""Tier 1: the pack's folders never shadow other modules. `python -m pytest` and `python training/...` put the pack
(or one of its folders) on sys.path; standalone.py takes them off, so `kernels` is the distribution transformers
imports and `nodes` is ComfyUI's."""
import importlib.machinery
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

PACK = Path(__file__).resolve().parents[1]


def _pack_folder(entry: str) -> bool:
    path = Path(entry or ".").resolve()
    return path == PACK or path.parent == PACK


def test_no_pack_folder_on_sys_path():
    assert [entry for entry in sys.path if _pack_folder(entry)] == []


@pytest.mark.parametrize("name", ["kernels", "nodes", "training", "tests"])
def test_top_level_names_do_not_resolve_into_the_pack(name):
    """Searched on sys.path itself: pytest's importlib mode registers the test folder as `tests` in sys.modules
    when the pack's folder name is no Python identifier (comfyui-i2v-adapter), which is pytest's, not a path."""
    spec = importlib.machinery.PathFinder.find_spec(name)
    origin = spec and (spec.origin or next(iter(spec.submodule_search_locations or []), None))
    assert origin is None or not _pack_folder(str(Path(origin).parent)), f"'import {name}' finds {origin}"


def test_installed_kernels_distribution_wins():
    try:
        importlib.metadata.distribution("kernels")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the kernels distribution is not installed here (transformers before 5.x does not need it)")
    import kernels
    assert "site-packages" in kernels.__file__ or "dist-packages" in kernels.__file__, kernels.__file__


def test_a_process_started_in_the_pack_imports_the_real_kernels():
    """`python -c` puts the working directory first on sys.path, as `python -m pytest` does: once standalone.py
    ran, no pack folder is left there and transformers' activations (which import `kernels` on transformers 5)
    load."""
    probe = ("import runpy, sys; runpy.run_path('standalone.py'); "
             "from pathlib import Path; root = Path('.').resolve(); "
             "bad = [p for p in sys.path if Path(p or '.').resolve() in (root, *[c for c in root.iterdir()])]; "
             "import transformers.activations; print('shadowed' if bad else 'clean')")
    assert subprocess.run([sys.executable, "-c", probe], cwd=PACK, capture_output=True, text=True,
                          check=True).stdout.strip() == "clean"


@pytest.mark.parametrize("script", ["training/train_adapter.py", "training/convert_official_i2v.py"])
def test_scripts_run_from_their_folder_on_sys_path(script):
    """Python puts a script's folder first on sys.path: training/ holds no module that shadows what it imports."""
    subprocess.run([sys.executable, script, "--help"], cwd=PACK, capture_output=True, check=True)
