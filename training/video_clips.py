"""Training clips from video files, decoded with PyAV: `frames` frames `stride` apart from a random start, scaled
to cover `width`×`height` and centre-cropped.

Every listed video is opened once before training. Missing, unreadable and too-short videos are skipped and
counted; none is ever silently replaced by another. A video that opens but fails to decode later is reported
when it is drawn, and its place in the batch carries no weight in the loss.
"""
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
from tqdm import tqdm

from .video_sources import VideoEntry


@dataclass(frozen=True)
class ClipShape:
    frames: int
    stride: int
    width: int
    height: int

    @property
    def span(self) -> int:
        """Source frames one clip covers."""
        return (self.frames - 1) * self.stride + 1


@dataclass
class Clip:
    pixels: torch.Tensor    # [frames, 3, H, W] in [-1, 1]
    caption: str
    geometry: torch.Tensor  # original height, width, crop top, crop left, target height, width (SDXL's time ids)
    instruction: str | None = None  # what happens in the video (the DQFormer's input)


class Unusable(Exception):
    """A video that cannot give a clip; `kind` groups the reasons in the log."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail = kind, detail


class NoUsableVideos(ValueError):
    pass


def _open(path: Path):
    if not path.is_file():
        raise Unusable("missing", "no such file")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as e:
        raise Unusable("unreadable", str(e)) from e
    if not container.streams.video:
        container.close()
        raise Unusable("no video stream", "the file holds no video")
    return container


def probe(path: Path) -> int:
    """The video's frame count, after checking that its first frame decodes."""
    with _open(path) as container:
        stream = container.streams.video[0]
        try:
            next(container.decode(stream))
        except (av.FFmpegError, StopIteration, ValueError) as e:
            raise Unusable("unreadable", str(e) or "no frame decodes") from e
        if stream.frames > 0:
            return stream.frames
    with _open(path) as container:  # no count in the header (e.g. WebM): count the video packets
        return sum(1 for packet in container.demux(container.streams.video[0]) if packet.size)


def _cover_and_crop(frame: av.VideoFrame, shape: ClipShape) -> tuple[np.ndarray, tuple[int, int]]:
    scale = max(shape.width / frame.width, shape.height / frame.height)
    width, height = max(shape.width, round(frame.width * scale)), max(shape.height, round(frame.height * scale))
    image = frame.to_ndarray(width=width, height=height, format="rgb24", interpolation="AREA")
    top, left = (height - shape.height) // 2, (width - shape.width) // 2
    return image[top:top + shape.height, left:left + shape.width], (top, left)


def read_clip(path: Path, start: int, shape: ClipShape) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames start, start+stride, ... as [frames, 3, H, W] in [-1, 1], and the SDXL geometry."""
    wanted, frames, crop, decoded = range(start, start + shape.span, shape.stride), [], (0, 0), 0
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        size = (stream.codec_context.height, stream.codec_context.width)
        try:
            for decoded, frame in enumerate(container.decode(stream), start=1):
                if decoded - 1 in wanted:
                    image, crop = _cover_and_crop(frame, shape)
                    frames.append(image)
                if decoded == wanted[-1] + 1:
                    break
        except (av.FFmpegError, ValueError) as e:
            raise Unusable("unreadable", f"decoding failed after {decoded} frames ({e})") from e
    if len(frames) < shape.frames:
        raise Unusable("too short", f"only {decoded} frames decode, {wanted[-1] + 1} needed")
    pixels = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return pixels, torch.tensor([*size, *crop, shape.height, shape.width], dtype=torch.float32)


def _summary(failures: dict[str, list[tuple[str, str]]]) -> str:
    return ", ".join(f"{len(items)} {kind} (e.g. {items[0][0]}: {items[0][1]})" for kind, items in failures.items())


class VideoClips:
    """The usable videos of a list, and random clips from them."""

    def __init__(self, entries: list[VideoEntry], shape: ClipShape, source: str, progress: bool = True,
                 workers: int = 8):
        self.shape, self.source = shape, source
        with ThreadPoolExecutor(max_workers=workers) as pool:
            counts = list(tqdm(pool.map(self._probe, entries), total=len(entries), desc="checking videos",
                               disable=not progress, leave=False))
        self.entries, self.failures = [], defaultdict(list)
        for entry, count in zip(entries, counts):
            if isinstance(count, Unusable):
                self.failures[count.kind].append((entry.path.name, count.detail))
            elif count < shape.span:
                self.failures["too short"].append((entry.path.name, f"{count} frames, {shape.span} needed"))
            else:
                self.entries.append((entry, count))
        if not self.entries:
            raise NoUsableVideos(self._nothing_usable(len(entries), [c for c in counts if isinstance(c, int)]))

    @staticmethod
    def _probe(entry: VideoEntry) -> int | Unusable:
        try:
            return probe(entry.path)
        except Unusable as e:
            return e

    def _nothing_usable(self, tried: int, frame_counts: list[int]) -> str:
        if tried == 0:
            return f"no videos found in {self.source}"
        message = f"no usable videos in {self.source}: tried {tried}: {_summary(self.failures)}."
        if frame_counts:
            message += (f" --frames {self.shape.frames} at --stride {self.shape.stride} needs {self.shape.span} "
                        f"frames but the longest readable video has {max(frame_counts)}: lower --frames or --stride.")
        return message

    def report(self) -> str:
        skipped = sum(len(items) for items in self.failures.values())
        text = f"{len(self.entries)} usable videos in {self.source}"
        return text + (f"; skipped {skipped}: {_summary(self.failures)}" if skipped else "")

    def __len__(self) -> int:
        return len(self.entries)

    def describe(self, index: int) -> str:
        return self.entries[index][0].path.name

    def identity(self, index: int) -> str:
        """What a cached clip of this video depends on."""
        entry, _ = self.entries[index]
        stat = entry.path.stat()
        return f"{entry.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{entry.caption}|{entry.instruction or ''}"

    def placeholder(self) -> Clip:
        shape = self.shape
        return Clip(torch.zeros(shape.frames, 3, shape.height, shape.width), "", torch.zeros(6))

    def clip(self, index: int, generator: torch.Generator) -> Clip:
        """A clip from a random start (drawn from `generator`); raises Unusable."""
        entry, count = self.entries[index]
        start = int(torch.randint(0, count - self.shape.span + 1, (), generator=generator))
        pixels, geometry = read_clip(entry.path, start, self.shape)
        return Clip(pixels, entry.caption, geometry, entry.instruction)
