"""What the benchmarks share: the SD1.5 benchmarks' command line, peak-memory measurement, and ComfyUI (CPU unless
--gpu) with the random-weight SD1.5 checkpoint of the real architecture, built once into --cache."""
import argparse
import sys
import threading
import time
from pathlib import Path

import torch

CACHE = Path.home() / ".cache" / "comfyui-i2v-adapter-bench"


def bench_arguments(doc: str, frames: int, steps: int = 3) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=frames)
    parser.add_argument("--size", type=int, default=128, help="video width and height in pixels")
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each configuration")
    parser.add_argument("--gpu", action="store_true", help="run on the GPU (default: CPU)")
    parser.add_argument("--cache", type=Path, default=CACHE)
    return parser.parse_args()


class PeakMemory:
    """Peak GPU memory allocated over a block, or on the CPU the peak resident memory of this process above what
    it held when the block started (sampled every 5 ms)."""

    def __init__(self, gpu: bool):
        self.gpu = gpu

    def __enter__(self):
        if self.gpu:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
        else:
            import psutil
            self.process = psutil.Process()
            self.start = self.peak = self.process.memory_info().rss
            self.running = True
            self.thread = threading.Thread(target=self._poll, daemon=True)
            self.thread.start()
        return self

    def _poll(self):
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.005)

    def __exit__(self, *exc):
        if self.gpu:
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self.running = False
            self.thread.join()
        self.used = self.peak - self.start


def load_random_sd15(gpu: bool, cache: Path = CACHE):
    """(model, clip, vae) of the random SD1.5 checkpoint (built once into `cache`), loaded by ComfyUI."""
    from comfyui_i2v_adapter.tests.support.comfyui import NOT_FOUND, find_comfyui, import_comfyui
    comfyui = find_comfyui()
    if comfyui is None:
        sys.exit(NOT_FOUND.replace("tier-2 tests skipped", "the benchmark needs it"))
    if gpu:
        sys.path.insert(0, str(comfyui))
    else:
        import_comfyui(comfyui)

    import comfy.sd
    from comfyui_i2v_adapter.tests.support.random_models import write_random_sd15_checkpoint

    checkpoint = cache / "random_sd15.safetensors"
    if not checkpoint.exists():
        cache.mkdir(parents=True, exist_ok=True)
        write_random_sd15_checkpoint(checkpoint)
    return comfy.sd.load_checkpoint_guess_config(str(checkpoint))[:3]
