"""Each addition of the pack against its floor: the FLOPs and bytes its maths needs at one size (analytic, every
site of an SD1.5 UNet), beside the time and memory it takes, measured in one run.

    python bench/floor.py                                          # CPU, fp32: one video of 16 frames at 128²
    python bench/floor.py --gpu --size 512 --frames 16 --videos 2  # a GPU, fp16: the CFG batch at 512²

The machine's own rates are measured first (a large matmul for FLOP/s, a large copy for bytes/s); an addition's
floor time is max(FLOPs / FLOP rate, bytes / byte rate), its bytes the inputs read once, the outputs written once
and the weights. `time ÷ floor` is how far the code runs above that floor (1 = at it); `memory ÷ floor` (GPU only)
compares the memory it adds at its peak with the output it must make. GroupNorm across frames is also printed
against the per-frame GroupNorm it replaces, which has the same floor.
"""
import argparse
import os
import runpy
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning OpenMP threads slow small ops on a busy CPU
runpy.run_path(str(Path(__file__).resolve().parents[1] / "standalone.py"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from comfyui_i2v_adapter.bench.harness import PeakMemory, hidden_side  # noqa: E402
from comfyui_i2v_adapter.kernels.content_adapter import image_attention  # noqa: E402
from comfyui_i2v_adapter.kernels.first_frame_attention import FirstFrameBranch  # noqa: E402
from comfyui_i2v_adapter.kernels.frame_group_norm import VideoBatch, across_frames  # noqa: E402
from comfyui_i2v_adapter.kernels.look_back import LookBackLayer  # noqa: E402
from comfyui_i2v_adapter.kernels.motion_module import MotionModule  # noqa: E402
from comfyui_i2v_adapter.kernels.unet_layout import (SD15, block_output_sites, cross_attention_layers,  # noqa: E402
                                                     motion_module_sites, self_attention_layers)

HEADS = 8                 # SD1.5's attention heads
IMAGE_TOKENS = 16         # the Content-Adapter's (IP-Adapter Plus)
CONDITION_TOKENS = 77     # the DQFormer's queries (AID, Table 8)


@dataclass
class Addition:
    name: str
    run: Callable[[], object]  # the addition at every site, once
    flops: float
    bytes: float
    output_bytes: float        # what it must hold at its peak: its output


def _sites(layers, latent):
    return [(path, channels, hidden_side(path, latent)) for path, channels in layers]


def additions(frames: int, videos: int, latent: int, device, dtype) -> list[Addition]:
    """Each addition at every SD1.5 site, on random inputs of the real shapes."""
    e, batch = torch.finfo(dtype).bits // 8, videos * frames
    make = lambda *shape: torch.randn(*shape, device=device, dtype=dtype)
    found = []

    def add(name, calls, flops, moved, out):
        found.append(Addition(name, lambda: [call() for call in calls], flops, moved * e, out * e))

    # I2V-Adapter: W'_Q, one attention of every frame against frame 0's keys and values (views), W'_O.
    calls, flops, moved, out = [], 0, 0, 0
    for _, c, s in _sites(self_attention_layers(SD15), latent):
        n, branch = s * s, FirstFrameBranch(c).to(device, dtype)
        x, k0, v0 = make(batch, n, c), make(videos, n, c), make(videos, n, c)
        calls.append(lambda b=branch, x=x, k=k0, v=v0: b(x, k, v, frames, HEADS))
        flops += 4 * batch * n * c * c + 4 * batch * n * n * c
        moved += 2 * batch * n * c + 2 * videos * n * c + 2 * c * c
        out += batch * n * c
    add("I2V-Adapter branch", calls, flops, moved, out)

    # Content-Adapter and DQFormer: one small attention per attn2 over cached keys and values, added in place.
    for name, tokens, per_frame in (("Content-Adapter", IMAGE_TOKENS, False), ("DQFormer", CONDITION_TOKENS, True)):
        calls, flops, moved, out = [], 0, 0, 0
        for _, c, s in _sites(cross_attention_layers(SD15), latent):
            n, kv = s * s, (batch if per_frame else videos)
            q, o, k, v = make(batch, n, c), make(batch, n, c), make(kv, tokens, c), make(kv, tokens, c)
            attend = ((lambda q=q, k=k, v=v: F.scaled_dot_product_attention(
                *(t.unflatten(-1, (HEADS, -1)).transpose(1, 2) for t in (q, k, v))).transpose(1, 2).flatten(2))
                      if per_frame else (lambda q=q, k=k, v=v: image_attention(q, k, v, HEADS)))
            calls.append(lambda o=o, attend=attend: o.add_(attend()))
            flops += 4 * batch * n * tokens * c
            moved += 3 * batch * n * c + 2 * kv * tokens * c
        add(name, calls, flops, moved, 0)  # in place: adds no memory at its floor

    # Motion modules: proj_in, two temporal attentions, the GEGLU feed-forward and proj_out per site.
    for version, mid in (("v1", False), ("v3", True)):
        calls, flops, moved, out = [], 0, 0, 0
        for _, c, s in _sites(motion_module_sites(SD15, mid), latent):
            n, module = s * s, MotionModule(c, max(frames, 32)).to(device, dtype)
            x = make(batch, c, s, s)
            calls.append(lambda m=module, x=x: m(x, frames, 0.8))
            flops += 44 * batch * n * c * c + 8 * batch * n * frames * c
            moved += 2 * batch * n * c + 22 * c * c
            out += batch * n * c
        add(f"motion modules {version}", calls, flops, moved, out)

    # GroupNorm across frames (AnimateDiff v1): two reads and one write, as the per-frame norm it replaces.
    video_batch, calls, plain_calls, moved = VideoBatch(), [], [], 0
    video_batch.videos = videos
    for _, c, s in _sites(block_output_sites(SD15), latent):
        norm = torch.nn.GroupNorm(32, c, eps=1e-6).to(device, dtype)
        view, x = across_frames(norm, video_batch), make(batch, c, s, s)
        calls += [lambda view=view, x=x: view(x)] * 2  # in_layers' and out_layers' norms of a ResNet block
        plain_calls += [lambda norm=norm, x=x: norm(x)] * 2
        moved += 2 * 3 * batch * c * s * s
    add("GroupNorm across frames", calls, 2 * moved / 3, moved, moved / 3)
    add("GroupNorm per frame (host's)", plain_calls, 2 * moved / 3, moved, moved / 3)

    # Look-back layers (paper defaults): own and past look-back convolutions, channel mix, 3D adapter.
    calls, flops, moved, out = [], 0, 0, 0
    for _, c, s in _sites(block_output_sites(SD15), latent):
        layer, x = LookBackLayer(c).to(device, dtype), make(batch, c, s, s)
        for p in layer.parameters():
            torch.nn.init.normal_(p, std=0.02)
        calls.append(lambda layer=layer, x=x: layer(x, frames))
        k, d, a = 5, layer.depth, 3
        flops += 2 * batch * s * s * c * (d * k * k + c + a ** 3)
        moved += 2 * batch * s * s * c + c * (d * k * k + c + a ** 3)
        out += batch * s * s * c
    add("look-back layers", calls, flops, moved, out)
    return found


def rates(device, dtype, gpu: bool) -> tuple[float, float]:
    """(FLOP/s of a large matmul, bytes/s of a large copy) on this machine, in `dtype`."""
    side, elements = (8192, 2 ** 28) if gpu else (1024, 2 ** 24)
    a, b = torch.randn(side, side, device=device, dtype=dtype), torch.randn(side, side, device=device, dtype=dtype)
    x = torch.empty(elements, device=device, dtype=dtype)
    flop_s = 2 * side ** 3 / seconds(lambda: a @ b, gpu, 5)
    byte_s = 2 * x.numel() * x.element_size() / seconds(lambda: x.clone(), gpu, 5)
    return flop_s, byte_s


def seconds(function, gpu: bool, repeats: int) -> float:
    """Median wall time after a warm-up."""
    with torch.no_grad():
        function()
        times = []
        for _ in range(repeats):
            if gpu:
                torch.cuda.synchronize()
            start = time.perf_counter()
            function()
            if gpu:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(frames: int, videos: int, size: int, repeats: int, gpu: bool) -> tuple[list[dict], tuple[float, float]]:
    device, dtype = (torch.device("cuda"), torch.float16) if gpu else (torch.device("cpu"), torch.float32)
    flop_s, byte_s = rates(device, dtype, gpu)
    rows = []
    for addition in additions(frames, videos, size // 8, device, dtype):
        taken, used = seconds(addition.run, gpu, repeats), None
        if gpu:  # a CPU process's resident memory hides what the allocator reuses: no figure there
            with PeakMemory(gpu) as memory, torch.no_grad():
                addition.run()
            used = memory.used / 2 ** 20
        floor = max(addition.flops / flop_s, addition.bytes / byte_s)
        rows.append(dict(name=addition.name, gflop=addition.flops / 1e9, mb=addition.bytes / 2 ** 20,
                         floor_ms=floor * 1e3, ms=taken * 1e3, time_ratio=taken / floor, memory_mb=used,
                         output_mb=addition.output_bytes / 2 ** 20))
    return rows, (flop_s, byte_s)


def table(rows: list[dict]) -> list[str]:
    lines = ["| addition | GFLOP | floor MiB moved | floor ms | ms | time ÷ floor | memory MiB | memory ÷ floor |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["memory_mb"] is None:
            memory, memory_ratio = "—", "—"
        else:
            memory = f"{r['memory_mb']:.1f}"
            memory_ratio = f"{r['memory_mb'] / r['output_mb']:.2f}" if r["output_mb"] else "in place"
        lines.append(f"| {r['name']} | {r['gflop']:.2f} | {r['mb']:.1f} | {r['floor_ms']:.2f} | {r['ms']:.2f} | "
                     f"{r['time_ratio']:.2f} | {memory} | {memory_ratio} |")
    by_name = {r["name"]: r for r in rows}
    across, plain = by_name["GroupNorm across frames"], by_name["GroupNorm per frame (host's)"]
    lines.append(f"\nGroupNorm across frames ÷ per frame: {across['ms'] / plain['ms']:.2f}× time")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128, help="video width and height in pixels")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--videos", type=int, default=1, help="videos per UNet call (2 under CFG)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--gpu", action="store_true", help="CUDA and fp16 (default: CPU, fp32)")
    args = parser.parse_args()
    rows, (flop_s, byte_s) = measure(args.frames, args.videos, args.size, args.repeats, args.gpu)
    where = torch.cuda.get_device_name() if args.gpu else f"CPU ({torch.get_num_threads()} threads)"
    print(f"Every SD1.5 site, {args.videos} video(s) of {args.frames} frames at {args.size}², "
          f"{'fp16' if args.gpu else 'fp32'}, {where}: {flop_s / 1e12:.2f} TFLOP/s, {byte_s / 1e9:.1f} GB/s "
          f"measured; median of {args.repeats}\n")
    print("\n".join(table(rows)))


if __name__ == "__main__":
    main()
