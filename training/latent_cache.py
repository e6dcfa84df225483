"""Optional on-disk cache of VAE posteriors, caption embeddings, the Content-Adapter's image tokens and the
vision-language model's features for the DQFormer (--cache-latents, always with --train dqformer): encoded once
before training, after which the VAE and the text, image and vision-language models leave the GPU.

One clip per video is cached (its start drawn once from the seed), so every epoch sees the same frames of a video;
caption dropout still varies (the empty caption's embedding is computed once per run). Files are keyed by the
video (path, size, modification time, caption), the base, the clip shape and the seed, and written atomically, so
an interrupted caching pass resumes where it stopped and a changed video is encoded again.
"""
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from tqdm import tqdm

from ..kernels.tensor_files import save_safetensors
from .seeds import generator as seeded
from .video_clips import Unusable


@dataclass
class CachedClip:
    moments: torch.Tensor        # [frames, 2C, h, w]: the VAE posterior
    context: torch.Tensor        # [tokens, dim]
    pooled: torch.Tensor | None  # [dim] (SDXL)
    geometry: torch.Tensor
    image_tokens: torch.Tensor | None = None  # [queries, dim] (Content-Adapter)
    instruction: torch.Tensor | None = None   # [T, hidden]: the vision-language model's features (DQFormer) ...
    instruction_mask: torch.Tensor | None = None
    states: torch.Tensor | None = None        # ... [states, T', hidden]
    states_mask: torch.Tensor | None = None


class CachedClips:
    def __init__(self, files: list[Path], names: list[str]):
        self.files, self.names = files, names

    def __len__(self) -> int:
        return len(self.files)

    def describe(self, index: int) -> str:
        return self.names[index]

    def clip(self, index: int, generator: torch.Generator | None = None) -> CachedClip:
        tensors = load_file(str(self.files[index]))
        return CachedClip(tensors["moments"], tensors["context"], tensors.get("pooled"), tensors["geometry"],
                          *(tensors.get(name) for name in ("image_tokens", "instruction", "instruction_mask", "states",
                                                           "states_mask")))

    def placeholder(self) -> CachedClip:
        return CachedClip(**{k: torch.zeros_like(v) if v is not None else None
                             for k, v in vars(self.clip(0)).items()})


def _file(folder: Path, key: dict, identity: str) -> Path:
    digest = hashlib.sha256(json.dumps([key, identity], sort_keys=True).encode()).hexdigest()[:32]
    return folder / f"{digest}.safetensors"


def cache_clips(clips, base, image, features, folder: Path, key: dict, accelerator, log, progress: bool = True
                ) -> CachedClips:
    """Encode every clip not cached yet (each process its share), then list the cached ones. `key`: what else the
    cache depends on (base, Content-Adapter, vision-language model, clip shape, seed). `image`: the Content-Adapter's
    conditioning, `features`: the DQFormer's vision-language model, if any."""
    folder.mkdir(parents=True, exist_ok=True)
    files = [_file(folder, key, clips.identity(i)) for i in range(len(clips))]
    mine = range(accelerator.process_index, len(clips), accelerator.num_processes)
    for index in tqdm(mine, desc="caching latents", disable=not (progress and accelerator.is_main_process)):
        if files[index].exists():
            continue
        try:
            clip = clips.clip(index, seeded(key["seed"], index, 3))
        except Unusable as e:
            log(f"skipped {clips.describe(index)}: {e}")
            continue
        moments = base.encode_video(clip.pixels[None].to(accelerator.device))[0]
        conditioning = base.text([clip.caption])
        tensors = {"moments": moments.half(), "context": conditioning.context[0], "geometry": clip.geometry}
        if conditioning.pooled is not None:
            tensors["pooled"] = conditioning.pooled[0]
        if image is not None:
            tensors["image_tokens"] = image.tokens(clip.pixels[None, 0])[0]
        if features is not None:
            found = features(clip.pixels[0], clip.instruction)
            tensors |= {"instruction": found.instruction[0], "instruction_mask": found.instruction_mask[0],
                        "states": found.states, "states_mask": found.states_mask}
        save_safetensors(files[index], tensors, {"video": clips.describe(index)})
    accelerator.wait_for_everyone()
    cached = [i for i in range(len(clips)) if files[i].exists()]
    if not cached:
        raise ValueError(f"no clip could be cached in {folder}: every video failed to decode (see the log)")
    return CachedClips([files[i] for i in cached], [clips.describe(i) for i in cached])
