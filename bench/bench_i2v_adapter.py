"""Step time and peak memory of KSampler with and without Apply I2V-Adapter, side by side in one run.

    COMFYUI_PATH=... python bench/bench_i2v_adapter.py                      # CPU, small sizes
    COMFYUI_PATH=... python bench/bench_i2v_adapter.py --gpu --frames 16 --size 512    # ComfyUI picks fp16

The model is a random-weight SD1.5 checkpoint with the real architecture (built once into --cache), the adapter
random too: speed and memory do not depend on the values. Runs alternate plain/adapter to cancel drift.
Targets: ≤ 1.15× time and ≤ 1.10× memory on a GPU at 16 frames 512² fp16; ≤ 1.30× time on the CPU.
"""
import runpy
import statistics
import time
from pathlib import Path

runpy.run_path(str(Path(__file__).resolve().parents[1] / "standalone.py"))

from comfyui_i2v_adapter.bench.harness import PeakMemory, bench_arguments, load_random_sd15  # noqa: E402


def main():
    args = bench_arguments(__doc__, frames=8)
    model, clip, _ = load_random_sd15(args.gpu, args.cache)

    import torch
    import nodes
    from comfyui_i2v_adapter.kernels.adapter_file import adapter_from_tensors
    from comfyui_i2v_adapter.kernels.first_frame_attention import I2VAdapter
    from comfyui_i2v_adapter.kernels.unet_layout import SD15
    from comfyui_i2v_adapter.nodes.i2v_adapter_patch import apply_i2v_adapter

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
        return seconds, memory.peak

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
