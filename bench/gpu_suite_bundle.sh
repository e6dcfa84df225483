#!/usr/bin/env bash
# What a lent GPU machine needs to run bench/gpu_suite.py and lacks: it brings Python 3.12 with torch, but no
# ComfyUI, none of the packages below, and no network. Run this here before the run: it writes .gpu-suite/ (kept
# out of git by .gitignore) with ComfyUI (the checkout at $COMFYUI_PATH, less the tokenizers of model families the
# suite does not load, to stay under the 64 MiB a run carries) and the wheels, at the versions the CPU smoke runs.
set -euo pipefail
cd "$(dirname "$0")/.."
COMFYUI_PATH="${COMFYUI_PATH:-/opt/ComfyUI}"
bundle=.gpu-suite

rm -rf "$bundle"
mkdir -p "$bundle/wheels"
cp -r "$COMFYUI_PATH" "$bundle/ComfyUI"
rm -rf "$bundle/ComfyUI/.git" "$bundle/ComfyUI"/comfy/text_encoders/*_tokenizer  # SD1.5's is comfy/sd1_tokenizer
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$bundle/wheels" av==18.1.0 diffusers==0.42.1 kornia==0.9.0 kornia-rs==0.2.0 torchsde==0.2.6 trampoline==0.1.2
du -sh "$bundle"
