"""Import the pack as the package `comfyui_i2v_adapter` outside ComfyUI (scripts, benchmarks, tests).

ComfyUI imports the pack by its folder path. Our own entry points run this file first:
    runpy.run_path(<pack>/standalone.py)
so that `comfyui_i2v_adapter.kernels` and friends resolve their package-relative imports. It also takes the
pack's folders off sys.path, where Python puts them for `python -m pytest` (the working directory) or
`python training/train_adapter.py` (the script's folder): there our `kernels/` would shadow the `kernels`
distribution that transformers imports, and `nodes/` ComfyUI's `nodes` module.
"""
import importlib.util
import os
import sys
from pathlib import Path

PACKAGE = "comfyui_i2v_adapter"
_root = Path(__file__).resolve().parent


def _inside_pack(entry: str) -> bool:
    """The pack's folder or one of its own folders (not deeper: a virtual environment may live in it)."""
    path = Path(entry or os.getcwd()).resolve()
    return path == _root or path.parent == _root


sys.path[:] = [entry for entry in sys.path if not _inside_pack(entry)]
for _name in ("kernels", "nodes"):  # imported from the pack's folder before this ran: forget them
    _origin = getattr(sys.modules.get(_name), "__file__", None)
    if _origin and _inside_pack(str(Path(_origin).parent)):
        del sys.modules[_name]

if PACKAGE not in sys.modules:
    _spec = importlib.util.spec_from_file_location(PACKAGE, _root / "__init__.py", submodule_search_locations=[str(_root)])
    sys.modules[PACKAGE] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules[PACKAGE])
