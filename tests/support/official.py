"""The official I2V-Adapter release for the parity tests (tier 3): where its checkout and environment are, the random
files written in its layout, and a run of its code (tests/official/run_official.py) in its own environment."""
import json
import os
import subprocess
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .comfyui import PACK_ROOT

NOT_FOUND = ("the official I2V-Adapter checkout or its environment is missing: set I2V_OFFICIAL_PATH to a checkout of "
             "KwaiVGI/I2V-Adapter and I2V_OFFICIAL_PYTHON to a Python with tests/official/requirements.txt "
             "(.ci/run builds .venv-official where a checkout is present) (tier-3 parity tests skipped)")
RUNNER = PACK_ROOT / "tests/official/run_official.py"
BUNDLE = "animatediff_v15_v1_ipplus.pth"


def find_official() -> tuple[Path, Path] | None:
    """(checkout, its Python): I2V_OFFICIAL_PATH and I2V_OFFICIAL_PYTHON (default: the pack's .venv-official)."""
    checkout = os.environ.get("I2V_OFFICIAL_PATH")
    python = Path(os.environ.get("I2V_OFFICIAL_PYTHON", PACK_ROOT / ".venv-official/bin/python"))
    if not checkout:
        return None
    if not (Path(checkout) / "src/models/unet.py").is_file():
        raise RuntimeError(f"I2V_OFFICIAL_PATH={checkout} is not a checkout of the official I2V-Adapter release")
    return (Path(checkout).resolve(), python) if python.is_file() else None


def sd15_unet_config() -> dict:
    """SD1.5's unet/config.json, which the official from_pretrained_ip reads (it sets the 3D block types itself)."""
    from ...training.sd_architectures import SD15_UNET
    return {"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.6.0", "act_fn": "silu",
            "center_input_sample": False, "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0,
            "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32,
            **{k: list(v) if isinstance(v, tuple) else v for k, v in SD15_UNET.items()}}


def official_bundle(checkpoint: dict, motion_module: dict, ip_adapter: dict) -> dict[str, torch.Tensor]:
    """animatediff_v15_v1_ipplus.pth's layout: the UNet of an SD1.5 checkpoint's tensors in diffusers names (diffusers'
    own single-file conversion), AnimateDiff v1 motion modules and the IP-Adapter's attn2.to_k_ip/to_v_ip, under
    UNet paths."""
    from accelerate import init_empty_weights
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    from ...kernels.unet_layout import SD15, cross_attention_layers
    from ...training.sd_architectures import SD15_UNET

    with init_empty_weights():
        config = dict(UNet2DConditionModel(**SD15_UNET).config)
    unet = convert_ldm_unet_checkpoint(checkpoint, config)
    paths = [path for path, _ in cross_attention_layers(SD15)]
    ip = {f"{paths[(int(k.split('.')[1]) - 1) // 2]}.{k.split('.', 2)[2]}": v
          for k, v in ip_adapter.items() if k.startswith("ip_adapter.")}
    return {**unet, **motion_module, **ip}


def write_official_layout(work: Path, bundle: dict, adapter_state: dict, ip_adapter_bin: Path, clip_config: dict,
                          clip_state: dict, image: Path) -> None:
    """The files the official inference.py reads, as it lays them out."""
    (work / "sd15/unet").mkdir(parents=True)
    (work / "sd15/unet/config.json").write_text(json.dumps(sd15_unet_config()))
    torch.save(bundle, work / "sd15/unet" / BUNDLE)
    torch.save(adapter_state, work / "i2v_module.pth")
    (work / "ip-adapter-plus_sd15.bin").write_bytes(ip_adapter_bin.read_bytes())
    (work / "image_encoder").mkdir()
    (work / "image_encoder/config.json").write_text(json.dumps(clip_config))
    torch.save({k: v.float().contiguous() for k, v in clip_state.items()}, work / "image_encoder/pytorch_model.bin")
    (work / "image.png").write_bytes(image.read_bytes())


def run_official(work: Path, checkout: Path, python: Path, inputs: dict, spec: dict, timeout: float = 1800) -> dict:
    save_file({k: v.contiguous() for k, v in inputs.items()}, str(work / "inputs.safetensors"))
    (work / "spec.json").write_text(json.dumps({**spec, "official": str(checkout)}))
    run_in_official_environment(RUNNER, work, checkout, python, timeout, gpu=False)
    return load_file(str(work / "official.safetensors"))


def run_in_official_environment(script: Path, work: Path, checkout: Path, python: Path, timeout: float,
                                gpu: bool) -> None:
    """`python script work` with the official checkout on the path, offline, on the CPU unless `gpu`."""
    environment = {**os.environ, "PYTHONPATH": str(checkout), "HF_HUB_OFFLINE": "1"}
    if not gpu:
        environment["CUDA_VISIBLE_DEVICES"] = ""
    result = subprocess.run([str(python), str(script), str(work)], cwd=checkout, env=environment,
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode:
        raise RuntimeError(f"the official code failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
