"""Random-weight models with real architectures, in the layouts ComfyUI loads (needs ComfyUI on sys.path).

The key layout comes from ComfyUI's own modules built on the meta device, so the files load through
ComfyUI's checkpoint detection exactly as a downloaded SD1.5 checkpoint would.
"""
import torch
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel

SD15_UNET = dict(
    image_size=32, in_channels=4, out_channels=4, model_channels=320, num_res_blocks=[2, 2, 2, 2],
    channel_mult=[1, 2, 4, 4], transformer_depth=[1, 1, 1, 1, 1, 1, 0, 0], transformer_depth_middle=1,
    transformer_depth_output=[1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0], context_dim=768, num_heads=8, num_head_channels=-1,
    use_linear_in_transformer=False, use_spatial_transformer=True, legacy=False, adm_in_channels=None,
    use_temporal_attention=False, use_temporal_resblock=False)

SDXL_UNET = dict(
    image_size=32, in_channels=4, out_channels=4, model_channels=320, num_res_blocks=[2, 2, 2],
    channel_mult=[1, 2, 4], transformer_depth=[0, 0, 2, 2, 10, 10], transformer_depth_middle=10,
    transformer_depth_output=[0, 0, 0, 2, 2, 2, 10, 10, 10], context_dim=2048, num_heads=-1, num_head_channels=64,
    use_linear_in_transformer=True, use_spatial_transformer=True, legacy=False, adm_in_channels=2816,
    use_temporal_attention=False, use_temporal_resblock=False)

SD_VAE = {'double_z': True, 'z_channels': 4, 'resolution': 256, 'in_channels': 3, 'out_ch': 3, 'ch': 128,
          'ch_mult': [1, 2, 4, 4], 'num_res_blocks': 2, 'attn_resolutions': [], 'dropout': 0.0}

CLIP_L = CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                        num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu")


def random_like(shapes: dict[str, torch.Size], seed: int, dtype=torch.float16) -> dict[str, torch.Tensor]:
    """Weights with std 1/sqrt(fan_in), norm scales 1, biases 0: finite activations through deep stacks."""
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for key, shape in shapes.items():
        if len(shape) >= 2:
            bound = (3.0 / torch.Size(shape[1:]).numel()) ** 0.5
            tensors[key] = torch.empty(shape).uniform_(-bound, bound, generator=generator).to(dtype)
        else:
            tensors[key] = (torch.ones if key.endswith("weight") else torch.zeros)(shape, dtype=dtype)
    return tensors


def _shapes(module: torch.nn.Module, prefix: str) -> dict[str, torch.Size]:
    return {prefix + k: v.shape for k, v in module.state_dict().items()}


def write_random_sd15_checkpoint(path, seed: int = 0) -> None:
    """A single-file SD1.5 checkpoint (UNet + CLIP-L + VAE) with random weights, fp16."""
    import comfy.ops
    from comfy.ldm.models.autoencoder import AutoencoderKL
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    with torch.device("meta"):
        shapes = _shapes(UNetModel(**SD15_UNET, operations=comfy.ops.disable_weight_init), "model.diffusion_model.")
        shapes |= _shapes(AutoencoderKL(ddconfig=SD_VAE, embed_dim=4), "first_stage_model.")
        shapes |= _shapes(CLIPTextModel(CLIP_L), "cond_stage_model.transformer.")
    save_file(random_like(shapes, seed), str(path))


def meta_sdxl_model():
    """A real ComfyUI SDXL MODEL (ModelPatcher) whose weights are on the meta device: enough for checks
    that must refuse it before any weight is touched."""
    import comfy.model_patcher
    import comfy.supported_models

    config = comfy.supported_models.SDXL(dict(SDXL_UNET))
    model = config.get_model({}, device=torch.device("meta"))
    return comfy.model_patcher.ModelPatcher(model, load_device=torch.device("cpu"), offload_device=torch.device("cpu"))


def write_random_motion_modules(folder, seed: int = 1) -> dict[str, str]:
    """SD1.5 motion modules with random weights in every layout the loader reads, written into `folder` (the
    server's models/animatediff_models). Returns {layout: file name}. Position encodings are the real ones."""
    from pathlib import Path

    from diffusers import MotionAdapter

    from ...kernels.motion_module import MotionModules, sinusoidal_encoding
    from ...kernels.unet_layout import SD15

    folder = Path(folder)
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in MotionModules(SD15, 32, mid_block=True).state_dict().items()}
    v2 = random_like({k: s for k, s in shapes.items() if not k.endswith(".pe")}, seed)
    v2 |= {k: sinusoidal_encoding(32, s[-1]).half() for k, s in shapes.items() if k.endswith(".pe")}
    without_mid = {k: v for k, v in v2.items() if not k.startswith("mid_block.")}
    files = {"v2": "random_mm_sd15_v2.safetensors", "v3": "random_mm_sd15_v3.safetensors",
             "v1": "random_mm_sd15_v1.ckpt", "diffusers": "random_motion_adapter/diffusion_pytorch_model.safetensors"}
    save_file(v2, str(folder / files["v2"]))
    save_file(without_mid, str(folder / files["v3"]))
    torch.save({"state_dict": {k: v[:, :24].clone() if k.endswith(".pe") else v for k, v in without_mid.items()}},
               folder / files["v1"])
    with torch.device("meta"):
        adapter = MotionAdapter(motion_max_seq_length=32, use_motion_mid_block=True)
    shapes = {k: v.shape for k, v in adapter.state_dict().items()}
    diffusers_state = random_like({k: s for k, s in shapes.items() if not k.endswith(".pe")}, seed + 1)
    (folder / "random_motion_adapter").mkdir()
    save_file(diffusers_state, str(folder / files["diffusers"]))  # without the encodings, as diffusers may save it
    adapter.save_config(str(folder / "random_motion_adapter"))
    return files
