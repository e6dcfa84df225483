"""Every size, repeat count and time limit of the suite, per mode, in one place: the GPU run (real shapes, fp16,
at most 8 minutes on one H200-class GPU) and the daily CPU smoke (the same cases at tiny sizes, under 4 minutes
on 2 cores)."""
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Video:
    frames: int
    size: int        # width and height in pixels
    steps: int = 1   # sampler steps of one run (the recipe: its full schedule; training: timed steps)

    @property
    def label(self) -> str:
        return f"{self.frames}×{self.size}²"


@dataclass(frozen=True)
class Sizes:
    mode: str
    note: str                       # printed above the table
    gpu: bool
    dtype: torch.dtype              # UNets, adapters and temporal layers compute in it
    shared_weights: bool            # parameters of one shape share one tensor (random_models.random_like)
    repeats: int                    # timed runs of each configuration, after one warm-up
    total_seconds: int              # the whole run, model building included
    limits: dict[str, int]          # seconds per case, by case kind
    ksampler: tuple[tuple[str, Video], ...]  # (family, video); the first SD1.5 one holds the adapter targets
    temporal_frames: tuple[int, ...]
    temporal_size: int
    recipe: Video                   # steps: the full schedule the Frame Similarity Prior starts into
    t0s: tuple[float, ...]
    long_video: tuple[Video, ...]   # the first is the baseline
    context: tuple[int, int]        # context windows' length and overlap
    compile: Video
    compile_backend: str
    training: tuple[Video, ...]     # the last holds the memory target
    training_precision: str
    training_workers: int           # data loader processes
    training_clips: int
    floor: Video                    # bench/floor.py's additions at every SD1.5 site ...
    floor_videos: int               # ... for this many videos per UNet call (2 under CFG)
    official: Video                 # the anchor: 16 frames, which the official pipeline's degradation assumes


GPU = Sizes(
    mode="gpu", note="Random weights at real shapes.", gpu=True, dtype=torch.float16, shared_weights=False, repeats=3,
    total_seconds=480,
    limits=dict(ksampler=60, temporal=40, recipe=90, long_video=40, compile=150, training=80, floor=40, official=150),
    ksampler=(("sd15", Video(16, 512, 2)), ("sd15", Video(32, 512, 2)), ("sdxl", Video(16, 1024, 2))),
    temporal_frames=(16, 32, 64, 128), temporal_size=512,
    recipe=Video(16, 512, 25), t0s=(1.0, 0.8, 0.6),
    long_video=(Video(64, 512), Video(128, 512)), context=(16, 4),
    compile=Video(16, 512, 2), compile_backend="inductor",
    training=(Video(16, 256, 2), Video(16, 512, 2)), training_precision="fp16", training_workers=2,
    training_clips=4, floor=Video(16, 512), floor_videos=2, official=Video(16, 512, 25),
)

# bf16: the CPU's fast matrix path (fp32 convolutions run several times slower at these sizes). Shared weights keep
# SDXL's 2.6 B parameters in a few hundred MB. One SD1.5 KSampler shape and one training size: more add time, not
# code. inductor needs minutes to compile the UNet on 2 cores, so the smoke traces it with dynamo's eager backend:
# the wrapper, tracing through our patches and the recompilation count still run.
CPU_SMOKE = Sizes(
    mode="cpu-smoke", note="The CPU smoke: tiny sizes and shared random weights, to show that every case runs; its "
    "times and targets say nothing of a GPU's. TorchCompileModel traces with dynamo's eager backend.",
    gpu=False, dtype=torch.bfloat16, shared_weights=True, repeats=1, total_seconds=240,
    limits=dict(ksampler=40, temporal=20, recipe=40, long_video=45, compile=45, training=40, floor=20, official=150),
    ksampler=(("sd15", Video(2, 64)), ("sdxl", Video(2, 64))),
    temporal_frames=(2, 4, 8, 16), temporal_size=64,
    recipe=Video(2, 64, 2), t0s=(1.0, 0.8, 0.6),
    long_video=(Video(4, 64), Video(6, 64)), context=(2, 0),
    compile=Video(2, 64, 2), compile_backend="eager",
    training=(Video(2, 32),), training_precision="bf16", training_workers=0, training_clips=2,
    floor=Video(2, 64), floor_videos=1, official=Video(16, 64, 1),
)
