"""How the suite measures: runs of a case alternating with its baseline, the median of the timed runs after one
warm-up, peak memory around each run, and each case's time limit, checked at safe points."""
import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import torch

from ..harness import PeakMemory


class TimedOut(Exception):
    pass


class Deadline:
    def __init__(self, seconds: float):
        self.seconds, self.end = seconds, time.monotonic() + seconds

    def check(self) -> None:
        """The safe points: between runs, and after every sampler step (ComfyUI's progress hook)."""
        if time.monotonic() > self.end:
            raise TimedOut(f"timed out (limit {self.seconds:.0f} s)")

    def left(self) -> float:
        return self.end - time.monotonic()


_running: list[Deadline] = []


def _after_sampler_step(value, total, preview, node_id=None):
    if _running:
        _running[-1].check()


@contextmanager
def time_limit(seconds: float):
    """A Deadline for the block; sampling inside it stops after the step that passes it (as ComfyUI's Cancel)."""
    import comfy.utils
    comfy.utils.set_progress_bar_global_hook(_after_sampler_step)
    _running.append(Deadline(seconds))
    try:
        yield _running[-1]
    finally:
        _running.pop()


@dataclass
class Measurement:
    seconds: float       # median of the timed runs
    added: int           # bytes: the most a timed run allocated above what was resident when it started
    peak: int            # bytes: the highest peak of a timed run, what was resident included
    first: float | None  # seconds of its warm-up run (loading, allocator, compilation), if it had one


def timed(run: Callable[[], object], gpu: bool) -> tuple[float, PeakMemory]:
    with PeakMemory(gpu) as memory:
        start = time.perf_counter()
        run()
        if gpu:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    return seconds, memory


def warm_up(runs: dict[str, Callable[[], object]], gpu: bool, deadline: Deadline) -> dict[str, float]:
    """Each run once, not counted (loading, allocator, kernels, compilation): its seconds by name."""
    first = {}
    for name, run in runs.items():
        deadline.check()
        first[name] = timed(run, gpu)[0]
    return first


def alternate(runs: dict[str, Callable[[], object]], repeats: int, gpu: bool, deadline: Deadline,
              first: dict[str, float] | None = None) -> dict[str, Measurement]:
    """`repeats` rounds of all runs in turn, so that drift (clocks, the allocator, other load) falls on each alike,
    after each run's warm-up, or the warm-up already done (`first`)."""
    first = warm_up(runs, gpu, deadline) if first is None else first
    results = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            deadline.check()
            results[name].append(timed(run, gpu))
    return {name: Measurement(statistics.median(s for s, _ in done), max(m.used for _, m in done),
                              max(m.peak for _, m in done), first.get(name)) for name, done in results.items()}
