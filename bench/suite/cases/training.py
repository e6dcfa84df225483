"""One training step of the I2V-Adapter alone on the frozen SD1.5 base (the trainer's own loop, its mixed
precision): plain, with gradient checkpointing, and from cached latents, per clip size."""
import statistics

from ....training.tiny_world import SyntheticClips
from ....training.trainer import DTYPES
from ...harness import TRAINING_CONFIGURATIONS, time_training
from .. import targets
from ..measure import Deadline, Measurement
from ..models import Models
from ..report import Row, measured, met
from ..sizes import Video

CONFIGURATIONS = ("plain", "checkpointing", "cached latents")


def train(models: Models, base, video: Video, configuration: str) -> Measurement:
    sizes = models.sizes
    base.to(models.device, DTYPES[sizes.training_precision])  # back where it was: caching moves the encoders away
    seconds, memory = time_training(base, SyntheticClips(sizes.training_clips, video.frames, video.size), video.size,
                                    video.steps, TRAINING_CONFIGURATIONS[configuration], sizes.gpu,
                                    sizes.training_precision, sizes.training_workers)
    return Measurement(statistics.median(seconds), memory.used, memory.peak, None)


def run(models: Models, deadline: Deadline, title: str, videos: tuple[Video, ...]) -> list[Row]:
    base = models.training_base()
    rows = []
    for video in videos:
        results = {}
        for configuration in CONFIGURATIONS:
            deadline.check()
            results[configuration] = train(models, base, video, configuration)
        rows += [measured(title, f"{video.label}, {name}", m, "s/step", None if name == "plain" else results["plain"])
                 for name, m in results.items()]
    checkpointing = rows[-len(CONFIGURATIONS):][CONFIGURATIONS.index("checkpointing")]  # at the largest size
    checkpointing.target = f"peak < {targets.TRAINING_PEAK_GIB} GiB"
    checkpointing.result = met(results["checkpointing"].peak < targets.TRAINING_PEAK_GIB * 2 ** 30)
    return rows
