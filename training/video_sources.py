"""Where the training videos and their captions are listed: a folder of videos with same-name .txt captions, a CSV
(WebVid's `videoid,name` columns with --video-folder, or `path,text`), JSONL lines `{"video", "caption"}`, or
Something-Something v2's label file (`[{"id", "label", ...}]`, with --video-folder holding `<id>.webm`). An
instruction per video (for the DQFormer) comes from an `instruction` column or key, or is SSv2's label.
Paths in a CSV or JSONL file are relative to that file's folder unless absolute."""
import csv
import json
from dataclasses import dataclass
from pathlib import Path

VIDEO_EXTENSIONS = {".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v", ".gif"}


@dataclass(frozen=True)
class VideoEntry:
    path: Path
    caption: str
    instruction: str | None = None  # what happens in the video, for the DQFormer


def _read_caption(video: Path) -> str | None:
    text = video.with_suffix(".txt")
    return text.read_text(encoding="utf-8").strip() if text.is_file() else None


def _folder(folder: Path) -> tuple[list[VideoEntry], list[str]]:
    videos = sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
    captions = {video: _read_caption(video) for video in videos}
    uncaptioned = [video.name for video, caption in captions.items() if caption is None]
    notes = [f"{len(uncaptioned)} of {len(videos)} videos have no same-name .txt caption and train with an empty "
             f"caption (e.g. {uncaptioned[0]})"] if uncaptioned else []
    return [VideoEntry(video, caption or "") for video, caption in captions.items()], notes


def _csv(table: Path, video_folder: Path | None) -> list[VideoEntry]:
    with table.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = set(reader.fieldnames or [])
        rows = list(reader)
    instruction = lambda row: row.get("instruction") or None
    if {"videoid", "name"} <= columns:
        if video_folder is None:
            raise ValueError(f"{table.name} has WebVid's videoid,name columns: pass --video-folder, the folder holding "
                             "the <videoid>.mp4 files")
        return [VideoEntry(video_folder / f"{row['videoid']}.mp4", row["name"] or "", instruction(row)) for row in rows]
    if {"path", "text"} <= columns:
        return [VideoEntry(table.parent / row["path"], row["text"] or "", instruction(row)) for row in rows]
    raise ValueError(f"{table.name} has the columns {sorted(columns)}; a training CSV needs either videoid,name "
                     "(WebVid, with --video-folder) or path,text")


def _jsonl(lines: Path) -> list[VideoEntry]:
    entries = []
    for number, line in enumerate(lines.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            entries.append(VideoEntry(lines.parent / record["video"], record.get("caption") or "",
                                      record.get("instruction") or None))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{lines.name} line {number} is not a JSON object with a \"video\" path and a "
                             f"\"caption\" ({type(e).__name__}: {e})") from e
    return entries


def _something_something(labels: Path, video_folder: Path | None) -> list[VideoEntry]:
    """SSv2's train/validation .json: each label ("Pushing a cup from left to right") is caption and instruction."""
    if video_folder is None:
        raise ValueError(f"{labels.name} is a Something-Something v2 label file: pass --video-folder, the folder holding "
                         "the <id>.webm files")
    try:
        records = json.loads(labels.read_text(encoding="utf-8"))
        return [VideoEntry(video_folder / f"{r['id']}.webm", r["label"], r["label"]) for r in records]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{labels.name} is not a Something-Something v2 label file (a JSON list of objects with "
                         f"\"id\" and \"label\"): {type(e).__name__}: {e}") from e


def require_instructions(entries: list[VideoEntry], data: Path) -> None:
    """The DQFormer trains on an instruction per video: name the file and the column that lacks them."""
    missing = [entry.path.name for entry in entries if not entry.instruction]
    if missing:
        where = {".csv": "an \"instruction\" column", ".jsonl": "an \"instruction\" key on each line"}.get(
            data.suffix.lower(), "a .csv with an \"instruction\" column, a .jsonl with an \"instruction\" key, or "
                                 "Something-Something v2's label .json (a folder of videos has no instructions)")
        raise ValueError(f"--train dqformer needs an instruction per video: {len(missing)} of {len(entries)} videos in "
                         f"{data.name} have none (e.g. {missing[0]}); give {where}")


def list_videos(data: Path, video_folder: Path | None = None) -> tuple[list[VideoEntry], list[str]]:
    """The listed videos (not yet opened) and notes for the log."""
    if data.is_dir():
        return _folder(data)
    if not data.is_file():
        raise FileNotFoundError(f"--data {data} does not exist")
    if data.suffix.lower() == ".csv":
        return _csv(data, video_folder), []
    if data.suffix.lower() == ".jsonl":
        return _jsonl(data), []
    if data.suffix.lower() == ".json":
        return _something_something(data, video_folder), []
    raise ValueError(f"--data must be a folder of videos, a .csv, a .jsonl or a Something-Something v2 label .json "
                     f"file; {data.name} is none of these")
