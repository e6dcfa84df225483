"""Train the I2V-Adapter and/or the look-back layers on a frozen SD1.5 or SDXL checkpoint (+ optional AnimateDiff
motion module) from your own videos, and write the .safetensors files ComfyUI's Load I2V-Adapter and Load Look-Back
Layers nodes read.

    python training/train_adapter.py --base sd15.safetensors --motion-module mm_sd_v15_v2.ckpt --data my_videos/ \\
        --train i2v_adapter --out ComfyUI/models/i2v_adapter/mine.safetensors
    accelerate launch training/train_adapter.py ...            (several GPUs: the same flags)
    python training/train_adapter.py ... --resume latest       (carry on after a stop)
    python training/train_adapter.py                           (no arguments: a two-minute CPU demonstration)
"""
import argparse
import math
import os
import runpy
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever fetched
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning OpenMP threads slow a busy CPU many times over
runpy.run_path(str(Path(__file__).resolve().parents[1] / "standalone.py"))

from comfyui_i2v_adapter.kernels.motion_module_file import read_motion_module  # noqa: E402
from comfyui_i2v_adapter.kernels.noise_schedule import (ANIMATEDIFF, ANIMATEDIFF_SDXL, SD_DEFAULT,  # noqa: E402
                                                        NoiseSchedule, animatediff_schedule)
from comfyui_i2v_adapter.kernels.tensor_files import FileFormatError  # noqa: E402
from comfyui_i2v_adapter.training.base_checkpoint import base_family, load_base, tensor_shapes  # noqa: E402
from comfyui_i2v_adapter.training.demo import DEMO_FOLDER, DEMO_STEPS, DQFORMER_DEMO_STEPS, run_demo  # noqa: E402
from comfyui_i2v_adapter.training.image_conditioning import load_image_conditioning  # noqa: E402
from comfyui_i2v_adapter.training.initial_weights import initial_weights  # noqa: E402
from comfyui_i2v_adapter.training.instruction_features import VisionLanguageFeatures  # noqa: E402
from comfyui_i2v_adapter.training.trainer import TRAINABLE, TrainConfig, TrainingDiverged, train  # noqa: E402
from comfyui_i2v_adapter.training.validation import ValidationSettings  # noqa: E402
from comfyui_i2v_adapter.training.video_clips import ClipShape, NoUsableVideos, VideoClips  # noqa: E402
from comfyui_i2v_adapter.training.video_sources import list_videos, require_instructions  # noqa: E402


DEFAULT_STEPS = 10000
AUTOSELECT = "autoselect"
BETA_SCHEDULES = {"sqrt_linear": ANIMATEDIFF, "linear_adxl": ANIMATEDIFF_SDXL, "linear": SD_DEFAULT}  # ComfyUI's names
GROUP_NORMS = [AUTOSELECT, "across-frames", "per-frame"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = p.add_argument
    add("--demo", action="store_true", help="the built-in CPU demonstration (also what runs without --base and --data)")
    add("--base", type=Path, help="single-file SD1.5 or SDXL checkpoint (.safetensors or .ckpt), frozen")
    add("--motion-module", type=Path, help="AnimateDiff motion module for the base (v1/v2/v3, SDXL beta, "
                                           "diffusers, or the official I2V-Adapter bundle), frozen")
    add("--beta-schedule", choices=[AUTOSELECT, *BETA_SCHEDULES], default=AUTOSELECT,
        help="the noise schedule of training (and of the written file's metadata). autoselect: the motion module's "
             "(AnimateDiff's sqrt_linear for SD1.5, linear_adxl for SDXL), else SD's linear; the names are ComfyUI's")
    add("--groupnorm", choices=GROUP_NORMS, default=AUTOSELECT,
        help="the base's ResNet GroupNorms: across-frames (AnimateDiff v1 and the official release) or per-frame; "
             "autoselect: across frames with a v1 motion module")
    add("--content-adapter", type=Path, help="IP-Adapter Plus (h94's ip-adapter-plus_sd15 or _sdxl_vit-h), frozen "
                                             "as part of the base, as the paper trained; needs --image-encoder")
    add("--content-adapter-weights", type=Path, help="take the Content-Adapter's attention weights from this file "
                                                     "(the official bundle animatediff_v15_v1_ipplus.pth)")
    add("--image-encoder", type=Path, help="the CLIP image encoder of --content-adapter (CLIP ViT-H, transformers "
                                           "layout, as in ComfyUI's models/clip_vision)")
    add("--data", type=Path, help="folder of videos with same-name .txt captions, a .csv (videoid,name or path,text) "
                                  "or a .jsonl ({\"video\", \"caption\"} per line)")
    add("--video-folder", type=Path, help="where a WebVid CSV's <videoid>.mp4 files are")
    add("--train", nargs="+", choices=TRAINABLE, default=["i2v_adapter"], help="what to train (one or more)")
    add("--out", type=Path, help="the .safetensors file to write for the first of --train in the order i2v_adapter, "
                                 "look_back, dqformer (the others: --look-back-out, --dqformer-out)")
    add("--look-back-out", type=Path, help="the look-back file when something else trains too")
    add("--dqformer-out", type=Path, help="the DQFormer file when something else trains too")
    add("--vlm", type=Path, help="the vision-language model folder (as in ComfyUI's models/LLM) whose hidden states "
                                 "the DQFormer reads; frozen, run once per video (its answers are cached)")
    add("--states", type=int, default=4, help="states the vision-language model is asked for (AID: 4)")
    add("--state-blend", type=float, default=2.0, help="frames over which one state's tokens fade into the next's")
    add("--dqformer-width", type=int, default=1024, help="the DQFormer's width (AID: 1024)")
    add("--dqformer-layers", type=int, default=2, help="decoder layers per query set (AID: 2)")
    add("--dqformer-heads", type=int, default=8, help="attention heads (AID: 8)")
    add("--dqformer-queries", type=int, default=77, help="condition tokens (AID: 77)")
    add("--run-dir", type=Path, help="checkpoints, log and latent cache (default: runs/<out name>)")
    add("--tokenizer", type=Path, help="folder with CLIP's vocab.json and merges.txt (default: the ComfyUI the base "
                                       "sits in, or $COMFYUI_PATH)")
    add("--frames", type=int, default=16, help="frames per clip; frame 0 is the clean reference")
    add("--stride", type=int, default=4, help="source frames between two clip frames")
    add("--resolution", default="256", help="W or WxH in pixels, multiples of 8 (clips are scaled to cover it and "
                                            "centre-cropped)")
    add("--steps", type=int, help=f"optimizer steps (default {DEFAULT_STEPS}; {DEMO_STEPS} in the demonstration, "
                                        f"{DQFORMER_DEMO_STEPS} when the DQFormer trains there)")
    add("--batch-size", type=int, default=1, help="videos per GPU per micro-step")
    add("--gradient-accumulation", type=int, default=1, help="micro-steps per optimizer step")
    add("--learning-rate", type=float, default=1e-4)
    add("--warmup-steps", type=int, default=0, help="linear learning-rate warm-up")
    add("--weight-decay", type=float, default=0.0)
    add("--max-grad-norm", type=float, default=1.0, help="gradient clipping (0: off)")
    add("--caption-dropout", type=float, default=0.1, help="share of clips trained with the empty caption (for CFG)")
    add("--seed", type=int, default=0)
    add("--mixed-precision", choices=["auto", "no", "fp16", "bf16"], default="auto",
        help="autocast dtype; the frozen base is stored in it too. auto: bf16 on a GPU that has it, fp16 on other "
             "CUDA GPUs, no (fp32) on the CPU")
    add("--log-every", type=int, default=10, help="read the loss on the host (log, progress, divergence check) every "
                                                  "N steps; in between the GPU never waits for the host")
    add("--gradient-checkpointing", action="store_true", help="recompute activations in the backward pass")
    add("--tf32", action=argparse.BooleanOptionalAction, default=True, help="TF32 matmuls on NVIDIA GPUs")
    add("--adam8bit", action="store_true", help="bitsandbytes' 8-bit AdamW (needs bitsandbytes)")
    add("--workers", type=int, default=4, help="data-loading processes per GPU")
    add("--cache-latents", action="store_true", help="encode every video once (one clip each) and train without "
                                                     "the VAE and text encoders in GPU memory")
    add("--cache-dir", type=Path, help="where --cache-latents keeps its files (default: <run dir>/latent_cache)")
    add("--checkpoint-every", type=int, default=500, help="steps between checkpoints")
    add("--keep-checkpoints", type=int, default=3, help="how many recent checkpoints to keep")
    add("--resume", help="'latest' or a checkpoint folder")
    add("--init-from", type=Path, nargs="+", action="extend", default=[], metavar="FILE",
        help="start the trained parts from these files (weights only, at step 0, with a fresh optimizer): the "
             "official i2v_module.pth, an I2V-Adapter, look-back layers or a DQFormer file, one per part")
    add("--look-back-depth", type=int, default=5, help="frames the look-back window spans, itself included")
    add("--look-back-kernel", type=int, default=5, help="spatial kernel of the look-back convolution (odd)")
    add("--look-back-adapter-kernel", type=int, default=3, help="kernel of the depth-wise 3D adapter (odd)")
    add("--look-back-dense", action="store_true", help="full channel-mixing look-back convolution (125·n² parameters "
                                                       "per layer at 5×5×5) instead of per channel")
    add("--validate-every", type=int, default=0, help="every N steps (and at the end) sample --validate-clips videos "
                                                      "from their first frame and caption into <run dir>/validation/ "
                                                      "and log their held-out loss; 0: never")
    add("--validation-data", type=Path, help="the clips --validate-every samples, in --data's formats (default: the "
                                             "first videos of --data, which the run also trains on)")
    add("--validate-clips", type=int, default=2, help="videos sampled at each validation")
    add("--validate-steps", type=int, default=10, help="DDIM steps of the validation samples")
    add("--validate-cfg", type=float, default=5.0, help="classifier-free guidance scale of the validation samples")
    add("--validate-clip-vision", type=Path, metavar="FOLDER",
        help="a Hugging Face CLIP vision folder (e.g. h94/IP-Adapter's models/image_encoder): the validation videos' "
             "CLIPTemp and ISIM")
    add("--validate-optical-flow", type=Path, metavar="FILE",
        help="torchvision RAFT weights (raft_large_C_T_SKHT_V2-ff5fadd5.pth, docs/metrics.md): the validation "
             "videos' FlowScore and WarpingError")
    add("--report-to", choices=["none", "tensorboard", "wandb"], default="none",
        help="accelerate's tracker for the loss, learning rate and validation scalars (tensorboard: <run dir>/"
             "train_adapter/; needs the tensorboard or wandb package)")
    add("--save-dtype", choices=["fp16", "bf16", "fp32"], default="fp16", help="dtype of the written file")
    add("--no-progress", action="store_true", help="no progress bars (logs only)")
    return p


def _resolution(p: argparse.ArgumentParser, value: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in (value.lower().split("x") + [value])[:2])
    except ValueError:
        p.error(f"--resolution {value} must be W or WxH in pixels, e.g. 256 or 512x320")
    for side in (width, height):
        if side <= 0 or side % 8:
            p.error(f"--resolution {value}: {side} is not a multiple of 8 (the VAE's downsampling factor); use "
                    f"{max(8, side // 8 * 8)} or {side // 8 * 8 + 8}")
    return width, height


def _output(p: argparse.ArgumentParser, flag: str, path: Path | None) -> Path:
    if path is None:
        p.error(f"{flag} is required: the .safetensors file to write")
    if path.suffix != ".safetensors":
        p.error(f"{flag} {path} must end in .safetensors")
    if not path.parent.is_dir():
        p.error(f"{flag} {path}: the folder {path.parent} does not exist; create it or write elsewhere")
    return path


# flag: (its least value, what it counts)
_AT_LEAST = {
    "steps": (1, "optimizer steps"),
    "batch_size": (1, "clips per GPU per micro-step"),
    "gradient_accumulation": (1, "micro-steps per optimizer step; 1: no accumulation"),
    "workers": (0, "data-loading processes per GPU; 0: load in the training process"),
    "warmup_steps": (0, "steps of linear warm-up; 0: none"),
    "checkpoint_every": (1, "steps between checkpoints"),
    "keep_checkpoints": (1, "the checkpoints kept; --resume latest continues from the newest"),
    "look_back_depth": (2, "frames in the look-back window, the frame itself included"),
    "states": (1, "states the vision-language model is asked for"),
    "dqformer_width": (8, "the DQFormer's width"),
    "dqformer_layers": (1, "decoder layers per query set"),
    "dqformer_heads": (1, "attention heads"),
    "dqformer_queries": (1, "condition tokens"),
    "log_every": (1, "steps between reads of the loss on the host"),
    "validate_every": (0, "steps between validations; 0: never"),
    "validate_clips": (1, "videos sampled at each validation"),
    "validate_steps": (1, "DDIM steps of the validation samples"),
}


def _check_numbers(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Every numeric flag in its range, so that none fails deep in a run that has loaded its models."""
    flag = lambda dest: "--" + dest.replace("_", "-")
    for dest, (least, what) in _AT_LEAST.items():
        value = getattr(args, dest)
        if value is not None and value < least:
            p.error(f"{flag(dest)} {value} must be at least {least} ({what})")
    for dest in ("look_back_kernel", "look_back_adapter_kernel"):
        value = getattr(args, dest)
        if value < 1 or value % 2 == 0:
            fix = f"use {value - 1} or {value + 1}" if value > 1 else "use 3 or 5"
            p.error(f"{flag(dest)} {value} must be odd and at least 1 (a window centred on each pixel): {fix}")
    if not (math.isfinite(args.learning_rate) and args.learning_rate > 0):
        p.error(f"--learning-rate {args.learning_rate} must be a positive number (AdamW's step size, "
                f"{p.get_default('learning_rate')} by default)")
    for dest, what in (("weight_decay", "AdamW's decay; 0: none"),
                       ("max_grad_norm", "the gradient norm clipped to; 0: no clipping")):
        value = getattr(args, dest)
        if not (math.isfinite(value) and value >= 0):
            p.error(f"{flag(dest)} {value} must be 0 or more ({what})")
    if args.dqformer_width % args.dqformer_heads:
        p.error(f"--dqformer-width {args.dqformer_width} must split into --dqformer-heads {args.dqformer_heads}")
    if not (math.isfinite(args.state_blend) and args.state_blend >= 0):
        p.error(f"--state-blend {args.state_blend} must be 0 or more (frames of cross-fade; 0 cuts hard)")
    if not (math.isfinite(args.validate_cfg) and args.validate_cfg >= 0):
        p.error(f"--validate-cfg {args.validate_cfg} must be 0 or more (1: no guidance)")
    if not 0 <= args.caption_dropout <= 1:
        p.error(f"--caption-dropout {args.caption_dropout} must be between 0 and 1 (the share of clips trained with "
                f"the empty caption; {p.get_default('caption_dropout')} by default)")


def _noise_schedule(args: argparse.Namespace, motion) -> NoiseSchedule:
    if args.beta_schedule == AUTOSELECT:
        return animatediff_schedule(motion.family.name) if motion else SD_DEFAULT
    return BETA_SCHEDULES[args.beta_schedule]


def _what_trains(args: argparse.Namespace) -> tuple[str, ...]:
    """In TRAINABLE's order whatever the flag's: --out is the adapter's when both train, and a resume compares it."""
    return tuple(name for name in TRAINABLE if name in args.train)


def config_from(p: argparse.ArgumentParser, args: argparse.Namespace) -> TrainConfig:
    """Everything that can be checked before a file is opened."""
    for flag in ("base", "data"):
        if getattr(args, flag) is None:
            p.error(f"--{flag} is required (run with no arguments at all for the built-in demonstration)")
    _check_numbers(p, args)
    train_what = _what_trains(args)
    outputs = {train_what[0]: _output(p, "--out", args.out)}
    for what in train_what[1:]:
        flag = {"look_back": "--look-back-out", "dqformer": "--dqformer-out"}[what]
        outputs[what] = _output(p, flag, getattr(args, flag[2:].replace("-", "_")))
    if len({path.resolve() for path in outputs.values()}) < len(outputs):
        p.error("--out, --look-back-out and --dqformer-out must be different files")
    if "dqformer" in train_what and args.vlm is None:
        p.error("--train dqformer needs --vlm: the vision-language model folder whose hidden states it reads (the one "
                "Load Vision-Language Model will use)")
    if args.validate_every and "dqformer" in train_what:
        p.error("--validate-every does not sample with --train dqformer yet: leave it out")
    if args.frames < 2 or args.stride < 1:
        p.error(f"--frames must be at least 2 (frame 0 is the reference) and --stride at least 1; got {args.frames} "
                f"and {args.stride}")
    args.mixed_precision = _mixed_precision(args.mixed_precision)
    if args.mixed_precision == "fp16" and not _cuda():
        p.error("--mixed-precision fp16 needs a CUDA GPU; on the CPU use bf16 or no")
    if (args.content_adapter is None) != (args.image_encoder is None):
        p.error("--content-adapter and --image-encoder go together: the Resampler reads that encoder's features")
    if args.content_adapter_weights is not None and args.content_adapter is None:
        p.error("--content-adapter-weights replaces the attention weights of --content-adapter; give that too")
    width, height = _resolution(p, args.resolution)
    return TrainConfig(
        train=train_what, outputs=outputs, run_dir=args.run_dir or Path("runs") / outputs[train_what[0]].stem,
        frames=args.frames, stride=args.stride, width=width, height=height, steps=args.steps or DEFAULT_STEPS,
        batch_size=args.batch_size, gradient_accumulation=args.gradient_accumulation,
        learning_rate=args.learning_rate, warmup_steps=args.warmup_steps, weight_decay=args.weight_decay,
        max_grad_norm=args.max_grad_norm, caption_dropout=args.caption_dropout, seed=args.seed,
        mixed_precision=args.mixed_precision, gradient_checkpointing=args.gradient_checkpointing, tf32=args.tf32,
        adam8bit=args.adam8bit, workers=args.workers, cache_latents=args.cache_latents, cache_dir=args.cache_dir,
        checkpoint_every=args.checkpoint_every, keep_checkpoints=args.keep_checkpoints, resume=args.resume,
        log_every=args.log_every,
        look_back=dict(depth=args.look_back_depth, kernel=args.look_back_kernel,
                       adapter_kernel=args.look_back_adapter_kernel, dense=args.look_back_dense),
        dqformer=dict(width=args.dqformer_width, layers=args.dqformer_layers, heads=args.dqformer_heads,
                      queries=args.dqformer_queries), state_blend=args.state_blend,
        init_from=tuple(args.init_from), validation=_validation(args), save_dtype=args.save_dtype,
        progress=not args.no_progress)


def _validation(args: argparse.Namespace) -> ValidationSettings:
    return ValidationSettings(args.validate_every, args.validate_clips, args.validate_steps, args.validate_cfg,
                              args.report_to, args.validate_clip_vision, args.validate_optical_flow)


def _cuda() -> bool:
    import torch
    return torch.cuda.is_available()


def _mixed_precision(choice: str) -> str:
    """`auto`: bf16 where the GPU computes in it, fp16 on other CUDA GPUs, fp32 on the CPU (bf16 there is slower)."""
    if choice != "auto":
        return choice
    import torch
    if not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def prepare(config: TrainConfig, args: argparse.Namespace):
    """(clips, the --validation-data clips or None, motion module, Content-Adapter conditioning, the DQFormer's
    vision-language model) after checking that the base, the motion module, the Content-Adapter and the videos fit
    together; sets the noise schedule and GroupNorm they imply."""
    if not args.base.is_file():
        raise FileNotFoundError(f"--base {args.base} does not exist")
    for flag, path in (("--validate-clip-vision", args.validate_clip_vision),
                       ("--validate-optical-flow", args.validate_optical_flow)):
        if path is not None and not path.exists():  # found now, not at the first validation
            raise FileNotFoundError(f"{flag} {path} does not exist")
    family = base_family(tensor_shapes(args.base), args.base.name)
    motion = None
    if args.motion_module is not None:
        motion = read_motion_module(args.motion_module)
        if motion.family is not family:
            raise ValueError(f"--motion-module {args.motion_module.name} is an {motion.family.label} motion module "
                             f"({motion.version}) but --base {args.base.name} is {family.label}: use a motion module "
                             f"made for {family.label}")
        if config.frames > motion.max_frames:
            raise ValueError(f"--frames {config.frames} is more than --motion-module {args.motion_module.name} "
                             f"handles ({motion.max_frames}, its position encoding's length)")
    initial_weights(config, family)  # before any model loads (the DQFormer's width is checked once the VLM has)
    config.noise_schedule = _noise_schedule(args, motion)
    config.group_norm_across_frames = args.groupnorm == "across-frames" or (
        args.groupnorm == AUTOSELECT and motion is not None and motion.version == "v1")
    image = None
    if args.content_adapter is not None:
        for flag in ("content_adapter", "content_adapter_weights", "image_encoder"):
            if getattr(args, flag) is not None and not getattr(args, flag).is_file():
                raise FileNotFoundError(f"--{flag.replace('_', '-')} {getattr(args, flag)} does not exist")
        image = load_image_conditioning(args.content_adapter, args.image_encoder, args.content_adapter_weights, family)
    entries, notes = list_videos(args.data, args.video_folder)
    features = None
    if "dqformer" in config.train:
        require_instructions(entries, args.data)
        if not args.vlm.is_dir():
            raise FileNotFoundError(f"--vlm {args.vlm} is not a folder: give the vision-language model's whole folder")
        features = VisionLanguageFeatures(args.vlm, args.states)
    for note in notes:
        print(note)
    shape = ClipShape(config.frames, config.stride, config.width, config.height)
    clips = VideoClips(entries, shape, str(args.data), progress=config.progress)
    print(clips.report())
    held_out = None if args.validation_data is None else VideoClips(
        list_videos(args.validation_data)[0], shape, str(args.validation_data), progress=config.progress)
    return clips, held_out, motion, image, features


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = parser()
    args = p.parse_args(argv)
    try:
        if args.demo or (args.base is None and args.data is None):
            folder = args.out.parent if args.out else DEMO_FOLDER
            _check_numbers(p, args)
            run_demo(folder, _what_trains(args), steps=args.steps, resume=args.resume,
                     progress=not args.no_progress, init_from=tuple(args.init_from), validation=_validation(args))
            return 0
        config = config_from(p, args)
        clips, held_out, motion, image, features = prepare(config, args)
        base = load_base(args.base, args.tokenizer)
        print(f"training {' and '.join(config.train)} on {base.family.label} {args.base.name}"
              f"{f' + {motion.version} motion module' if motion else ''}"
              f"{f' + Content-Adapter {image.name}' if image else ''} ({config.noise_schedule.label} noise "
              f"schedule, GroupNorm {'across frames' if config.group_norm_across_frames else 'per frame'}); "
              f"checkpoints in {config.run_dir}")
        result = train(config, base, clips, motion, image, features, validation_clips=held_out)
    except KeyboardInterrupt as stopped:
        print(f"\n{stopped or 'interrupted'}", file=sys.stderr)
        return 130
    except (FileFormatError, FileNotFoundError, NoUsableVideos, TrainingDiverged, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for what, path in result.outputs.items():
        print(f"wrote {path} ({what}); skipped during training: {result.skipped} clips")
    return 0


if __name__ == "__main__":
    sys.exit(main())
