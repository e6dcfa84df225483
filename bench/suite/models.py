"""What the cases build from, all with random weights at real shapes (speed and memory do not depend on the values;
tests/support/random_models.py): UNets in memory on the sampling device, adapter and motion-module weights as
their loaders give them, the conditioning a text encoder would give, the reference image, and the trainer's base.

UNets are built for each case and dropped after it, so that each case starts from its own weights alone; the
small parts are made once."""
import functools
import tempfile
from pathlib import Path

import torch

from ...kernels.unet_layout import SD15, SDXL
from ...tests.support import random_models
from ...tests.support.images import astronaut
from .sizes import Sizes

FAMILIES = {"sd15": SD15, "sdxl": SDXL}
CONTEXT = {"sd15": 768, "sdxl": 2048}
CLIP_VISION_WIDTH = 1280  # ViT-H's, which IP-Adapter Plus reads; 3 layers are enough: it encodes once per graph
VLM_WIDTH = 2048  # the hidden width of Qwen2.5-VL-3B, whose states a DQFormer reads


class Models:
    def __init__(self, sizes: Sizes, comfyui: Path):
        self.sizes, self.comfyui = sizes, comfyui
        self.device = torch.device("cuda" if sizes.gpu else "cpu")

    def unet(self, family: str):
        """A fresh ComfyUI MODEL of the family, its weights resident."""
        return random_models.random_comfy_model(family, self.sizes.dtype, self.sizes.shared_weights)

    @functools.cached_property
    def image(self) -> torch.Tensor:
        return astronaut()

    @functools.cache
    def conditioning(self, family: str) -> tuple[list, list]:
        """(positive, negative) CONDITIONING of 77 tokens, SDXL's with the pooled output its UNet needs."""
        generator = torch.Generator().manual_seed(7)

        def encoded():
            extra = {"pooled_output": torch.randn(1, 1280, generator=generator)} if family == "sdxl" else {}
            return [[torch.randn(1, 77, CONTEXT[family], generator=generator), extra]]
        return encoded(), encoded()

    @functools.cache
    def i2v_adapter(self, family: str):
        return random_models.random_i2v_adapter(FAMILIES[family], shared=self.sizes.shared_weights)

    @functools.cache
    def motion_module(self, max_frames: int, mid_block: bool):
        """AnimateDiff v1's layout (24 frames, no mid block) or v2's (any frame count, with it)."""
        from ...kernels.motion_module_file import motion_module_from_tensors
        state = random_models.random_motion_modules(max_frames, mid_block, shared=self.sizes.shared_weights)
        return motion_module_from_tensors(state, f"random motion module ({max_frames} frames)")

    @functools.cached_property
    def content_adapter(self):
        """SD1.5's IP-Adapter Plus, through the file and reader Load Content-Adapter uses (100 MB)."""
        from ...kernels.content_adapter_file import read_content_adapter
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "ip-adapter-plus_sd15.bin"
            random_models.write_ip_adapter_bin(path, random_models.random_ip_adapter_plus(SD15, CLIP_VISION_WIDTH))
            return read_content_adapter(path)

    @functools.cached_property
    def look_back(self):
        """SD1.5 look-back layers at the paper's defaults, through the file and reader Load Look-Back Layers uses."""
        from ...kernels.look_back import LookBackLayers
        from ...kernels.look_back_file import read_look_back, write_look_back
        layers = LookBackLayers(SD15)
        random_models.fill_random(layers)  # small: no shared tensors, which a file cannot hold
        with tempfile.TemporaryDirectory() as folder:
            write_look_back(Path(folder) / "look_back.safetensors", layers)
            return read_look_back(Path(folder) / "look_back.safetensors")

    @functools.cached_property
    def dqformer(self):
        """SD1.5's DQFormer at AID's shape (Table 8) on a 2048-wide vision-language model (Qwen2.5-VL-3B's)."""
        from ...kernels.dqformer import DQFormer, DQFormerShape
        from ...kernels.dqformer_file import read_dqformer, write_dqformer
        with torch.device("meta"):
            model = DQFormer(DQFormerShape(VLM_WIDTH, SD15.context_dim, width=1024, layers=2, heads=8, queries=77))
        model.to_empty(device="cpu")
        random_models.fill_random(model)
        with tempfile.TemporaryDirectory() as folder:
            write_dqformer(Path(folder) / "dqformer.safetensors", model, SD15, "random VLM")
            return read_dqformer(Path(folder) / "dqformer.safetensors")

    @functools.cache
    def states(self, frames: int):
        """Decompose Prompt into States' output for `frames`: 4 states (at most one per frame) of random hidden
        states."""
        from ...kernels.state_schedule import frame_state_weights
        from ...kernels.vlm_io import StateFeatures
        from ...nodes.vlm_answer import DecomposedStates
        generator = torch.Generator().manual_seed(9)
        states = min(4, frames)
        features = StateFeatures("random VLM", torch.randn(1, 300, VLM_WIDTH, generator=generator),
                                 torch.ones(1, 300, dtype=torch.bool), torch.randn(states, 24, VLM_WIDTH,
                                                                                   generator=generator),
                                 torch.ones(states, 24, dtype=torch.bool))
        return DecomposedStates("random VLM", features, frame_state_weights(frames, states, 2.0))

    @functools.cached_property
    def clip_vision(self):
        return random_models.small_clip_vision(CLIP_VISION_WIDTH)

    @functools.cached_property
    def vae(self):
        import comfy.ldm.models.autoencoder
        import comfy.sd
        with torch.device("meta"):
            shapes = {k: v.shape for k, v in comfy.ldm.models.autoencoder.AutoencoderKL(
                ddconfig=random_models.SD_VAE, embed_dim=4).state_dict().items()}
        return comfy.sd.VAE(sd=random_models.random_like(shapes, seed=2))

    def training_base(self):
        """The trainer's frozen SD1.5 base (diffusers UNet and VAE, CLIP-L with ComfyUI's tokenizer files) in the
        training dtype on the training device, as the trainer would move it there."""
        from accelerate import init_empty_weights
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextModel

        from ...training import sd_architectures as arch
        from ...training.base_model import BaseModel
        from ...training.text_encoders import ClipTokens, TextEncoder
        from ...training.trainer import DTYPES

        dtype = DTYPES[self.sizes.training_precision]
        with init_empty_weights():
            unet, vae = UNet2DConditionModel(**arch.SD15_UNET), AutoencoderKL(**arch.SD_VAE)
        for module in (unet, vae):  # (no buffers: to_empty leaves nothing unset)
            module.to(dtype).to_empty(device=self.device)
            random_models.fill_random(module, shared=self.sizes.shared_weights)
        clip = CLIPTextModel(arch.clip_config(arch.CLIP_L)).to(self.device, dtype)
        text = TextEncoder([ClipTokens(self.comfyui / "comfy" / "sd1_tokenizer", "<|endoftext|>")], [clip],
                           penultimate=False)
        return BaseModel(SD15, "random SD1.5", unet.eval(), vae.eval(), text.eval(), arch.SD15_LATENT_SCALE)
