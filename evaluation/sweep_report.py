"""The Frame Similarity Prior sweep's outputs: a markdown table beside the I2V-Adapter paper's Table 2, and a plot
of CLIPTemp, FlowScore and WarpingError against t0 (at p = 1) and against p (at t0 = 1)."""
import math
import os
from dataclasses import dataclass
from pathlib import Path

# The I2V-Adapter paper's Table 2: (t0, p) -> CLIPTemp, FlowScore, WarpingError (its DoverVQA is left out).
PAPER_TABLE_2 = {
    (1.0, 1.0): (0.9393, 0.8395, 11.7421), (0.9, 1.0): (0.9445, 0.4168, 10.0771),
    (0.8, 1.0): (0.9454, 0.2712, 9.1360), (0.7, 1.0): (0.9485, 0.1912, 8.3508), (0.6, 1.0): (0.9449, 0.1428, 7.6332),
    (1.0, 0.9): (0.9379, 0.9895, 12.0888), (1.0, 0.7): (0.9389, 0.9064, 11.8403),
    (1.0, 0.5): (0.9391, 0.8046, 11.6175), (1.0, 0.3): (0.9404, 0.7477, 11.4993),
    (1.0, 0.1): (0.9415, 0.6918, 11.3017),
}
METRICS = ("clip_temp", "flow_score", "warping_error")
LABELS = {"clip_temp": "CLIPTemp", "flow_score": "FlowScore", "warping_error": "WarpingError"}


@dataclass(frozen=True)
class SweepRow:
    t0: float
    p: float
    varied: str      # "t0" (at p = 1) or "p" (at t0 = 1), as the paper's two halves
    metrics: dict    # I2V Video Metrics' numbers by output name
    seconds: float   # the run, as the server took it


def _number(value: float, digits: int) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def markdown_table(rows: list[SweepRow]) -> str:
    lines = ["| t0 | p | CLIPTemp | FlowScore | WarpingError | paper CLIPTemp | paper FlowScore | paper WarpingError "
             "| run s |", "|" + "---|" * 9]
    for row in rows:
        paper = PAPER_TABLE_2.get((row.t0, row.p), (None,) * 3)
        cells = [f"{row.t0:.2f}", f"{row.p:.2f}", *(_number(row.metrics[m], 4) for m in METRICS),
                 *(_number(v, 4) for v in paper), f"{row.seconds:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[SweepRow], path: Path) -> None:
    """One column per half of the sweep, one row per metric; the paper's values dashed beside ours. Written to a
    temporary name, then renamed."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("the plot needs matplotlib: pip install matplotlib (the table is written without it)")
    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(len(METRICS), 2, figsize=(9, 8), squeeze=False)
    for column, (varied, fixed) in enumerate((("t0", "p = 1"), ("p", "t0 = 1"))):
        half = sorted((r for r in rows if r.varied == varied), key=lambda r: getattr(r, varied))
        xs = [getattr(r, varied) for r in half]
        for line, metric in enumerate(METRICS):
            axis = axes[line][column]
            axis.plot(xs, [r.metrics[metric] for r in half], "o-", label="this run")
            paper = [(x, PAPER_TABLE_2[(r.t0, r.p)][line]) for x, r in zip(xs, half) if (r.t0, r.p) in PAPER_TABLE_2]
            if paper:
                axis.plot(*zip(*paper), "s--", color="grey", label="paper (Table 2)")
            axis.set_xlabel(f"{varied} (at {fixed})")
            axis.set_ylabel(LABELS[metric])
            axis.grid(alpha=0.3)
    axes[0][0].legend()
    figure.suptitle("Frame Similarity Prior: motion against stability")
    figure.tight_layout()
    temporary = path.with_name(f".{path.name}.partial")
    figure.savefig(temporary, format="png", dpi=100)
    pyplot.close(figure)
    os.replace(temporary, path)
