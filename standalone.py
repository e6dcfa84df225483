"""Import the pack as the package `comfyui_i2v_adapter` outside ComfyUI (scripts, benchmarks, tests).

ComfyUI imports the pack by its folder path. Our own entry points run this file first:
    runpy.run_path(<pack>/standalone.py)
so that `comfyui_i2v_adapter.kernels` and friends resolve their package-relative imports without the pack's
folder ever going on sys.path (where `nodes` or `kernels` would shadow ComfyUI's and PyPI's modules).
"""
import importlib.util
import sys
from pathlib import Path

PACKAGE = "comfyui_i2v_adapter"

if PACKAGE not in sys.modules:
    _root = Path(__file__).resolve().parent
    _spec = importlib.util.spec_from_file_location(PACKAGE, _root / "__init__.py", submodule_search_locations=[str(_root)])
    sys.modules[PACKAGE] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules[PACKAGE])
