"""The suite's rows and its one markdown table."""
from dataclasses import astuple, dataclass

from .measure import Measurement

COLUMNS = ("case", "configuration", "time", "time ×", "memory added MiB", "peak MiB", "peak ×", "target", "result")
ERROR = "error"


@dataclass
class Row:
    case: str
    configuration: str
    time: str = ""
    time_ratio: str = ""   # against the case's baseline
    added: str = ""
    peak: str = ""
    peak_ratio: str = ""
    target: str = ""
    result: str = ""       # met, missed, timed out, error: …


def mib(size: int) -> str:
    return f"{size / 2 ** 20:.0f}"


def ratio(value: float, base: float) -> str:
    return f"{value / base:.3f}×"


def met(ok: bool) -> str:
    return "met" if ok else "missed"


def measured(case: str, configuration: str, m: Measurement, unit: str, base: Measurement | None = None,
             scale: float = 1.0) -> Row:
    """A row of one configuration; `scale` turns the run's seconds into `unit` (per step, per frame)."""
    return Row(case, configuration, f"{m.seconds * scale:.3f} {unit}",
               ratio(m.seconds, base.seconds) if base else "", mib(m.added), mib(m.peak),
               ratio(m.peak, base.peak) if base else "")


def table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in astuple(row)) + " |" for row in rows]
    return "\n".join(lines)
