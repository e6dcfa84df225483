"""Content-Adapter files: h94's IP-Adapter Plus (`ip-adapter-plus_sd15`, `ip-adapter-plus_sdxl_vit-h`, as `.bin` or
`.safetensors`: the files ComfyUI_IPAdapter_plus reads from models/ipadapter), and the `to_k_ip`/`to_v_ip` of the
official I2V-Adapter bundle (`animatediff_v15_v1_ipplus.pth`, a whole UNet state dict), which the official release
pairs with the Resampler of h94's file.

h94's keys: `image_proj.<Resampler>` and `ip_adapter.<n>.to_k_ip.weight`, with n = 2k + 1 for the k-th attn2 in
diffusers' processor order (kernels.unet_layout.cross_attention_layers). The bundle's: `<attn2 path>.to_k_ip.weight`.
"""
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from .content_adapter import DIM_HEAD, ContentAdapter, ResamplerShape
from .tensor_files import FileFormatError, load_tensors, save_safetensors
from .unet_layout import SD15, SDXL, UNetFamily, cross_attention_layers, unet_path

IMAGE_PROJ, IP_LAYERS = "image_proj.", "ip_adapter."
KEY_VALUE = ("to_k_ip.weight", "to_v_ip.weight")
FORMAT_NAME = "content-adapter"
USE = ("The Content-Adapter is IP-Adapter Plus: use h94's ip-adapter-plus_sd15 (SD1.5) or "
       "ip-adapter-plus_sdxl_vit-h (SDXL)")
# h94's Resampler names -> diffusers' IPAdapterPlusImageProjection names (to_kv is split in two).
_TO_DIFFUSERS = [(re.compile(p), r) for p, r in (
    (r"^layers\.(\d+)\.0\.norm1\.", r"layers.\1.ln0."), (r"^layers\.(\d+)\.0\.norm2\.", r"layers.\1.ln1."),
    (r"^layers\.(\d+)\.0\.to_q\.", r"layers.\1.attn.to_q."), (r"^layers\.(\d+)\.0\.to_out\.", r"layers.\1.attn.to_out.0."),
    (r"^layers\.(\d+)\.1\.0\.", r"layers.\1.ff.0."), (r"^layers\.(\d+)\.1\.1\.", r"layers.\1.ff.1.net.0.proj."),
    (r"^layers\.(\d+)\.1\.3\.", r"layers.\1.ff.1.net.2."))]
_TO_KV = re.compile(r"^layers\.(\d+)\.0\.to_kv\.weight$")
_RESAMPLER_OWN = re.compile(r"^(latents|(proj_in|proj_out|norm_out)\.(weight|bias))$")


@dataclass
class ContentAdapterFile:
    family: UNetFamily
    shape: ResamplerShape
    resampler: dict[str, torch.Tensor]    # h94's names, without `image_proj.`
    key_values: dict[str, torch.Tensor]   # `<attn2 path>.to_k_ip.weight`, `….to_v_ip.weight`
    source: str                           # the file(s) it came from, for messages

    def build(self, dtype=torch.float32, device=None) -> ContentAdapter:
        """Built on the meta device and given the file's tensors: no random initialisation to throw away."""
        with torch.device("meta"):
            adapter = ContentAdapter(self.family, self.shape)
        resampler = {f"image_proj.{k}": v for k, v in diffusers_resampler_state(self.resampler).items()}
        adapter.load_state_dict(self.key_values | resampler, assign=True)
        return adapter.to(dtype=dtype, device=device)

    def h94_state(self) -> dict[str, torch.Tensor]:
        """The keys of h94's files, which ComfyUI_IPAdapter_plus reads too."""
        layers = {path: 2 * k + 1 for k, (path, _) in enumerate(cross_attention_layers(self.family))}
        return ({f"{IMAGE_PROJ}{k}": v for k, v in self.resampler.items()}
                | {f"{IP_LAYERS}{layers[path]}.{key}": self.key_values[f"{path}.{key}"]
                   for path in layers for key in KEY_VALUE})


def diffusers_resampler_state(resampler: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in resampler.items():
        if match := _TO_KV.match(key):
            out[f"layers.{match[1]}.attn.to_k.weight"], out[f"layers.{match[1]}.attn.to_v.weight"] = value.chunk(2)
            continue
        for pattern, replacement in _TO_DIFFUSERS:
            key = pattern.sub(replacement, key)
        out[key] = value
    return out


def _resampler(tensors: dict[str, torch.Tensor], name: str) -> tuple[ResamplerShape, dict[str, torch.Tensor]]:
    state = {k[len(IMAGE_PROJ):]: v for k, v in tensors.items() if k.startswith(IMAGE_PROJ)}
    if not state:
        if any(".attn2.to_k_ip." in k for k in tensors):
            raise FileFormatError(f"{name} has the Content-Adapter's attention weights (attn2.to_k_ip) but no Resampler "
                                  "(image_proj): it is the official I2V-Adapter bundle. Pick h94's "
                                  "ip-adapter-plus_sd15 as the Content-Adapter file and this bundle as the attention "
                                  "weights' source.")
        raise FileFormatError(f"{name} is not an IP-Adapter: it has no image_proj keys. {USE}.")
    if "latents" not in state:
        kind = ("an IP-Adapter (not Plus: its image projection makes 4 tokens from the image embedding)"
                if "proj.weight" in state else "an IP-Adapter of another kind (FaceID or full-face)")
        raise FileFormatError(f"{name} is {kind}. {USE}.")
    depth = len({k.split(".")[1] for k in state if k.startswith("layers.")})
    foreign = [k for k in state if not (_RESAMPLER_OWN.match(k) or k.startswith("layers."))]
    if foreign or depth == 0:
        raise FileFormatError(f"{name}: its Resampler has {'no layers' if depth == 0 else f'unexpected parts ({foreign[0]})'}; "
                              f"{USE}.")
    queries, hidden = state["latents"].shape[1:]
    shape = ResamplerShape(image_features=state["proj_in.weight"].shape[1], hidden=hidden, depth=depth,
                           queries=queries)
    if hidden % DIM_HEAD:
        raise FileFormatError(f"{name}: a Resampler {hidden} wide does not split into heads of {DIM_HEAD}; {USE}.")
    return shape, state


def _key_values(tensors: dict[str, torch.Tensor], name: str) -> tuple[UNetFamily, dict[str, torch.Tensor]]:
    """`<attn2 path>.to_k_ip.weight` etc. from h94's numbered keys or the bundle's UNet paths, and their family."""
    numbered = {k[len(IP_LAYERS):]: v for k, v in tensors.items() if k.startswith(IP_LAYERS) and k.endswith(KEY_VALUE)}
    paths = {unet_path(k): v for k, v in tensors.items() if ".attn2." in k and k.endswith(KEY_VALUE)}
    if not (numbered or paths):
        raise FileFormatError(f"{name} has no IP-Adapter attention weights (no to_k_ip/to_v_ip keys). {USE}, or the "
                              "official bundle animatediff_v15_v1_ipplus.pth for its attention weights.")
    layers = len(numbered or paths) // 2
    family = next((f for f in (SD15, SDXL) if len(cross_attention_layers(f)) == layers), None)
    if family is None:
        raise FileFormatError(f"{name} has IP-Adapter weights for {layers} cross-attention layers; SD1.5 has "
                              f"{len(cross_attention_layers(SD15))} and SDXL {len(cross_attention_layers(SDXL))}")
    if numbered:
        order = [path for path, _ in cross_attention_layers(family)]
        paths = {f"{order[(int(k.split('.')[0]) - 1) // 2]}.{k.split('.', 1)[1]}": v for k, v in numbered.items()
                 if int(k.split(".")[0]) % 2 == 1 and int(k.split(".")[0]) < 2 * layers}
    for path, dim in cross_attention_layers(family):
        for key in KEY_VALUE:
            found = paths.get(f"{path}.{key}")
            if found is None or tuple(found.shape) != (dim, family.context_dim):
                got = "missing" if found is None else tuple(found.shape)
                raise FileFormatError(f"{name}: {path}.{key} is {got}, expected {(dim, family.context_dim)} for "
                                      f"{family.label}")
    return family, paths


def _is_content_adapter_key(key: str) -> bool:
    return key.startswith((IMAGE_PROJ, IP_LAYERS)) or (".attn2.to_" in key and key.endswith(KEY_VALUE))


def read_content_adapter(path: str | os.PathLike, key_values_from: str | os.PathLike | None = None
                         ) -> ContentAdapterFile:
    """h94's IP-Adapter Plus file; with `key_values_from`, the attention weights come from that file instead (the
    official bundle). Pickles are read safely (tensors only) and only the Content-Adapter's keys are loaded."""
    name = Path(path).name
    tensors, metadata = load_tensors(path, keep=_is_content_adapter_key)
    if metadata.get("format", FORMAT_NAME) != FORMAT_NAME:
        raise FileFormatError(f"{name} is a {metadata['format']!r} file, not an IP-Adapter. {USE}.")
    shape, resampler = _resampler(tensors, name)
    source = name
    if key_values_from is not None:
        source = f"{name} + {Path(key_values_from).name}"
        tensors, _ = load_tensors(key_values_from, keep=_is_content_adapter_key)
    family, key_values = _key_values(tensors, Path(key_values_from or path).name)
    output = resampler["proj_out.weight"].shape[0]
    if output != family.context_dim:
        raise FileFormatError(f"{source}: the Resampler makes tokens {output} wide but the attention weights are "
                              f"{family.label}'s ({family.context_dim}); use a Resampler and attention weights of one "
                              "family")
    return ContentAdapterFile(family, shape, resampler, key_values, source)


def write_content_adapter(path: str | os.PathLike, adapter: ContentAdapterFile) -> None:
    """Atomically write `adapter` in h94's layout (safetensors), which this pack and ComfyUI_IPAdapter_plus read."""
    save_safetensors(path, adapter.h94_state(), {"format": FORMAT_NAME, "base": adapter.family.name,
                                                  "source": adapter.source})
