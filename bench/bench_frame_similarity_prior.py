"""End-to-end sampling time with the Frame Similarity Prior at t0 = 1.0, 0.8, 0.6, side by side in one run.

    COMFYUI_PATH=... python bench/bench_frame_similarity_prior.py                     # CPU, 8 frames 128², 5 steps
    COMFYUI_PATH=... python bench/bench_frame_similarity_prior.py --gpu --frames 16 --size 512 --steps 25

Each run is the prior node (encode, degrade) then KSampler with Apply I2V-Adapter, DDIM on ddim_uniform as the
official release, fed the node's steps and denoise: of the --steps of the full schedule, round(steps·t0) run.
The model is a random-weight SD1.5 checkpoint with the real architecture (built once into --cache), the adapter
random too: time does not depend on the values. Runs alternate between the t0 values to cancel drift.
Expected: time ∝ steps run.
"""
import runpy
import statistics
import sys
import time
from pathlib import Path

runpy.run_path(str(Path(__file__).resolve().parents[1] / "standalone.py"))

from comfyui_i2v_adapter.bench.harness import bench_arguments, load_random_sd15  # noqa: E402

T0S = (1.0, 0.8, 0.6)


def main():
    args = bench_arguments(__doc__, frames=8, steps=5)
    model, clip, vae = load_random_sd15(args.gpu, args.cache)

    import torch
    import nodes
    from comfyui_i2v_adapter.nodes.frame_similarity_prior import FrameSimilarityPrior
    from comfyui_i2v_adapter.nodes.i2v_adapter_patch import apply_i2v_adapter
    from comfyui_i2v_adapter.tests.support.graphs import random_adapter
    from comfyui_i2v_adapter.tests.support.images import astronaut

    adapter = random_adapter()
    positive = nodes.CLIPTextEncode().encode(clip, "a bench")[0]
    negative = nodes.CLIPTextEncode().encode(clip, "")[0]
    image = astronaut()

    def run(t0):
        with torch.inference_mode():
            start = time.perf_counter()
            latent, steps, denoise = FrameSimilarityPrior.execute(
                vae, image, args.frames, args.size, args.size, args.steps, t0, 0.5, 9, 18.0, "latent", 0).result
            patched = apply_i2v_adapter(model, adapter, latent["samples"], 1.0)
            nodes.common_ksampler(patched, 0, steps, 7.5, "ddim", "ddim_uniform", positive, negative, latent,
                                  denoise=denoise)
            if args.gpu:
                torch.cuda.synchronize()
            return steps, time.perf_counter() - start

    run(T0S[-1])  # warm-up: loading, allocator, kernels
    results = {t0: [] for t0 in T0S}
    for _ in range(args.repeats):
        for t0 in T0S:
            results[t0].append(run(t0))

    device = torch.cuda.get_device_name() if args.gpu else "CPU"
    dtype = str(model.model_dtype()).removeprefix("torch.")
    print(f"\nFrame Similarity Prior + I2V-Adapter + KSampler (ddim, ddim_uniform, {args.steps}-step schedule), SD1.5 "
          f"architecture, {args.frames} frames {args.size}², cfg batch 2, {dtype}, {device}, median of {args.repeats}")
    print(f"{'t0':>5}{'steps run':>11}{'seconds':>10}{'time / t0=1':>13}{'steps / t0=1':>14}")
    base_steps, base_seconds = results[1.0][0][0], statistics.median(s for _, s in results[1.0])
    seconds = {}
    for t0, runs in results.items():
        steps, seconds[t0] = runs[0][0], statistics.median(s for _, s in runs)
        print(f"{t0:5.1f}{steps:11d}{seconds[t0]:10.2f}{seconds[t0] / base_seconds:12.3f}×{steps / base_steps:13.3f}×")
    falls = all(seconds[a] > seconds[b] for a, b in zip(T0S, T0S[1:]))
    print(f"time falls with the step count: {'yes' if falls else 'NO'}")
    if not falls:
        sys.exit(1)


if __name__ == "__main__":
    main()
