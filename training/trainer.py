"""The training loop: the I2V-Adapter and/or look-back layers on a frozen base (+ optional motion modules), with
accelerate (one process per GPU, DDP), mixed precision, gradient checkpointing and accumulation, periodic
checkpoints, exact resume, and a stop on a non-finite loss."""
import copy
import json
import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from tqdm import tqdm

from ..kernels.adapter_file import write_adapter
from ..kernels.dqformer import DQFormer, DQFormerShape
from ..kernels.dqformer_file import write_dqformer
from ..kernels.first_frame_attention import I2VAdapter
from ..kernels.look_back import LookBackLayers
from ..kernels.look_back_file import write_look_back
from ..kernels.motion_module_file import MotionModuleFile
from ..kernels.noise_schedule import SD_DEFAULT, NoiseSchedule
from ..kernels.state_schedule import frame_state_weights
from ..kernels.tensor_files import atomic_path
from ..kernels.unet_layout import SDXL
from .base_model import BaseModel
from .batches import MicroBatch, MicroBatches, micro_batches
from .checkpoints import Checkpoints
from .denoising import draw_noise, noised_video, video_loss
from .image_conditioning import ImageConditioning
from .initial_weights import initial_weights, load_initial_weights
from .latent_cache import cache_clips
from .seeds import generator as seeded
from .text_encoders import Conditioning
from .validation import FirstClips, ValidationSettings, log_videos, validate
from .video_unet import StateInputs, VideoUNet

TRAINABLE = ("i2v_adapter", "look_back", "dqformer")
DTYPES = {"no": torch.float32, "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class TrainConfig:
    train: tuple[str, ...]     # a subset of TRAINABLE
    outputs: dict[str, Path]   # what -> the .safetensors file written at the end
    run_dir: Path              # checkpoints/, train_log.jsonl, latent_cache/
    frames: int = 16
    stride: int = 4
    width: int = 256
    height: int = 256
    steps: int = 1000          # optimizer steps
    batch_size: int = 1        # videos per process and micro-step
    gradient_accumulation: int = 1
    learning_rate: float = 1e-4
    warmup_steps: int = 0
    weight_decay: float = 0.0  # AdamW's decay would pull W'_Q and the channel mix away from their identity start
    max_grad_norm: float = 1.0
    caption_dropout: float = 0.1
    seed: int = 0
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    tf32: bool = True
    adam8bit: bool = False
    workers: int = 4
    cache_latents: bool = False
    cache_dir: Path | None = None
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    resume: str | None = None
    log_every: int = 10        # steps between host reads of the loss (log, progress, divergence check)
    look_back: dict = field(default_factory=lambda: dict(depth=5, kernel=5, adapter_kernel=3, dense=False))
    save_dtype: str = "fp16"
    progress: bool = True
    noise_schedule: NoiseSchedule = SD_DEFAULT  # the base's and its motion modules' (kernels.noise_schedule)
    group_norm_across_frames: bool = False      # AnimateDiff v1's GroupNorm (kernels.frame_group_norm)
    dqformer: dict = field(default_factory=lambda: dict(width=1024, layers=2, heads=8, queries=77))  # AID's Table 8
    state_blend: float = 2.0                    # frames over which a state's tokens fade into the next's
    init_from: tuple[Path, ...] = ()            # files the trained parts start from (training/initial_weights.py)
    validation: ValidationSettings = field(default_factory=ValidationSettings)  # --validate-every, --report-to


@dataclass
class TrainingResult:
    losses: list[tuple[int, float]]  # (step, loss) for the steps this run made
    step_seconds: list[float]        # wall time of each of those steps
    outputs: dict[str, Path]
    skipped: int                     # clips that failed to decode when drawn


class TrainingDiverged(RuntimeError):
    pass


def build_video_unet(base: BaseModel, config: TrainConfig, motion: MotionModuleFile | None,
                     image: ImageConditioning | None = None, features=None) -> VideoUNet:
    """The trainable modules at their identity start: W'_Q copied from each attn1's W_Q with W'_O zero, zeroed
    look-back layers, a DQFormer whose output layer is zero; motion modules and the Content-Adapter loaded and
    frozen. `features`: the DQFormer's vision-language model (its hidden width)."""
    adapter = look_back = motion_modules = None
    if "i2v_adapter" in config.train:
        adapter = I2VAdapter(base.family)
        for path, branch in adapter.branches():
            branch.reset_to_identity(base.unet.get_submodule(path).to_q.weight)
    if "look_back" in config.train:
        look_back = LookBackLayers(base.family, **config.look_back)
    if motion is not None:
        motion_modules = motion.build()
    dqformer = None
    if "dqformer" in config.train:
        with torch.random.fork_rng(devices=[]):  # its random start, the same in every run of a seed
            torch.manual_seed(config.seed)
            dqformer = DQFormer(DQFormerShape(features.hidden_size, base.family.context_dim, **config.dqformer))
    return VideoUNet(base.unet, base.family, adapter, look_back, motion_modules,
                     content_adapter=image.adapter if image else None,
                     group_norm_across_frames=config.group_norm_across_frames, dqformer=dqformer)


def _optimizer(params: list, config: TrainConfig):
    if config.adam8bit:
        try:
            import bitsandbytes
        except ImportError as e:
            raise ValueError("--adam8bit needs the bitsandbytes package (pip install bitsandbytes), which is not "
                             "installed here") from e
        return bitsandbytes.optim.AdamW8bit(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)


def _on(device):
    """Copy to `device` without waiting (the micro-batches come in page-locked memory on a GPU)."""
    return lambda tensor: tensor.to(device, non_blocking=True)


def _state_inputs(batch: MicroBatch, config: TrainConfig, device) -> StateInputs | None:
    """The DQFormer's inputs of a cached micro-batch; a dropped caption drops the condition tokens with it."""
    if batch.instruction is None:
        return None
    on = _on(device)
    weights = frame_state_weights(config.frames, batch.states.shape[1], config.state_blend)
    return StateInputs(on(batch.instruction), on(batch.instruction_mask), on(batch.states), on(batch.states_mask),
                       on(weights.expand(batch.states.shape[0], -1, -1)), ~on(batch.dropped))


def _inputs(base: BaseModel, image: ImageConditioning | None, batch: MicroBatch, empty: Conditioning | None,
            empty_image: torch.Tensor | None, generator, device):
    """(latents, conditioning, SDXL added conditioning, image tokens) of a micro-batch, decoded or cached. A dropped
    caption drops the image with it (unconditional tokens)."""
    on = _on(device)
    drop = on(batch.dropped)
    pick = lambda given, blank: torch.where(drop.view(-1, *[1] * (given.ndim - 1)), blank.to(given), given)
    if batch.pixels is not None:
        moments = base.encode_video(on(batch.pixels))
        conditioning = base.text(["" if drop else caption for caption, drop in zip(batch.captions, batch.dropped)])
        tokens = image.tokens(batch.pixels[:, 0]) if image else None
    else:
        moments = on(batch.moments)
        conditioning = Conditioning(pick(on(batch.context), empty.context),
                                    None if batch.pooled is None else pick(on(batch.pooled), empty.pooled))
        tokens = batch.image_tokens
    tokens = None if tokens is None else pick(on(tokens), empty_image)
    return base.latents(moments, generator), conditioning, base.added_cond(conditioning, on(batch.geometry)), tokens


class _StopRequest:
    """Ctrl-C asks to stop after the current step (with a checkpoint); a second Ctrl-C stops at once."""

    def __init__(self):
        self.requested = False

    def __enter__(self):
        self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self.previous)


def _settings(base: BaseModel, config: TrainConfig, motion, image, features, accelerator) -> dict:
    """What a resumed run must share with the run it continues."""
    return {"train": list(config.train), "base": base.name, "family": base.family.name,
            "vision_language_model": features.name if features else None,
            "dqformer": config.dqformer if "dqformer" in config.train else None,
            "motion_module": motion.version if motion else None, "content_adapter": image.name if image else None,
            "noise_schedule": config.noise_schedule.label, "group_norm_across_frames": config.group_norm_across_frames,
            "frames": config.frames, "stride": config.stride,
            "width": config.width, "height": config.height, "batch_size": config.batch_size,
            "gradient_accumulation": config.gradient_accumulation, "processes": accelerator.num_processes,
            "seed": config.seed, "cache_latents": config.cache_latents,
            "look_back": config.look_back if "look_back" in config.train else None}


def _keep_log_up_to(log_file: Path, step: int) -> None:
    """Drop the log lines of steps after `step`: a run stopped between checkpoints makes them again."""
    if log_file.exists():
        kept = [line for line in log_file.read_text().splitlines() if json.loads(line)["step"] <= step]
        with atomic_path(log_file) as temporary:
            Path(temporary).write_text("".join(line + "\n" for line in kept))


def _write_outputs(model: VideoUNet, base: BaseModel, config: TrainConfig, motion, image, features,
                   step: int) -> None:
    dtype = DTYPES[config.save_dtype]
    metadata = {"base_checkpoint": base.name, "resolution": f"{config.width}x{config.height}",
                "frames": config.frames, "stride": config.stride, "steps": step,
                "learning_rate": config.learning_rate, "motion_module": motion.version if motion else "none",
                "noise_schedule": config.noise_schedule.label,
                "group_norm": "across frames" if config.group_norm_across_frames else "per frame",
                "content_adapter": image.name if image else "none",
                "trainer": "comfyui-i2v-adapter training/train_adapter.py"}
    if "i2v_adapter" in config.train:
        state = {k: v.detach().to(dtype) for k, v in model.i2v_adapter.state_dict().items()}
        write_adapter(config.outputs["i2v_adapter"], state, base.family, **metadata)
    if "look_back" in config.train:
        write_look_back(config.outputs["look_back"], copy.deepcopy(model.look_back).to(dtype), **metadata)
    if "dqformer" in config.train:
        write_dqformer(config.outputs["dqformer"], copy.deepcopy(model.dqformer).to(dtype), base.family, features.name,
                       states=features.states, state_blend=config.state_blend, **metadata)


def train(config: TrainConfig, base: BaseModel, clips, motion: MotionModuleFile | None = None,
          image: ImageConditioning | None = None, features=None, log=tqdm.write,
          validation_clips=None) -> TrainingResult:
    """Train on `clips` (VideoClips or SyntheticClips) and write config.outputs; returns the loss per step. `image`:
    the frozen Content-Adapter, when the base has one; `features`: the DQFormer's frozen vision-language model
    (training/instruction_features.py), when the DQFormer trains (its clips are always cached);
    `validation_clips`: what --validate-every samples (default: the first clips of `clips`)."""
    checked = config.validation
    if checked.every and "dqformer" in config.train:
        raise ValueError("--validate-every does not sample with --train dqformer yet (the samples would need the "
                         "vision-language model's states of each clip): leave it out")
    trackers = None if checked.report_to == "none" else checked.report_to
    accelerator = Accelerator(mixed_precision=config.mixed_precision,
                              gradient_accumulation_steps=config.gradient_accumulation, log_with=trackers,
                              project_dir=config.run_dir)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = config.tf32
    device, dtype = accelerator.device, DTYPES[config.mixed_precision]
    if ("dqformer" in config.train) != (features is not None):
        raise ValueError("the DQFormer trains on a vision-language model's features, and only it needs them")
    starts = initial_weights(config, base.family, features)
    video_unet = build_video_unet(base, config, motion, image, features)
    try:
        load_initial_weights(video_unet, starts, log)
        # SDXL's VAE overflows in fp16; the frozen parts run in the mixed-precision dtype, the trained ones in fp32.
        base.to(device, dtype, vae_dtype=torch.float32 if base.family is SDXL and dtype == torch.float16 else None)
        for name in config.train:
            getattr(video_unet, name).to(device, torch.float32)
        if video_unet.motion_modules is not None:
            video_unet.motion_modules.to(device, dtype)
        if image is not None:
            image.to(device, dtype)
        if features is not None:
            features.to(device, dtype)
        if config.gradient_checkpointing:
            video_unet.enable_gradient_checkpointing()
        params = [p for name in config.train for p in getattr(video_unet, name).parameters()]
        model, optimizer = accelerator.prepare(video_unet, _optimizer(params, config))

        checkpoints = Checkpoints(config.run_dir / "checkpoints", accelerator, video_unet, config.keep_checkpoints,
                                  _settings(base, config, motion, image, features, accelerator))
        start, last_saved = 0, None
        if not config.resume and checkpoints.complete():
            raise ValueError(f"{checkpoints.folder} already holds checkpoints (up to "
                             f"{checkpoints.complete()[-1].name}): "
                             "continue that run with --resume latest, or start another with a new --run-dir")
        if config.resume:
            last_saved = checkpoints.resolve(config.resume)
            if last_saved is None:
                log(f"no checkpoint in {checkpoints.folder} yet: starting from step 0")
            else:
                start = checkpoints.load(last_saved)["step"]
                log(f"resumed from {last_saved} at step {start}")

        validation_clips = FirstClips(clips if validation_clips is None else validation_clips, checked.clips)
        measures = checked.metrics() if checked.every and accelerator.is_main_process else None
        if trackers:
            accelerator.init_trackers("train_adapter", config={
                "train": "+".join(config.train), "steps": config.steps, "learning_rate": config.learning_rate,
                "batch_size": config.batch_size, "frames": config.frames,
                "resolution": f"{config.width}x{config.height}"})
        empty, empty_image = None, image.unconditional_tokens() if image else None
        if config.cache_latents or features is not None:
            key = {"base": base.name, "frames": config.frames, "stride": config.stride,
                   "size": [config.width, config.height], "seed": config.seed,
                   "content_adapter": image.name if image else None,
                   "vision_language_model": [features.name, features.states] if features else None}
            clips = cache_clips(clips, base, image, features, config.cache_dir or config.run_dir / "latent_cache", key,
                                accelerator, log, config.progress)
            empty = base.text([""])
            for frozen in (base.vae, base.text, image.encoder if image else None, features):
                if frozen is not None:
                    frozen.to("cpu", torch.float32)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

        accumulation = config.gradient_accumulation
        batches = MicroBatches(clips, config.batch_size, config.seed, config.caption_dropout,
                               accelerator.process_index, accelerator.num_processes)
        loader = iter(micro_batches(batches, start * accumulation, config.steps * accumulation, config.workers,
                                    pin_memory=device.type == "cuda"))
        losses, skipped, main = [], 0, accelerator.is_main_process
        log_file = config.run_dir / "train_log.jsonl"
        config.run_dir.mkdir(parents=True, exist_ok=True)
        if main:
            _keep_log_up_to(log_file, start)
        bar = tqdm(total=config.steps, initial=start, desc="training", unit="step",
                   disable=not (config.progress and main), dynamic_ncols=True)
        # The GPU runs ahead of the host: each step's loss stays on the device until the next read (every
        # log_every steps, before a checkpoint, at a stop), where one transfer brings all of them.
        pending, smoothed, step_seconds, read_at = [], None, [], time.perf_counter()
        started = read_at
        with _StopRequest() as stop:
            for step in range(start, config.steps):
                for group in optimizer.param_groups:
                    group["lr"] = config.learning_rate * min(1.0, (step + 1) / max(1, config.warmup_steps))
                step_loss = torch.zeros((), device=device)
                for micro in range(accumulation):
                    batch = next(loader)
                    for failure in batch.failures:
                        log(f"skipped {failure} (it carries no weight in step {step + 1})")
                    skipped += len(batch.failures)
                    draw = seeded(config.seed, step, micro, accelerator.process_index, 4, device=device)
                    with accelerator.accumulate(model):
                        latents, conditioning, added, tokens = _inputs(base, image, batch, empty, empty_image, draw,
                                                                       device)
                        noise, timesteps = draw_noise(latents, draw, config.noise_schedule)
                        noisy = noised_video(latents, noise, timesteps, config.noise_schedule)
                        prediction = model(noisy, timesteps, conditioning.context, added, tokens,
                                           _state_inputs(batch, config, device))
                        valid = _on(device)(batch.valid)
                        loss = (video_loss(prediction, noise) * valid).sum() / valid.sum().clamp(min=1)
                        accelerator.backward(loss)
                        if accelerator.sync_gradients and config.max_grad_norm > 0:
                            accelerator.clip_grad_norm_(params, config.max_grad_norm)
                        optimizer.step()
                        optimizer.zero_grad(set_to_none=True)
                    step_loss += loss.detach() / accumulation
                done = step + 1
                pending.append((done, accelerator.reduce(step_loss, "mean"), optimizer.param_groups[0]["lr"]))
                bar.update()
                saving = done % config.checkpoint_every == 0 or done == config.steps
                stopping = stop.requested if accelerator.num_processes == 1 else False
                validating = checked.due(done, config.steps)
                if not (saving or stopping or validating or done % config.log_every == 0):
                    continue
                if accelerator.num_processes > 1:  # every process stops at the same step
                    stopping = bool(accelerator.reduce(torch.tensor(float(stop.requested), device=device),
                                                       "sum").item())
                values = torch.stack([value for _, value, _ in pending]).tolist()  # (waits for the device)
                now = time.perf_counter()
                for (at, _, lr), value in zip(pending, values):
                    if not math.isfinite(value):  # before anything from this step on is saved
                        raise TrainingDiverged(_diverged(at, value, checkpoints))
                    losses.append((at, value))
                    step_seconds.append((now - read_at) / len(pending))
                    if main:
                        with log_file.open("a") as f:
                            f.write(json.dumps({"step": at, "loss": value, "lr": lr,
                                                "seconds": round(step_seconds[-1], 4)}) + "\n")
                    accelerator.log({"train/loss": value, "train/learning_rate": lr}, step=at)
                    smoothed = value if smoothed is None else 0.9 * smoothed + 0.1 * value
                pending, read_at = [], now
                clips_per_second = (done - start) * accumulation * config.batch_size * accelerator.num_processes / (
                    now - started)
                bar.set_postfix(loss=f"{smoothed:.4f}", clips_s=f"{clips_per_second:.2f}")
                if saving or stopping:
                    last_saved = checkpoints.save(done, done * accumulation, {"loss": values[-1]})
                if validating:
                    _validate(video_unet, base, image, validation_clips, config, done, accelerator, log, measures)
                if stopping:
                    bar.close()
                    raise KeyboardInterrupt(f"stopped at step {done}; checkpoint {last_saved}: continue with "
                                            "--resume latest")
        bar.close()
        if main:
            _write_outputs(video_unet, base, config, motion, image, features, config.steps)
        accelerator.wait_for_everyone()
        accelerator.end_training()
        return TrainingResult(losses, step_seconds, {name: config.outputs[name] for name in config.train}, skipped)
    finally:
        video_unet.remove()


def _validate(model: VideoUNet, base: BaseModel, image, clips, config: TrainConfig, step: int, accelerator,
              log, metrics) -> None:
    """Only the main process samples (on the unwrapped model); the others wait for it."""
    if accelerator.is_main_process:
        with accelerator.autocast():
            scalars, videos = validate(model, base, image, clips, config, step, accelerator.device, metrics)
        accelerator.log(scalars, step=step)
        log_videos(accelerator, videos, step)
        shown = "".join(f", {name.split('/')[-1].replace('_', ' ')} {value:.4f}" for name, value in scalars.items())
        log(f"validation at step {step}: {len(clips)} videos in {config.run_dir / 'validation'}{shown}")
    accelerator.wait_for_everyone()


def _diverged(step: int, value: float, checkpoints: Checkpoints) -> str:
    done = checkpoints.complete()
    kept = (f"The last good checkpoint, {done[-1]}, is kept: continue from it with --resume latest"
            if done else "No checkpoint had been written yet")
    return (f"the loss became {value} at step {step}: training stopped and nothing from this step on was saved. "
            f"{kept}, with a lower --learning-rate, or --mixed-precision bf16 instead of fp16.")
