"""Peak memory of FlowScore and WarpingError over a whole video against one RAFT pair, side by side in one run.

    python bench/bench_video_metrics.py                                  # CPU, 32 frames 256², raft_small
    python bench/bench_video_metrics.py --gpu --frames 64 --size 512 --large

I2V Video Metrics hands the video to RAFT one pair at a time (kernels/video_metrics.py), so measuring a video
should need the video itself (already held before the metrics start, not counted here) plus what one pair
needs, whatever the frame count: the printed ratio, whole video ÷ half of it, is about 1. The RAFT weights are
random in torchvision's real layout: memory does not depend on their values. On a GPU the peak is the allocator's;
on the CPU it is this process's resident memory, sampled (bench/harness.py's PeakMemory), with the C allocator's
mmap threshold fixed (the script restarts itself with MALLOC_MMAP_THRESHOLD_ set): by default glibc raises it
after each large free and keeps later tensors on its heap, and the resident memory would then grow with what it
keeps rather than with what is live.
"""
import argparse
import os
import runpy
import sys
import time
from pathlib import Path

if "--gpu" not in sys.argv and "MALLOC_MMAP_THRESHOLD_" not in os.environ:
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"})
runpy.run_path(str(Path(__file__).resolve().parents[1] / "standalone.py"))

import torch  # noqa: E402
from torchvision.models.optical_flow import raft_large, raft_small  # noqa: E402

from comfyui_i2v_adapter.bench.harness import PeakMemory  # noqa: E402
from comfyui_i2v_adapter.kernels.optical_flow import raft_flow  # noqa: E402
from comfyui_i2v_adapter.kernels.video_metrics import measure_motion  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", type=int, default=256, help="video width and height in pixels")
    parser.add_argument("--large", action="store_true", help="raft_large (the README's file) instead of raft_small")
    parser.add_argument("--gpu", action="store_true", help="run RAFT on the GPU (default: CPU)")
    args = parser.parse_args()

    device = torch.device("cuda" if args.gpu else "cpu")
    torch.manual_seed(0)
    raft = (raft_large if args.large else raft_small)(weights=None).eval().to(device)
    flow = raft_flow(raft, device)
    video = torch.rand(args.frames, args.size, args.size, 3)  # an IMAGE as ComfyUI passes it: on the CPU
    measure_motion(video[:2], flow)  # allocator and kernels warm before either measurement

    rows = []
    half = args.frames // 2
    for name, frames in (("one pair", video[:2]), (f"half the video ({half} frames)", video[:half]),
                         (f"whole video ({args.frames} frames)", video)):
        start = time.perf_counter()
        with PeakMemory(args.gpu) as peak:
            measure_motion(frames, flow)
        rows.append((name, peak.used, time.perf_counter() - start))

    print(f"FlowScore + WarpingError, {args.size}² on {device}, {'raft_large' if args.large else 'raft_small'}; "
          f"the video itself: {video.numel() * video.element_size() / 2**20:.1f} MB (not counted)")
    print("| measured | peak memory above the start | time |")
    print("|---|---|---|")
    for name, used, seconds in rows:
        print(f"| {name} | {used / 2**20:.1f} MB | {seconds:.1f} s |")
    print(f"whole video ÷ half of it: {rows[2][1] / max(rows[1][1], 1):.2f}× memory (1.00×: no memory per frame); "
          f"÷ one pair: {rows[2][1] / max(rows[0][1], 1):.2f}×")


if __name__ == "__main__":
    main()
