"""Look-back layers against AnimateDiff motion modules: time and peak memory of all of a UNet's temporal layers of
each kind for 16, 32 and 64 frames, side by side in one run, on the hidden states an SD1.5 UNet gives them.

    python bench/bench_temporal_layers.py                         # CPU, fp32, 128² video
    python bench/bench_temporal_layers.py --gpu --size 512        # CUDA, fp16

Targets: look-back time linear in frames (T(64)/T(16) ≤ 4.4), and below the motion modules' at 64 frames.
Weights are random (cost does not depend on them); the look-back layers use the paper's defaults (depth 5,
5×5, 3×3×3). The recurrence is sequential over frames by design; everything else runs batched.
"""
import argparse
import os
import runpy
import statistics
import time
from pathlib import Path

runpy.run_path(str(Path(__file__).resolve().parents[1] / "standalone.py"))
# On a busy CPU, OpenMP threads that spin while waiting slow the recurrence's many small ops tenfold; set before
# torch starts its thread pool.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from comfyui_i2v_adapter.kernels.look_back import LookBackLayers  # noqa: E402
from comfyui_i2v_adapter.kernels.motion_module import MotionModules  # noqa: E402
from comfyui_i2v_adapter.kernels.unet_layout import SD15, block_output_sites, motion_module_sites  # noqa: E402
from comfyui_i2v_adapter.bench.harness import PeakMemory, run_temporal_layers  # noqa: E402


def seconds(function, gpu: bool) -> float:
    with torch.no_grad():
        start = time.perf_counter()
        function()
        if gpu:
            torch.cuda.synchronize()
        return time.perf_counter() - start


def peak_memory(function, gpu: bool) -> int:
    """In a run of its own: on the CPU the memory poller's thread would slow the many small ops of the recurrence."""
    with PeakMemory(gpu) as memory, torch.no_grad():
        function()
    return memory.used


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128, help="video width and height in pixels")
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gpu", action="store_true", help="CUDA and fp16 (default: CPU, fp32)")
    args = parser.parse_args()
    device, dtype = (torch.device("cuda"), torch.float16) if args.gpu else (torch.device("cpu"), torch.float32)
    latent = args.size // 8

    kinds = {
        "look-back": (LookBackLayers(SD15).to(device, dtype), block_output_sites(SD15)),
        "motion modules": (MotionModules(SD15, max(args.frames), mid_block=True).to(device, dtype),
                           motion_module_sites(SD15, mid_block=True)),
    }
    for layers, _ in kinds.values():
        for p in layers.parameters():
            torch.nn.init.normal_(p, std=0.02)
    results = {}
    for frames in args.frames:
        for name, (layers, sites) in kinds.items():
            run = lambda: run_temporal_layers(layers, sites, frames, latent, device, dtype)
            memory = peak_memory(run, args.gpu)  # also the warm-up
            results[name, frames] = (statistics.median(seconds(run, args.gpu) for _ in range(args.repeats)), memory)

    where = torch.cuda.get_device_name() if args.gpu else "CPU"
    print(f"\nAll temporal layers of an SD1.5 UNet, one video {args.size}², {str(dtype).removeprefix('torch.')}, {where}, "
          f"median of {args.repeats}")
    memory = "GPU MiB" if args.gpu else "RSS+ MiB"
    print(f"{'frames':>8}" + "".join(f"{name + ' s':>18}{name[:9] + ' ' + memory:>20}" for name in kinds)
          + f"{'time look-back/motion':>24}")
    for frames in args.frames:
        row = "".join(f"{results[n, frames][0]:18.3f}{results[n, frames][1] / 2**20:20.0f}" for n in kinds)
        print(f"{frames:>8}{row}{results['look-back', frames][0] / results['motion modules', frames][0]:24.3f}")
    first, last = min(args.frames), max(args.frames)
    for name in kinds:
        print(f"{name}: T({last})/T({first}) = {results[name, last][0] / results[name, first][0]:.2f} "
              f"(linear: {last / first:.0f})")


if __name__ == "__main__":
    main()
