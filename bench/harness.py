"""What the benchmarks share: the SD1.5 benchmarks' command line, peak-memory measurement, ComfyUI in this process
(CPU unless --gpu) with the random-weight SD1.5 checkpoint of the real architecture, built once into --cache, a
timed run of the trainer, and the temporal layers run on the hidden states an SD1.5 UNet gives them."""
import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

CACHE = Path.home() / ".cache" / "comfyui-i2v-adapter-bench"
TRAINING_CONFIGURATIONS = {"plain": dict(), "cached latents": dict(cache_latents=True),
                           "checkpointing": dict(gradient_checkpointing=True),
                           "cached + checkpointing": dict(cache_latents=True, gradient_checkpointing=True)}


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


def start_comfyui(gpu: bool, pytorch_attention: bool = False) -> Path:
    """ComfyUI imported in this process, on the GPU or (as tier 2) on the CPU. `pytorch_attention`: PyTorch's SDPA
    on the CPU too, the attention ComfyUI runs on GPUs (its CPU default reads the free memory at every call, which
    torch.compile cannot trace)."""
    from comfyui_i2v_adapter.tests.support.comfyui import NOT_FOUND, find_comfyui, import_comfyui
    comfyui = find_comfyui()
    if comfyui is None:
        sys.exit(NOT_FOUND.replace("tier-2 tests skipped", "the benchmark needs it"))
    sys.path.insert(0, str(comfyui))
    from comfy.cli_args import args
    args.use_pytorch_cross_attention = args.use_pytorch_cross_attention or pytorch_attention
    if gpu:
        import comfy.model_management  # noqa: F401  (chooses the device now)
    else:
        import_comfyui(comfyui)
    return comfyui


def load_random_sd15(gpu: bool, cache: Path = CACHE):
    """(model, clip, vae) of the random SD1.5 checkpoint (built once into `cache`), loaded by ComfyUI."""
    start_comfyui(gpu)
    import comfy.sd
    from comfyui_i2v_adapter.tests.support.random_models import write_random_sd15_checkpoint

    checkpoint = cache / "random_sd15.safetensors"
    if not checkpoint.exists():
        cache.mkdir(parents=True, exist_ok=True)
        write_random_sd15_checkpoint(checkpoint)
    return comfy.sd.load_checkpoint_guess_config(str(checkpoint))[:3]


def time_training(base, clips, size: int, steps: int, configuration: dict, gpu: bool, mixed_precision: str,
                  workers: int) -> tuple[list[float], PeakMemory]:
    """Train the I2V-Adapter alone on `clips` (size² pixels) for one warm-up step and `steps` timed ones, in a run
    folder thrown away after: the timed steps' seconds, and the memory over the whole call (which includes the
    caching pass of `cache_latents`, and the checkpoint and file written at the end)."""
    from comfyui_i2v_adapter.training.trainer import TrainConfig, train

    with tempfile.TemporaryDirectory() as folder:
        config = TrainConfig(train=("i2v_adapter",), outputs={"i2v_adapter": Path(folder) / "a.safetensors"},
                             run_dir=Path(folder), frames=clips.frames, stride=1, width=size, height=size,
                             steps=1 + steps, workers=workers, mixed_precision=mixed_precision, progress=False,
                             log_every=1,  # a read per step: per-step times
                             checkpoint_every=10 ** 9, **configuration)
        with PeakMemory(gpu) as memory:
            result = train(config, base, clips, log=lambda *_: None)
    return result.step_seconds[1:], memory


def hidden_side(site: str, latent: int) -> int:
    """Side of the hidden states a temporal layer sees in an SD1.5 UNet (4 levels). A motion module sits inside
    level i at latent/2^i (up block j is level 3-j). A look-back layer sits at a block's output: after the
    downsampler of down levels 0-2, after the upsampler of up blocks 0-2."""
    parts = site.split(".")
    if parts[0] == "mid_block":
        return latent // 8
    level = int(parts[1]) if parts[0] == "down_blocks" else 3 - int(parts[1])
    at_output = len(parts) == 2 and int(parts[1]) < 3
    shift = {"down_blocks": level + at_output, "up_blocks": level - at_output}[parts[0]]
    return latent >> shift


def run_temporal_layers(layers, sites, frames: int, latent: int, device, dtype) -> None:
    """Every layer of `sites` ((path, channels) in `layers`) on random hidden states of one video of `frames`."""
    for site, channels in sites:
        side = hidden_side(site, latent)
        layers.get_submodule(site)(torch.randn(frames, channels, side, side, device=device, dtype=dtype), frames)
