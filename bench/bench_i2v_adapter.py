"""Step time and peak memory of KSampler with and without Apply I2V-Adapter, side by side in one run.

    COMFYUI_PATH=... python bench/bench_i2v_adapter.py                      # CPU, small sizes
    COMFYUI_PATH=... python bench/bench_i2v_adapter.py --gpu --frames 16 --size 512    # ComfyUI picks fp16

The model is a random-weight SD1.5 checkpoint with the real architecture (built once into --cache), the adapter
random too: speed and memory do not depend on the values. Runs alternate plain/adapter to cancel drift.
Targets: ≤ 1.15× time and ≤ 1.10× memory on a GPU at 16 frames 512² fp16; ≤ 1.30× time on the CPU.
"""
import argparse
import runpy
import statistics
import sys
import threading
import time
from pathlib import Path

runpy.run_path(str(Path(__file__).resolve().parents[1] / "standalone.py"))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=128, help="video width and height in pixels")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each configuration")
    parser.add_argument("--gpu", action="store_true", help="run on the GPU (default: CPU)")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "comfyui-i2v-adapter-bench")
    return parser.parse_args()


class PeakMemory:
    """Peak GPU memory allocated, or peak resident memory of this process on the CPU, over a block."""

    def __init__(self, gpu: bool):
        import psutil
        import torch
        self.gpu, self.torch, self.process = gpu, torch, psutil.Process()

    def __enter__(self):
        if self.gpu:
            self.torch.cuda.reset_peak_memory_stats()
        else:
            self.peak = self.process.memory_info().rss
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
            self.torch.cuda.synchronize()
            self.used = self.torch.cuda.max_memory_allocated()
        else:
            self.running = False
            self.thread.join()
            self.used = self.peak


def main():
    args = parse_args()
    from comfyui_i2v_adapter.tests.support.comfyui import NOT_FOUND, find_comfyui, import_comfyui
    comfyui = find_comfyui()
    if comfyui is None:
        sys.exit(NOT_FOUND.replace("tier-2 tests skipped", "the benchmark needs it"))
    if args.gpu:
        sys.path.insert(0, str(comfyui))
    else:
        import_comfyui(comfyui)

    import torch
    import comfy.sd
    import nodes
    from comfyui_i2v_adapter.kernels.adapter_file import adapter_from_tensors
    from comfyui_i2v_adapter.kernels.first_frame_attention import I2VAdapter
    from comfyui_i2v_adapter.kernels.unet_layout import SD15
    from comfyui_i2v_adapter.nodes.i2v_adapter_patch import apply_i2v_adapter
    from comfyui_i2v_adapter.tests.support.random_models import write_random_sd15_checkpoint

    checkpoint = args.cache / "random_sd15.safetensors"
    if not checkpoint.exists():
        args.cache.mkdir(parents=True, exist_ok=True)
        write_random_sd15_checkpoint(checkpoint)
    model, clip, _ = comfy.sd.load_checkpoint_guess_config(str(checkpoint))[:3]
    adapter = I2VAdapter(SD15)
    for p in adapter.parameters():
        torch.nn.init.normal_(p, std=0.02)
    size = args.size // 8
    reference = torch.randn(1, 4, size, size)
    latent = {"samples": torch.cat([reference, torch.zeros(args.frames - 1, 4, size, size)])}
    patched = apply_i2v_adapter(model, adapter_from_tensors(adapter.state_dict(), {}, "bench"), reference, 1.0)
    positive = nodes.CLIPTextEncode().encode(clip, "a bench")[0]
    negative = nodes.CLIPTextEncode().encode(clip, "")[0]

    def run(m):
        with PeakMemory(args.gpu) as memory:
            start = time.perf_counter()
            nodes.common_ksampler(m, 0, args.steps, 7.5, "euler", "normal", positive, negative, latent)
            if args.gpu:
                torch.cuda.synchronize()
            seconds = (time.perf_counter() - start) / args.steps
        return seconds, memory.used

    configs = {"plain": model, "I2V-Adapter": patched}
    for m in configs.values():
        run(m)  # warm-up: loading, allocator, kernels
    results = {name: [] for name in configs}
    for _ in range(args.repeats):
        for name, m in configs.items():
            results[name].append(run(m))

    device = torch.cuda.get_device_name() if args.gpu else "CPU"
    dtype = str(model.model_dtype()).removeprefix("torch.")
    print(f"\nKSampler, SD1.5 architecture, {args.frames} frames {args.size}², cfg batch 2, {dtype}, {device}, "
          f"median of {args.repeats}")
    memory = "peak GPU memory" if args.gpu else "peak RSS"
    print(f"{'':14}{'s/step':>10}{memory:>18}")
    summary = {name: (statistics.median(r[0] for r in runs), max(r[1] for r in runs)) for name, runs in results.items()}
    for name, (seconds, peak) in summary.items():
        print(f"{name:14}{seconds:10.3f}{peak / 2**20:14.0f} MiB")
    step_ratio, memory_ratio = (a / b for a, b in zip(summary["I2V-Adapter"], summary["plain"]))
    print(f"ratio (adapter / plain): step time {step_ratio:.3f}×, {memory} {memory_ratio:.3f}×")


if __name__ == "__main__":
    main()
