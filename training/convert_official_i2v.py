"""Convert the official I2V-Adapter release's `i2v_module.pth` into this pack's safetensors format.

    python training/convert_official_i2v.py i2v_module.pth ComfyUI/models/i2v_adapter/i2v_adapter_sd15.safetensors

The pickle is read with weights_only=True (tensors only, no code runs); the output keeps the official key
names and adds metadata (format, version, base family, layers). Load I2V-Adapter also reads the .pth directly.
"""
import argparse
import runpy
import sys
from pathlib import Path

runpy.run_path(str(Path(__file__).resolve().parents[1] / "standalone.py"))

from comfyui_i2v_adapter.kernels.adapter_file import convert_official  # noqa: E402
from comfyui_i2v_adapter.kernels.tensor_files import FileFormatError  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="the official i2v_module.pth (or any adapter file)")
    parser.add_argument("target", type=Path, help="the .safetensors file to write")
    args = parser.parse_args(argv)
    if args.target.suffix != ".safetensors":
        parser.error(f"target must end in .safetensors, got {args.target.name}")
    try:
        adapter = convert_official(args.source, args.target)
    except (FileFormatError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    params = sum(t.numel() for t in adapter.state_dict.values())
    print(f"wrote {args.target}: {adapter.family.label} I2V-Adapter, {len(adapter.state_dict) // 3} layers, "
          f"{params:,} parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
