"""Each addition at every SD1.5 site against its floor (bench/floor.py), and GroupNorm across frames against the
per-frame GroupNorm it replaces (the same floor)."""
from ...floor import measure
from .. import targets
from ..measure import Deadline
from ..models import Models
from ..report import Row, met
from ..sizes import Video

ACROSS, PER_FRAME = "GroupNorm across frames", "GroupNorm per frame (host's)"


def run(models: Models, deadline: Deadline, title: str, video: Video, videos: int) -> list[Row]:
    found, _ = measure(video.frames, videos, video.size, models.sizes.repeats, models.sizes.gpu)
    rows = {r["name"]: Row(title, r["name"], f"{r['ms']:.2f} ms", f"{r['time_ratio']:.2f}× floor",
                           "" if r["memory_mb"] is None else f"{r['memory_mb']:.0f}") for r in found}
    times = {r["name"]: r["ms"] for r in found}
    ratio = times[ACROSS] / times[PER_FRAME]
    rows[ACROSS].target = f"≤ {targets.GROUP_NORM_ACROSS:.2f}× per frame ({ratio:.2f}×)"
    rows[ACROSS].result = met(ratio <= targets.GROUP_NORM_ACROSS)
    return list(rows.values())
