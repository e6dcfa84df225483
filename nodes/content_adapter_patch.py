"""The Content-Adapter as a MODEL patch for the stock samplers: every cross-attention adds
`weight · Attn(Q, K_ip, V_ip)` to the text attention (or to whatever replace is live there), before attn2's output
projection, as the official release does (attention_overlay).

The image tokens are fixed for a graph, so their keys and values are computed once, when the node runs, for the
conditional side (the image) and the unconditional side (CLIP of all-zero pixel values, as the official release);
sampling then costs one small attention per attn2 and no adapter weights on the GPU. Conds without the picture (a
guider's negatives, cond_roles) get the zero-pixel tokens, the others the picture's.
"""
import weakref

import torch

import comfy.model_management

from comfy.patcher_extension import WrappersMP

from ..kernels.content_adapter import image_attention
from ..kernels.content_adapter_file import ContentAdapterFile
from .attention_overlay import AttentionOverlay
from .cond_roles import chunk_roles, record_cond_roles
from .patch_support import attention_patch_keys, host_attention
from .unet_families import family_of_model

NODE = "Apply Content-Adapter"
KEY = "i2v_content_adapter"
ENCODERS = {1024: "ViT-L", 1152: "SigLIP", 1280: "ViT-H", 1664: "ViT-bigG"}  # by hidden width


_ZERO_PIXELS = weakref.WeakKeyDictionary()  # CLIP vision model -> its features of zero pixel values


def _zero_pixel_features(clip_vision) -> torch.Tensor:
    """Zero pixel values are the mean colour after CLIP's normalisation; encode_image would round such a picture to
    8 bits first, so the encoder is called on them directly, once per model."""
    if clip_vision not in _ZERO_PIXELS:
        comfy.model_management.load_model_gpu(clip_vision.patcher)
        zeros = torch.zeros(1, 3, clip_vision.image_size, clip_vision.image_size, device=clip_vision.load_device)
        _ZERO_PIXELS[clip_vision] = clip_vision.model(pixel_values=zeros, intermediate_output=-2)[1].float().cpu()
    return _ZERO_PIXELS[clip_vision]


def image_features(clip_vision, image: torch.Tensor) -> torch.Tensor:
    """[2, tokens, width]: the penultimate CLIP hidden states of the first image (centre-cropped to a square, as the
    CLIP image processor of the official release), and of all-zero pixel values."""
    cond = clip_vision.encode_image(image[:1], crop=True)["penultimate_hidden_states"]
    return torch.cat([cond.float().cpu(), _zero_pixel_features(clip_vision)])


class ImageAttention:
    """One attn2's addition: the image tokens' attention of each chunk's role, the picture's for chunks with the
    picture and zero pixels' for the others (cond_roles), scaled by `weight`."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, weight: float):
        self.keys, self.values, self.weight = keys, values, weight  # [2, tokens, C]: the picture's, zero pixels'
        self._placed = {}  # (device, dtype, pictures) -> keys and values there, one copy per sampling device

    def _for(self, q: torch.Tensor, pictures: tuple[bool, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        where = (q.device, q.dtype, pictures)
        if where not in self._placed:
            rows = [0 if picture else 1 for picture in pictures]
            self._placed[where] = (self.keys[rows].to(q), self.values[rows].to(q))
        return self._placed[where]

    def __call__(self, q, out, extra_options):
        keys, values = self._for(q, tuple(role.picture for role in chunk_roles(extra_options)))
        attend = host_attention(extra_options, extra_options["attn_precision"])
        image = image_attention(q, keys, values, extra_options["n_heads"], attend)
        return out.add_(image) if self.weight == 1.0 else out.add_(image, alpha=self.weight)


def _encoder_name(width: int) -> str:
    return f"{ENCODERS[width]}, {width} wide" if width in ENCODERS else f"{width} wide"


def apply_content_adapter(model, adapter: ContentAdapterFile, clip_vision, image: torch.Tensor, weight: float):
    family = family_of_model(model, NODE)
    if family is not adapter.family:
        raise ValueError(f"{NODE}: this Content-Adapter ({adapter.source}) is for {adapter.family.label} but the MODEL "
                         f"is {family.label}: use ip-adapter-plus_{'sd15' if family.name == 'sd15' else 'sdxl_vit-h'} "
                         f"for {family.label}.")
    features = image_features(clip_vision, image)
    wanted = adapter.shape.image_features
    if features.shape[-1] != wanted:
        raise ValueError(f"{NODE}: the CLIP vision model gives features of {_encoder_name(features.shape[-1])}, but this "
                         f"Content-Adapter reads {_encoder_name(wanted)}. Load the image encoder it was trained with "
                         f"in Load CLIP Vision (for IP-Adapter Plus: CLIP-ViT-H-14-laion2B-s32B-b79K).")
    with torch.no_grad():
        built = adapter.build()
        layers = built.keys_values(built.image_tokens(features))
    keys = attention_patch_keys(model.model.model_config.unet_config, "attn2")
    overlay = AttentionOverlay("attn2", {keys[path]: ImageAttention(k, v, weight) for path, k, v in layers})
    patched = model.clone()
    patched.add_wrapper_with_key(WrappersMP.DIFFUSION_MODEL, KEY, overlay.diffusion_model)
    record_cond_roles(patched)
    return patched
