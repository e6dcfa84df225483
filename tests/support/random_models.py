"""Random-weight models with real architectures, in the layouts ComfyUI loads (needs ComfyUI on sys.path).

The key layout comes from ComfyUI's own modules built on the meta device, so the files load through
ComfyUI's checkpoint detection exactly as a downloaded SD1.5 checkpoint would. The benchmarks build their UNets in
memory instead (random_comfy_model): no multi-GB file to write and read back.
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
    num_classes="sequential", use_temporal_attention=False, use_temporal_resblock=False)

SD_VAE = {'double_z': True, 'z_channels': 4, 'resolution': 256, 'in_channels': 3, 'out_ch': 3, 'ch': 128,
          'ch_mult': [1, 2, 4, 4], 'num_res_blocks': 2, 'attn_resolutions': [], 'dropout': 0.0}

CLIP_L = CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                        num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu")


def _kind(key: str, shape) -> str:
    return "matrix" if len(shape) >= 2 else "ones" if key.endswith("weight") else "zeros"


def random_like(shapes: dict[str, torch.Size], seed: int, dtype=torch.float16,
                shared: bool = False) -> dict[str, torch.Tensor]:
    """Weights with std 1/sqrt(fan_in), norm scales 1, biases 0: finite activations through deep stacks. `shared`:
    keys of one shape and kind share one tensor (real architectures in little memory and time)."""
    generator = torch.Generator().manual_seed(seed)
    tensors, made = {}, {}
    for key, shape in shapes.items():
        kind = (tuple(shape), _kind(key, shape))
        if shared and kind in made:
            tensors[key] = made[kind]
        elif kind[1] == "matrix":
            bound = (3.0 / torch.Size(shape[1:]).numel()) ** 0.5
            tensors[key] = torch.empty(shape).uniform_(-bound, bound, generator=generator).to(dtype)
        else:
            tensors[key] = (torch.ones if kind[1] == "ones" else torch.zeros)(shape, dtype=dtype)
        made[kind] = tensors[key]
    return tensors


@torch.no_grad()
def fill_random(module: torch.nn.Module, seed: int = 0, shared: bool = False) -> None:
    """random_like's values for a module built without initialising its weights (ComfyUI's operations, or
    to_empty), made in place on the module's own device and in its dtype (a GPU fills billions in milliseconds)."""
    generator, made = None, {}
    for key, param in module.named_parameters():
        kind = (param.shape, param.dtype, _kind(key, param.shape))
        if shared and kind in made:
            param.data = made[kind]
            continue
        if kind[2] == "matrix":
            generator = generator or torch.Generator(param.device).manual_seed(seed)
            bound = (3.0 / param[0].numel()) ** 0.5
            param.uniform_(-bound, bound, generator=generator)
        else:
            param.fill_(1.0 if kind[2] == "ones" else 0.0)
        made[kind] = param.data


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


UNETS = {"sd15": ("SD15", SD15_UNET), "sdxl": ("SDXL", SDXL_UNET)}


def random_comfy_model(family: str, dtype: torch.dtype, shared: bool = False, seed: int = 0):
    """A ComfyUI MODEL of the family's ("sd15" or "sdxl") UNet with random weights in `dtype` (also its compute
    dtype), built on the device ComfyUI samples on and registered as loaded there, as ComfyUI does with a
    checkpoint's UNet that fits in GPU memory; no state dict in between."""
    import comfy.model_management
    import comfy.model_patcher
    import comfy.supported_models

    config_name, unet_config = UNETS[family]
    config = getattr(comfy.supported_models, config_name)(dict(unet_config))
    config.set_inference_dtype(dtype, None)
    device = comfy.model_management.get_torch_device()
    model = config.get_model({}, device=device)
    fill_random(model.diffusion_model, seed, shared)
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=device,
                                               offload_device=comfy.model_management.unet_offload_device())
    comfy.model_management.load_models_gpu([patcher], force_full_load=True)
    return patcher


def random_motion_modules(max_frames: int, mid_block: bool, seed: int = 1, shared: bool = False
                          ) -> dict[str, torch.Tensor]:
    """SD1.5 motion modules in AnimateDiff's layout with random weights, fp16 (`max_frames` 24 without the mid block:
    v1's layout); the position encodings are the real ones."""
    from ...kernels.motion_module import MotionModules, sinusoidal_encoding
    from ...kernels.unet_layout import SD15

    with torch.device("meta"):
        shapes = {k: v.shape for k, v in MotionModules(SD15, max_frames, mid_block).state_dict().items()}
    state = random_like({k: s for k, s in shapes.items() if not k.endswith(".pe")}, seed, shared=shared)
    return state | {k: sinusoidal_encoding(max_frames, s[-1]).half() for k, s in shapes.items() if k.endswith(".pe")}


def random_i2v_adapter(family, seed: int = 0, shared: bool = False):
    """An I2V-Adapter (AdapterFile) for `family` with random weights, fp16: W'_O as if trained."""
    from ...kernels.adapter_file import adapter_from_tensors
    from ...kernels.first_frame_attention import I2VAdapter

    with torch.device("meta"):
        shapes = {k: v.shape for k, v in I2VAdapter(family).state_dict().items()}
    return adapter_from_tensors(random_like(shapes, seed, shared=shared), {}, "random")


def write_random_motion_modules(folder, seed: int = 1) -> dict[str, str]:
    """SD1.5 motion modules with random weights in every layout the loader reads, written into `folder` (the
    server's models/animatediff_models). Returns {layout: file name}. Position encodings are the real ones."""
    from pathlib import Path

    from diffusers import MotionAdapter

    folder = Path(folder)
    v2 = random_motion_modules(32, mid_block=True, seed=seed)
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


def random_ip_adapter_plus(family, image_features: int = 1280, seed: int = 3) -> dict[str, torch.Tensor]:
    """h94's IP-Adapter Plus keys (`image_proj.…`, `ip_adapter.<2k+1>.to_k_ip.weight`) with random values: the
    Resampler of ip-adapter-plus_sd15 (768 wide, 12 heads) or ip-adapter-plus_sdxl_vit-h (1280, 20 heads), 4 layers,
    16 queries, reading CLIP features `image_features` wide."""
    from ...kernels.unet_layout import cross_attention_layers

    hidden, out = (768, 768) if family.name == "sd15" else (1280, 2048)
    shapes = {"latents": (1, 16, hidden), "proj_in.weight": (hidden, image_features), "proj_in.bias": (hidden,),
              "proj_out.weight": (out, hidden), "proj_out.bias": (out,), "norm_out.weight": (out,),
              "norm_out.bias": (out,)}
    for i in range(4):
        layer = f"layers.{i}"
        shapes |= {f"{layer}.0.norm1.weight": (hidden,), f"{layer}.0.norm1.bias": (hidden,),
                   f"{layer}.0.norm2.weight": (hidden,), f"{layer}.0.norm2.bias": (hidden,),
                   f"{layer}.0.to_q.weight": (hidden, hidden), f"{layer}.0.to_kv.weight": (2 * hidden, hidden),
                   f"{layer}.0.to_out.weight": (hidden, hidden), f"{layer}.1.0.weight": (hidden,),
                   f"{layer}.1.0.bias": (hidden,), f"{layer}.1.1.weight": (4 * hidden, hidden),
                   f"{layer}.1.3.weight": (hidden, 4 * hidden)}
    tensors = {f"image_proj.{k}": v for k, v in random_like(shapes, seed, torch.float32).items()}
    tensors["image_proj.latents"] = torch.randn(1, 16, hidden, generator=torch.Generator().manual_seed(seed)) / hidden ** 0.5
    layers = {f"ip_adapter.{2 * k + 1}.{name}": (dim, family.context_dim)
              for k, (_, dim) in enumerate(cross_attention_layers(family)) for name in ("to_k_ip.weight", "to_v_ip.weight")}
    return tensors | random_like(layers, seed + 1, torch.float32)


def write_ip_adapter_bin(path, tensors: dict[str, torch.Tensor]) -> None:
    """As h94's `.bin`: {"image_proj": {...}, "ip_adapter": {...}}."""
    nested = {"image_proj": {}, "ip_adapter": {}}
    for key, value in tensors.items():
        part, name = key.split(".", 1)
        nested[part][name] = value.half()
    torch.save(nested, path)


CLIP_VISION_H = "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors"


def write_random_clip_vision_h(path, seed: int = 4) -> None:
    """A CLIP ViT-H image encoder (ComfyUI's clip_vision_config_h.json, the width IP-Adapter Plus reads) with random
    weights, in the key layout ComfyUI's Load CLIP Vision detects. 632 M parameters, fp16."""
    import json
    from pathlib import Path

    import comfy.clip_model
    import comfy.ops

    config = json.loads((Path(comfy.clip_model.__file__).parent / "clip_vision_config_h.json").read_text())
    with torch.device("meta"):
        model = comfy.clip_model.CLIPVisionModelProjection(config, torch.float16, None, comfy.ops.disable_weight_init)
    save_file(random_like(_shapes(model, ""), seed), str(path))


def small_clip_vision_config(width: int = 64) -> dict:
    """A CLIP vision model `width` wide, 3 layers, ViT-H's patch and image size: a config both ComfyUI and
    transformers read."""
    return {"architectures": ["CLIPVisionModelWithProjection"], "model_type": "clip_vision_model", "hidden_act": "gelu",
            "hidden_size": width, "image_size": 224, "intermediate_size": 4 * width, "layer_norm_eps": 1e-5,
            "num_attention_heads": 4, "num_channels": 3, "num_hidden_layers": 3, "patch_size": 14,
            "projection_dim": width}


def small_clip_vision(width: int = 64, seed: int = 5):
    """ComfyUI's own CLIP vision model (the CLIP_VISION a loader gives) at a small width, with random weights."""
    import json
    import tempfile
    from pathlib import Path

    import comfy.clip_vision

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "config.json").write_text(json.dumps(small_clip_vision_config(width)))
        clip_vision = comfy.clip_vision.ClipVisionModel(str(Path(folder) / "config.json"))
    shapes = {k: v.shape for k, v in clip_vision.get_sd().items()}
    clip_vision.load_sd(random_like(shapes, seed, torch.float32))
    return clip_vision


def write_random_lora_sd15(path, rank: int = 4, seed: int = 6) -> None:
    """A kohya-style SD1.5 LoRA (`lora_unet_<diffusers path>` and `lora_te_<CLIP path>` keys, lora_down / lora_up /
    alpha) on every attention projection of the UNet and the text encoder's first layers, as LoraLoader reads it."""
    import comfy.utils

    generator = torch.Generator().manual_seed(seed)
    targets = {}
    # sorted: ComfyUI builds the map from sets of names, whose order changes with each process's string hashing
    for diffusers_key in sorted(comfy.utils.unet_to_diffusers(dict(SD15_UNET, num_res_blocks=[2] * 4))):
        if ".attn" in diffusers_key and diffusers_key.endswith(("to_q.weight", "to_k.weight", "to_v.weight",
                                                                "to_out.0.weight")):
            name = "lora_unet_" + diffusers_key.removesuffix(".weight").replace(".", "_")
            width = 320 * (1, 2, 4, 4)[_level(diffusers_key)]
            context = 768 if ".attn2.to_k" in diffusers_key or ".attn2.to_v" in diffusers_key else width
            targets[name] = (width, context)
    for layer in range(2):
        for part in ("q_proj", "k_proj", "v_proj", "out_proj"):
            targets[f"lora_te_text_model_encoder_layers_{layer}_self_attn_{part}"] = (768, 768)
    tensors = {}
    for name, (out, into) in targets.items():
        tensors[f"{name}.lora_down.weight"] = torch.randn(rank, into, generator=generator) / into ** 0.5
        tensors[f"{name}.lora_up.weight"] = torch.randn(out, rank, generator=generator) * 0.2 / rank ** 0.5
        tensors[f"{name}.alpha"] = torch.tensor(float(rank))
    save_file({k: v.half() for k, v in tensors.items()}, str(path))


def _level(diffusers_key: str) -> int:
    """The width level (0..3) of an SD1.5 attention layer from its diffusers path."""
    block, index = diffusers_key.split(".")[:2]
    return 3 if block == "mid_block" else int(index) if block == "down_blocks" else 3 - int(index)


def write_random_controlnet_sd15(path, seed: int = 7) -> None:
    """An SD1.5 ControlNet in the original layout (`control_model.…`, the input hint block and zero convolutions)
    with random weights, fp16, as ControlNetLoader detects it."""
    import comfy.cldm.cldm
    import comfy.ops

    config = {k: v for k, v in SD15_UNET.items() if k not in ("out_channels", "transformer_depth_output")}
    with torch.device("meta"):
        model = comfy.cldm.cldm.ControlNet(hint_channels=3, operations=comfy.ops.disable_weight_init, **config)
    save_file(random_like(_shapes(model, "control_model."), seed), str(path))
