#!/usr/bin/env bash
# What a lent GPU machine needs to run the suite's anchor case (the official release's own pipeline): the official
# checkout at $I2V_OFFICIAL_PATH and the wheels of its pins that the machine lacks, for its Python 3.12. Writes
# .gpu-suite-official/ (kept out of git by .gitignore), which is carried in a call of its own: it and .gpu-suite/
# together pass the 64 MiB a run carries. tokenizers (no 3.12 wheel of the pinned 0.13.3) is left out: transformers
# 4.25.1 checks it only where installed, and the pipeline's tokenizer is the pure-Python one.
set -euo pipefail
cd "$(dirname "$0")/.."
I2V_OFFICIAL_PATH="${I2V_OFFICIAL_PATH:-/opt/I2V-Adapter}"
bundle=.gpu-suite-official

rm -rf "$bundle"
mkdir -p "$bundle/wheels"
cp -r "$I2V_OFFICIAL_PATH" "$bundle/I2V-Adapter"
rm -rf "$bundle/I2V-Adapter/.git" "$bundle/I2V-Adapter/assets"
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$bundle/wheels" diffusers==0.11.1 transformers==4.25.1 huggingface-hub==0.25.2 omegaconf==2.4.0 \
    imageio==2.27.0 opencv-python-headless==4.11.0.86
du -sh "$bundle"
