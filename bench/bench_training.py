"""Training cost of the I2V-Adapter on the SD1.5 architecture (random weights, loaded by the trainer from the
single-file checkpoint): step time and peak memory per clip size, with and without the latent cache
(--cache-latents) and gradient checkpointing, side by side in one run.

    COMFYUI_PATH=... python bench/bench_training.py                                    # CPU, small sizes
    COMFYUI_PATH=... python bench/bench_training.py --gpu --frames 16 --sizes 256 512  # fp16 on a GPU

ComfyUI is needed only to build the random checkpoint in the layout users have and for CLIP's tokenizer files.
Each configuration runs in a fresh process. Peak memory: GPU memory allocated, the base included (GPU), or resident
memory above the loaded base (CPU); it includes the caching pass, which encodes one clip at a time.
"""
import argparse
import json
import os
import runpy
import statistics
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
runpy.run_path(str(Path(__file__).resolve().parents[1] / "standalone.py"))

from comfyui_i2v_adapter.bench.harness import CACHE, TRAINING_CONFIGURATIONS, time_training  # noqa: E402


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128], help="clip widths and heights in pixels")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per configuration (after one warm-up)")
    parser.add_argument("--gpu", action="store_true", help="train on the GPU in fp16 (default: CPU, fp32)")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--one", nargs=2, metavar=("SIZE", "CONFIGURATION"), help=argparse.SUPPRESS)
    return parser.parse_args()


def random_checkpoint(cache: Path) -> tuple[Path, Path]:
    """(the random SD1.5 checkpoint, CLIP's tokenizer folder), both from ComfyUI."""
    from comfyui_i2v_adapter.tests.support.comfyui import NOT_FOUND, find_comfyui, import_comfyui
    comfyui = find_comfyui()
    if comfyui is None:
        raise SystemExit(NOT_FOUND.replace("tier-2 tests skipped", "the benchmark needs it"))
    checkpoint = cache / "random_sd15.safetensors"
    if not checkpoint.exists():
        import_comfyui(comfyui)
        from comfyui_i2v_adapter.tests.support.random_models import write_random_sd15_checkpoint
        cache.mkdir(parents=True, exist_ok=True)
        write_random_sd15_checkpoint(checkpoint)
    return checkpoint, comfyui / "comfy" / "sd1_tokenizer"


def measure(args, size: int, name: str) -> tuple[float, float]:
    """(median seconds per step, peak MiB) of one configuration, in this process."""
    from comfyui_i2v_adapter.training.base_checkpoint import load_base
    from comfyui_i2v_adapter.training.tiny_world import SyntheticClips

    checkpoint, tokenizer = random_checkpoint(args.cache)
    base = load_base(checkpoint, tokenizer)
    seconds, memory = time_training(base, SyntheticClips(8, args.frames, size), size, args.steps,
                                    TRAINING_CONFIGURATIONS[name], args.gpu, "fp16" if args.gpu else "no", workers=2)
    return statistics.median(seconds), memory.used / 2 ** 20


def main():
    """Each configuration in a fresh process, so that one's memory does not hide in the next one's peak."""
    args = arguments()
    if args.one:
        size, name = args.one
        print(json.dumps(measure(args, int(size), name)))
        return
    random_checkpoint(args.cache)
    rows = []
    for size in args.sizes:
        for name in TRAINING_CONFIGURATIONS:
            command = [sys.executable, __file__, "--frames", str(args.frames), "--steps", str(args.steps),
                       "--cache", str(args.cache), "--one", str(size), name] + (["--gpu"] if args.gpu else [])
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            seconds, mib = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append((size, name, seconds, mib))
            print(f"{size}² {name}: {seconds:.2f} s/step, {mib:.0f} MiB", flush=True)

    import torch
    device = torch.cuda.get_device_name() if args.gpu else "CPU"
    print(f"\nI2V-Adapter training, SD1.5 architecture, {args.frames} frames, batch 1, "
          f"{'fp16 autocast' if args.gpu else 'fp32'}, {device}, median of {args.steps} steps")
    print(f"{'size':>6} {'configuration':24}{'s/step':>10}{'peak MiB':>10}{'time ×':>9}{'memory ×':>10}")
    for size, name, seconds, mib in rows:
        plain = next(r for r in rows if r[0] == size and r[1] == "plain")
        print(f"{size:>5}² {name:24}{seconds:10.2f}{mib:10.0f}{seconds / plain[2]:9.2f}{mib / plain[3]:10.2f}")


if __name__ == "__main__":
    main()
