"""Micro-batches in a fixed order. The k-th micro-batch of a run holds the same clips (and the same random starts and
caption dropouts) whether the run went straight through or stopped and resumed, and whichever data-loading worker
built it: a checkpoint's data position is k. Each process takes its own slice of every global batch."""
import signal
from dataclasses import dataclass, fields, replace
from functools import lru_cache

import torch
from torch.utils.data import DataLoader, Dataset

from ..kernels.vlm_io import stack_padded
from .seeds import generator as seeded
from .video_clips import Unusable


@dataclass
class MicroBatch:
    geometry: torch.Tensor            # [B, 6]
    valid: torch.Tensor               # [B] bool: False where the video failed (no weight in the loss)
    dropped: torch.Tensor             # [B] bool: caption replaced by the empty caption
    failures: list[str]
    pixels: torch.Tensor | None = None   # [B, F, 3, H, W] (decoded videos) ...
    captions: list[str] | None = None
    moments: torch.Tensor | None = None  # ... or [B, F, 2C, h, w] with their embeddings (cached)
    context: torch.Tensor | None = None
    pooled: torch.Tensor | None = None
    image_tokens: torch.Tensor | None = None  # the Content-Adapter's, cached
    instruction: torch.Tensor | None = None   # the DQFormer's features, cached and padded: [B, T, hidden] ...
    instruction_mask: torch.Tensor | None = None
    states: torch.Tensor | None = None        # ... [B, states, T', hidden]
    states_mask: torch.Tensor | None = None

    def pin_memory(self) -> "MicroBatch":
        """Its tensors in page-locked memory (the DataLoader's pin_memory), so that copies to the GPU do not block."""
        return replace(self, **{f.name: getattr(self, f.name).pin_memory() for f in fields(self)
                                if isinstance(getattr(self, f.name), torch.Tensor)})


def collate(items: list, valid: list[bool], dropped: list[bool], failures: list[str]) -> MicroBatch:
    stacked = {}
    for name in ("pixels", "moments", "context", "pooled", "image_tokens", "geometry"):
        if getattr(items[0], name, None) is not None:
            stacked[name] = torch.stack([getattr(item, name) for item in items])
    for name, dim in (("instruction", -2), ("instruction_mask", -1), ("states", -2), ("states_mask", -1)):
        if getattr(items[0], name, None) is not None:
            stacked[name] = stack_padded([getattr(item, name) for item in items], dim)
    if hasattr(items[0], "caption"):
        stacked["captions"] = [item.caption for item in items]
    return MicroBatch(valid=torch.tensor(valid), dropped=torch.tensor(dropped), failures=failures, **stacked)


class MicroBatches(Dataset):
    def __init__(self, clips, batch_size: int, seed: int, caption_dropout: float, process: int = 0,
                 processes: int = 1):
        self.clips, self.batch_size, self.seed, self.caption_dropout = clips, batch_size, seed, caption_dropout
        self.process, self.processes = process, processes

    @lru_cache(maxsize=4)
    def _order(self, epoch: int) -> list[int]:
        return torch.randperm(len(self.clips), generator=seeded(self.seed, epoch, 1)).tolist()

    def __getitem__(self, k: int) -> MicroBatch:
        first = (k * self.processes + self.process) * self.batch_size
        items, valid, dropped, failures = [], [], [], []
        for position in range(first, first + self.batch_size):
            epoch, slot = divmod(position, len(self.clips))
            index = self._order(epoch)[slot]
            draw = seeded(self.seed, position, 2)
            try:
                items.append(self.clips.clip(index, draw))
                valid.append(True)
            except Unusable as e:
                failures.append(f"{self.clips.describe(index)}: {e}")
                items.append(None)
                valid.append(False)
            dropped.append(bool(torch.rand((), generator=draw) < self.caption_dropout))
        stand_in = next((item for item in items if item is not None), None) or self.clips.placeholder()
        items = [item if item is not None else stand_in for item in items]  # carries no weight: valid is False
        return collate(items, valid, dropped, failures)


def _ignore_ctrl_c(worker: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C asks the training loop to stop after its step


def micro_batches(batches: MicroBatches, start: int, stop: int, workers: int, pin_memory: bool = False) -> DataLoader:
    """Micro-batches start..stop-1, built by `workers` processes (0: in this one), in page-locked memory if asked."""
    return DataLoader(batches, batch_size=None, sampler=range(start, stop), num_workers=workers,
                      persistent_workers=workers > 0, worker_init_fn=_ignore_ctrl_c, pin_memory=pin_memory)
