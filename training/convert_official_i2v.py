"""Convert the official I2V-Adapter release's files into safetensors files the nodes (and the packs next to them) load.

    # the branch: i2v_module.pth -> models/i2v_adapter
    python training/convert_official_i2v.py i2v_module.pth ComfyUI/models/i2v_adapter/i2v_adapter_sd15.safetensors

    # the bundle (a whole UNet: SD1.5 weights, v1 motion modules, IP-Adapter attention weights), split once
    python training/convert_official_i2v.py --bundle animatediff_v15_v1_ipplus.pth \\
        --image-proj ip-adapter-plus_sd15.bin \\
        --motion-module-out ComfyUI/models/animatediff_models/mm_sd15_v1_i2v_adapter.safetensors \\
        --content-adapter-out ComfyUI/models/ipadapter/ip-adapter-plus_sd15_i2v_adapter.safetensors

Pickles are read with weights_only=True (tensors only, no code runs). The motion modules keep the original
AnimateDiff layout (AnimateDiff-Evolved loads the file too); the Content-Adapter is written in h94's layout, the
bundle's attention weights with the Resampler of --image-proj (ComfyUI_IPAdapter_plus loads it too). The nodes also
read the official files directly; converting saves loading the 5 GB bundle each time.
"""
import argparse
import runpy
import sys
from pathlib import Path

runpy.run_path(str(Path(__file__).resolve().parents[1] / "standalone.py"))

from comfyui_i2v_adapter.kernels.adapter_file import convert_official  # noqa: E402
from comfyui_i2v_adapter.kernels.content_adapter_file import read_content_adapter, write_content_adapter  # noqa: E402
from comfyui_i2v_adapter.kernels.motion_module_file import read_motion_module, write_motion_module  # noqa: E402
from comfyui_i2v_adapter.kernels.tensor_files import FileFormatError  # noqa: E402


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", type=Path, nargs="?", help="the official i2v_module.pth (or any adapter file)")
    p.add_argument("target", type=Path, nargs="?", help="the .safetensors file to write")
    p.add_argument("--bundle", type=Path, help="the official animatediff_v15_v1_ipplus.pth to split")
    p.add_argument("--image-proj", type=Path, help="h94's ip-adapter-plus_sd15 (.bin or .safetensors): the Resampler "
                                                   "the official release pairs with the bundle's attention weights")
    p.add_argument("--motion-module-out", type=Path, help="where the bundle's v1 motion modules go (.safetensors)")
    p.add_argument("--content-adapter-out", type=Path, help="where the Content-Adapter goes (.safetensors)")
    return p


def _check(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if (args.source is None) != (args.target is None):
        p.error("give both source and target (the i2v_module.pth and the .safetensors file to write)")
    if (args.motion_module_out or args.content_adapter_out) and args.bundle is None:
        p.error("--motion-module-out and --content-adapter-out split --bundle; give it")
    if args.source is None and args.bundle is None:
        p.error("nothing to convert: give i2v_module.pth and a target, or --bundle")
    if args.bundle is not None and not (args.motion_module_out or args.content_adapter_out):
        p.error("--bundle needs --motion-module-out, --content-adapter-out or both")
    if args.content_adapter_out is not None and args.image_proj is None:
        p.error("--content-adapter-out needs --image-proj (h94's ip-adapter-plus_sd15): the bundle has no Resampler")
    for flag in ("target", "motion_module_out", "content_adapter_out"):
        path = getattr(args, flag)
        if path is not None and path.suffix != ".safetensors":
            p.error(f"{flag.replace('_', '-')} must end in .safetensors, got {path.name}")


def main(argv=None) -> int:
    p = parser()
    args = p.parse_args(argv)
    _check(p, args)
    try:
        if args.source is not None:
            adapter = convert_official(args.source, args.target)
            params = sum(t.numel() for t in adapter.state_dict.values())
            print(f"wrote {args.target}: {adapter.family.label} I2V-Adapter, {len(adapter.state_dict) // 3} layers, "
                  f"{params:,} parameters")
        if args.motion_module_out is not None:
            motion = read_motion_module(args.bundle)
            write_motion_module(args.motion_module_out, motion, source=args.bundle.name)
            print(f"wrote {args.motion_module_out}: {motion.family.label} {motion.version} motion modules, "
                  f"{len(motion.state_dict)} tensors, up to {motion.max_frames} frames")
        if args.content_adapter_out is not None:
            content = read_content_adapter(args.image_proj, args.bundle)
            write_content_adapter(args.content_adapter_out, content)
            print(f"wrote {args.content_adapter_out}: {content.family.label} Content-Adapter (IP-Adapter Plus) from "
                  f"{content.source}")
    except (FileFormatError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
