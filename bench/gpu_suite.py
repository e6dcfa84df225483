"""Everything measured at real shapes on one GPU, side by side in one process, in one markdown table; and the same
cases at tiny sizes on the CPU every day, so that the suite never rots.

    COMFYUI_PATH=... python bench/gpu_suite.py                          # GPU: ≤ 8 minutes on an H200-class GPU
    COMFYUI_PATH=... python bench/gpu_suite.py --cpu-smoke --out /tmp   # CPU: < 4 minutes on 2 cores

Cases (sizes, repeats and time limits per mode: bench/suite/sizes.py): KSampler with and without the adapters;
look-back layers against motion modules; the recipe graph at three t0; a long video under context windows;
TorchCompileModel against eager; adapter-only training steps; the official release's own pipeline against our
recipe graph (where its environment is: bench/README.md). Within a case the runs alternate with its baseline;
times are medians after a warm-up; memory is what a run adds to what was resident when it started, and the
absolute peak. A case over its limit stops at the next safe point (between runs or sampler steps) and is reported
as timed out; a case that raises is an error row; the suite goes on either way and exits 1 after an error.
The table goes to bench/results/<GPU>-<date>.md (GPU) or a temporary folder (CPU smoke), or to --out.
"""
import argparse
import ctypes
import gc
import importlib
import os
import re
import runpy
import sys
import tempfile
import time
import traceback
from datetime import date
from pathlib import Path

STARTED = time.monotonic()
# On a busy CPU, OpenMP threads that spin while waiting slow the many small ops tenfold; set before torch starts.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
runpy.run_path(str(Path(__file__).resolve().parents[1] / "standalone.py"))

from comfyui_i2v_adapter.bench.suite.plan import Case, plan  # noqa: E402
from comfyui_i2v_adapter.bench.suite.report import ERROR, Row, table  # noqa: E402
from comfyui_i2v_adapter.bench.suite.sizes import CPU_SMOKE, GPU, Sizes  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def release() -> None:
    """What a finished case built goes, so that the next one starts from its own weights alone."""
    import comfy.model_management
    gc.collect()
    comfy.model_management.cleanup_models()
    comfy.model_management.unload_all_models()
    comfy.model_management.soft_empty_cache()
    trim_heap()


def trim_heap() -> None:
    """Give the system the heap that freed CPU tensors leave (glibc keeps it otherwise): the next case's resident
    memory, and this process's, stay what is really held."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def run_case(case: Case, models, seconds: float) -> list[Row]:
    from comfyui_i2v_adapter.bench.suite.measure import TimedOut, time_limit
    try:
        with time_limit(seconds) as deadline:
            module = importlib.import_module(f"comfyui_i2v_adapter.bench.suite.cases.{case.kind}")
            return module.run(models, deadline, case.title, **case.arguments)
    except TimedOut as e:
        return [Row(case.title, "", result=str(e))]
    except Exception as e:  # a broken case is a row; the others still run
        traceback.print_exc()
        return [Row(case.title, "", result=f"{ERROR}: {type(e).__name__}: {(str(e).splitlines() or [''])[0]}")]
    finally:
        release()


def run_suite(sizes: Sizes, cases: list[Case], comfyui: Path) -> list[Row]:
    """Each case under its limit, cut to what is left of the suite's total."""
    from comfyui_i2v_adapter.bench.suite.models import Models
    models, rows = Models(sizes, comfyui), []
    for case in cases:
        left = sizes.total_seconds - (time.monotonic() - STARTED)
        if left <= 0:
            rows.append(Row(case.title, "", result=f"skipped: the suite's {sizes.total_seconds} s are spent"))
            continue
        print(f"[{time.monotonic() - STARTED:5.0f} s] {case.title}", flush=True)
        rows += run_case(case, models, min(sizes.limits[case.kind], left))
    return rows


def device_name(sizes: Sizes) -> str:
    import torch
    return torch.cuda.get_device_name() if sizes.gpu else f"CPU ({os.cpu_count()} cores)"


def report(sizes: Sizes, rows: list[Row]) -> str:
    import comfyui_version
    import torch
    total = time.monotonic() - STARTED
    return "\n".join([
        f"# GPU suite, {sizes.mode}: {device_name(sizes)}, {date.today()}", "",
        f"{sizes.note} {str(sizes.dtype).removeprefix('torch.')}, torch {torch.__version__}, ComfyUI "
        f"{comfyui_version.__version__}. Total: {total:.0f} s (limit {sizes.total_seconds} s).", "",
        table(rows), "",
        f"Time: the median of {sizes.repeats} timed run(s) after a warm-up, runs alternating within a case; × is "
        f"against the case's first row (its baseline) or the row named. Memory added: the most a run allocated above "
        f"what was resident when it started (GPU: torch.cuda.max_memory_allocated; CPU: resident set). Peak: the "
        f"highest absolute peak, what was resident included.", ""])


def write(text: str, sizes: Sizes, out: Path | None) -> Path:
    folder = out or (RESULTS if sizes.gpu else Path(tempfile.mkdtemp(prefix="gpu-suite-")))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{re.sub(r'[^A-Za-z0-9.]+', '-', device_name(sizes)).strip('-')}-{date.today()}.md"
    path.write_text(text)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-smoke", action="store_true", help="the CPU smoke: tiny sizes, under 4 minutes")
    parser.add_argument("--out", type=Path, help="folder for the table (default: bench/results on a GPU, a "
                                                 "temporary folder for the CPU smoke)")
    parser.add_argument("--only", default="", help="run only the cases whose title contains this text")
    args = parser.parse_args()
    sizes = CPU_SMOKE if args.cpu_smoke else GPU

    from comfyui_i2v_adapter.bench.harness import start_comfyui
    comfyui = start_comfyui(sizes.gpu, pytorch_attention=True)
    rows = run_suite(sizes, [case for case in plan(sizes) if args.only in case.title], comfyui)
    text = report(sizes, rows)
    print("\n" + text)
    print(f"written to {write(text, sizes, args.out)}")
    sys.exit(1 if any(row.result.startswith(ERROR) for row in rows) else 0)


if __name__ == "__main__":
    main()
