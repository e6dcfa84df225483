"""The built-in demonstration (`python training/train_adapter.py` with no arguments): on the CPU in a few minutes,
fit a tiny base to a synthetic video world, train the I2V-Adapter (or look-back layers, or the DQFormer) on it
exactly as on real videos, write the file, and show that it lowers the held-out denoising loss because it uses the
first frame (the DQFormer: the instruction)."""
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..kernels.adapter_file import read_adapter
from ..kernels.dqformer_file import read_dqformer
from ..kernels.look_back_file import read_look_back
from ..kernels.unet_layout import TINY
from .evaluation import held_out_loss
from .instruction_features import TextEncoderFeatures
from .tiny_base import fit_tiny_base, tiny_base
from .tiny_world import SyntheticClips
from .trainer import TrainConfig, build_video_unet, train
from .validation import ValidationSettings
from .video_unet import VideoUNet

FRAMES, SIZE = 8, 32
DEMO_STEPS = 150
# The DQFormer learns slower: its signal reaches the frames through the frozen base's cross-attention only.
DQFORMER_DEMO_STEPS, DQFORMER_LEARNING_RATE = 1000, 3e-3
DEMO_FOLDER = Path("i2v_adapter_demo")


@dataclass
class DemoResult:
    untrained: float  # held-out loss with the identity (zero-initialised) modules: the base alone
    trained: float    # with the trained file
    swapped: float    # with the trained file, each video given another video's first frame
    outputs: dict[str, Path]


def demo_config(folder: Path, train: tuple[str, ...], steps: int, resume: str | None, progress: bool,
                init_from: tuple[Path, ...] = ()) -> TrainConfig:
    names = {what: f"{what}_tiny_demo.safetensors" for what in train}
    return TrainConfig(train=train, outputs={k: folder / names[k] for k in train}, run_dir=folder / "run",
                       frames=FRAMES, stride=1, width=SIZE, height=SIZE, steps=steps, batch_size=4,
                       learning_rate=DQFORMER_LEARNING_RATE if "dqformer" in train else 1e-2, caption_dropout=0.1, workers=0, checkpoint_every=50, resume=resume,
                       look_back=dict(depth=3, kernel=3, adapter_kernel=3, dense=False), save_dtype="fp32",
                       dqformer=dict(width=64, layers=2, heads=4, queries=16), progress=progress,
                       init_from=init_from)


def trained_model(base, outputs: dict[str, Path]) -> VideoUNet:
    """The base with the modules read back from the written files."""
    adapter = read_adapter(outputs["i2v_adapter"]).build() if "i2v_adapter" in outputs else None
    look_back = read_look_back(outputs["look_back"]).build() if "look_back" in outputs else None
    dqformer = read_dqformer(outputs["dqformer"]).build() if "dqformer" in outputs else None
    return VideoUNet(base.unet, TINY, adapter, look_back, dqformer=dqformer)


def demo_world(base_steps: int = 150, log=print, instructed: bool = False):
    """(the fitted and frozen tiny base, the training world, the held-out clips); `instructed`: the world whose
    instructions decide what later frames show (for the DQFormer)."""
    world = SyntheticClips(512, FRAMES, SIZE, seed=0, instructed=instructed)
    held_out = SyntheticClips(24, FRAMES, SIZE, seed=1, instructed=instructed)
    log(f"1/3 fitting a tiny text-to-image base to single frames of a synthetic world ({base_steps} steps) ...")
    base = tiny_base()
    losses = fit_tiny_base(base, world, base_steps)
    log(f"    base denoising loss {sum(losses[-10:]) / 10:.4f}; the base is now frozen")
    return base, world, held_out


def train_and_compare(base, world, held_out, config: TrainConfig, log=print) -> DemoResult:
    """Train on `world` as on real videos, then compare held-out losses: identity start, trained, and trained with
    every clip given another clip's first frame (or, when the DQFormer trains, another clip's instruction)."""
    features = TextEncoderFeatures(base.text) if "dqformer" in config.train else None
    instructed = features is not None
    loss = lambda model, swap=False: held_out_loss(model, base, held_out, config.noise_schedule, features=features,
                                                   swap_first_frames=swap and not instructed,
                                                   swap_instructions=swap and instructed)
    identity = build_video_unet(base, config, None, features=features)
    untrained = loss(identity)
    identity.remove()
    log(f"2/3 training {' and '.join(config.train)} on {FRAMES}-frame clips ({config.steps} steps, checkpoints in "
        f"{config.run_dir})")
    result = train(config, base, world, features=features, validation_clips=held_out)
    model = trained_model(base, result.outputs)
    trained, swapped = loss(model), loss(model, swap=True)
    model.remove()
    control = "another clip's instruction" if instructed else "another clip's first frame"
    log(f"3/3 held-out denoising loss on frames 1..{FRAMES - 1} of {len(held_out)} unseen clips:\n"
        f"    zero-initialised: {untrained:.4f}\n"
        f"    trained:          {trained:.4f} ({(trained / untrained - 1) * 100:+.1f}%)\n"
        f"    trained, but each clip given {control}: {swapped:.4f} (what it learnt comes from "
        f"{'the instruction' if instructed else 'frame 0'})")
    return DemoResult(untrained, trained, swapped, result.outputs)


def demo_steps(train_what: tuple[str, ...]) -> int:
    return DQFORMER_DEMO_STEPS if "dqformer" in train_what else DEMO_STEPS


def run_demo(folder: Path = DEMO_FOLDER, train_what: tuple[str, ...] = ("i2v_adapter",), steps: int | None = None,
             resume: str | None = None, progress: bool = True, init_from: tuple[Path, ...] = (),
             validation: ValidationSettings = ValidationSettings(), log=print) -> DemoResult:
    folder.mkdir(parents=True, exist_ok=True)
    base, world, held_out = demo_world(log=log, instructed="dqformer" in train_what)
    config = demo_config(folder, train_what, steps or demo_steps(train_what), resume, progress, init_from)
    config.validation = validation
    if resume is None:
        shutil.rmtree(config.run_dir, ignore_errors=True)  # the demonstration's own previous run
    result = train_and_compare(base, world, held_out, config, log)
    for what, path in result.outputs.items():
        log(f"wrote {path} ({what}, {path.stat().st_size // 1024} KiB). It is for the tiny demonstration model only: "
            "ComfyUI refuses it; train on your SD1.5/SDXL checkpoint with --base for a file ComfyUI loads.")
    return result
