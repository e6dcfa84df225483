"""Cost of conditioning each frame on its state: KSampler step time with the per-frame CONDITIONING that Decompose
Prompt into States builds (4 states, blended) against one prompt for every frame, side by side in one run, and
the time to build that conditioning (CLIP encodings and blends) next to one CLIPTextEncode.

    COMFYUI_PATH=... python bench/bench_state_conditioning.py                       # CPU, small sizes
    COMFYUI_PATH=... python bench/bench_state_conditioning.py --gpu --frames 16 --size 512

The vision-language model's answer is not timed: it depends on the model and the device, and it runs once per
instruction (ComfyUI caches it). Runs alternate to cancel drift.
"""
import runpy
import statistics
import time
from pathlib import Path

runpy.run_path(str(Path(__file__).resolve().parents[1] / "standalone.py"))

from comfyui_i2v_adapter.bench.harness import bench_arguments, load_random_sd15  # noqa: E402

STATES = ["The astronaut stands still, holding the flag pole.", "The astronaut lifts the flag above the helmet.",
          "The astronaut waves the flag from side to side.", "The astronaut lowers the flag and smiles."]


def main():
    args = bench_arguments(__doc__, frames=16)
    model, clip, _ = load_random_sd15(args.gpu, args.cache)

    import torch
    import nodes
    from comfyui_i2v_adapter.kernels.state_schedule import frame_state_weights
    from comfyui_i2v_adapter.nodes.state_conditioning import per_frame_conditioning

    size = args.size // 8
    latent = {"samples": torch.zeros(args.frames, 4, size, size)}
    weights = frame_state_weights(args.frames, len(STATES), 2.0)
    negative = nodes.CLIPTextEncode().encode(clip, "")[0]

    def timed(function):
        start = time.perf_counter()
        result = function()
        if args.gpu:
            torch.cuda.synchronize()
        return time.perf_counter() - start, result

    build = {"one prompt": lambda: nodes.CLIPTextEncode().encode(clip, STATES[0])[0],
             "per-frame states": lambda: per_frame_conditioning(clip, STATES, weights)}
    positives = {name: make() for name, make in build.items()}  # warm-up: loading
    for positive in positives.values():
        nodes.common_ksampler(model, 0, args.steps, 7.5, "euler", "normal", positive, negative, latent)
    encode = {name: [] for name in build}
    step = {name: [] for name in build}
    for _ in range(args.repeats):
        for name, make in build.items():
            encode[name].append(timed(make)[0])
            seconds, _ = timed(lambda: nodes.common_ksampler(model, 0, args.steps, 7.5, "euler", "normal",
                                                             positives[name], negative, latent))
            step[name].append(seconds / args.steps)

    device = torch.cuda.get_device_name() if args.gpu else "CPU"
    dtype = str(model.model_dtype()).removeprefix("torch.")
    print(f"\nSD1.5 architecture, {args.frames} frames {args.size}², {len(STATES)} states, blend 2 frames, {dtype}, "
          f"{device}, median of {args.repeats}")
    print(f"{'':18}{'conditioning s':>16}{'KSampler s/step':>18}")
    summary = {name: (statistics.median(encode[name]), statistics.median(step[name])) for name in build}
    for name, (seconds, per_step) in summary.items():
        print(f"{name:18}{seconds:16.3f}{per_step:18.3f}")
    print(f"ratio (per-frame states / one prompt): KSampler step time "
          f"{summary['per-frame states'][1] / summary['one prompt'][1]:.3f}×")


if __name__ == "__main__":
    main()
