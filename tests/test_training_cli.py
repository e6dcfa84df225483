"""`python training/train_adapter.py` refuses bad input before any model loads, naming the flag and the fix."""
import re
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from safetensors.torch import save_file

from comfyui_i2v_adapter.kernels.motion_module import MotionModules
from comfyui_i2v_adapter.kernels.unet_layout import SD15, SDXL
from comfyui_i2v_adapter.tests.support.videos import write_broken_videos, write_video_folder
from comfyui_i2v_adapter.training.base_checkpoint import UNET, base_family
from comfyui_i2v_adapter.training.checkpoints import Checkpoints
from comfyui_i2v_adapter.training.train_adapter import config_from, main, parser


def shape_only_checkpoint(path, cross=(320, 768), text="cond_stage_model.transformer."):
    """The keys that say which model a single-file checkpoint is, at their real shapes, and nothing else."""
    save_file({UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": torch.zeros(cross),
               UNET + "input_blocks.0.0.weight": torch.zeros(320, 4, 3, 3),
               text + "text_model.final_layer_norm.weight": torch.zeros(768)}, str(path))
    return path


def zero_motion_module(path, family, max_frames=32, mid_block=False):
    """A motion module in the original layout; expanded zeros keep the pickle a few bytes per tensor."""
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in MotionModules(family, max_frames, mid_block).state_dict().items()}
    torch.save({k: torch.zeros(1).expand(s) for k, s in shapes.items()}, path)
    return path


@pytest.fixture(scope="module")
def inputs(module_tmp):
    folder = module_tmp
    write_video_folder(folder / "videos", pieces=1)
    (folder / "broken").mkdir()
    write_broken_videos(folder / "broken")
    (folder / "out").mkdir()
    return folder


def run(capsys, inputs, *flags, base="sd15.safetensors", data="videos"):
    """(exit code, stderr) of the trainer with a shape-only SD1.5 base unless told otherwise."""
    if not (inputs / "sd15.safetensors").exists():
        shape_only_checkpoint(inputs / "sd15.safetensors")
    argv = ["--base", str(inputs / base), "--data", str(inputs / data), "--out", str(inputs / "out/mine.safetensors"),
            "--frames", "4", "--stride", "2", "--resolution", "64", "--no-progress", *flags]
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own refusals
        code = e.code
    return code, capsys.readouterr().err


def test_a_base_that_is_not_a_stable_diffusion_checkpoint(capsys, inputs):
    zero_motion_module(inputs / "mm.ckpt", SD15)
    code, err = run(capsys, inputs, base="mm.ckpt")
    assert code == 1
    assert ("mm.ckpt has no Stable Diffusion UNet (no 'model.diffusion_model.' keys; it looks like a motion "
            "module)") in err
    assert "--base needs a full SD1.5 or SDXL checkpoint" in err


def test_sd2_refiners_inpainting_and_text_encoder_less_checkpoints_are_named():
    shapes = lambda cross, channels=4, text="cond_stage_model.transformer.x": {
        UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": cross,
        UNET + "input_blocks.0.0.weight": (320, channels, 3, 3), text: (1,)}
    cases = [(shapes((320, 1024)), "is SD2.x (cross-attention 320×1024)"),
             (shapes((320, 768), channels=9), "is an inpainting or other 9-channel model"),
             (shapes((320, 768), text="other.x"), "is missing its text encoder")]
    for found, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)):
            base_family(found, "model.safetensors")
    assert base_family(shapes((320, 768)), "sd15.safetensors") is SD15


def test_a_motion_module_for_the_other_family(capsys, inputs):
    zero_motion_module(inputs / "mm_sdxl_v10_beta.ckpt", SDXL)
    code, err = run(capsys, inputs, "--motion-module", str(inputs / "mm_sdxl_v10_beta.ckpt"))
    assert code == 1
    assert ("--motion-module mm_sdxl_v10_beta.ckpt is an SDXL motion module (sdxl-beta) but --base sd15.safetensors "
            "is SD1.5: use a motion module made for SD1.5") in err


def test_more_frames_than_the_motion_module_encodes(capsys, inputs):
    zero_motion_module(inputs / "mm_sd_v14.ckpt", SD15, max_frames=24)
    code, err = run(capsys, inputs, "--motion-module", str(inputs / "mm_sd_v14.ckpt"), "--frames", "32")
    assert code == 1
    assert "--frames 32 is more than --motion-module mm_sd_v14.ckpt handles (24, its position encoding's length)" in err


def test_a_resolution_that_is_not_a_multiple_of_8(capsys, inputs):
    code, err = run(capsys, inputs, "--resolution", "100x64")
    assert code == 2
    assert "--resolution 100x64: 100 is not a multiple of 8 (the VAE's downsampling factor); use 96 or 104" in err


def test_an_output_in_a_folder_that_does_not_exist(capsys, inputs):
    code, err = run(capsys, inputs, "--out", str(inputs / "nowhere/mine.safetensors"))
    assert code == 2
    assert f"the folder {inputs / 'nowhere'} does not exist; create it or write elsewhere" in err


def test_a_data_folder_with_no_usable_video(capsys, inputs):
    code, err = run(capsys, inputs, data="broken")
    assert code == 1
    assert f"no usable videos in {inputs / 'broken'}: tried 3: 2 unreadable" in err


def test_more_frames_than_the_videos_hold_at_the_stride(capsys, inputs):
    code, err = run(capsys, inputs, "--frames", "8", "--stride", "3")
    assert code == 1
    assert ("--frames 8 at --stride 3 needs 22 frames but the longest readable video has 12: lower --frames or "
            "--stride") in err


def test_a_missing_base_and_a_missing_data_folder(capsys, inputs):
    code, err = run(capsys, inputs, base="absent.safetensors")
    assert (code, err.strip()) == (1, f"error: --base {inputs / 'absent.safetensors'} does not exist")
    code, err = run(capsys, inputs, data="absent")
    assert (code, err.strip()) == (1, f"error: --data {inputs / 'absent'} does not exist")
    code, err = run(capsys, inputs, "--validate-every", "1", "--validate-optical-flow", str(inputs / "raft.pth"))
    assert (code, err.strip()) == (1, f"error: --validate-optical-flow {inputs / 'raft.pth'} does not exist")


def test_both_modules_train_whichever_order_train_lists_them(inputs):
    p = parser()
    args = p.parse_args(["--base", "sd15.safetensors", "--data", "videos", "--train", "look_back", "i2v_adapter",
                         "--out", str(inputs / "out/mine.safetensors"),
                         "--look-back-out", str(inputs / "out/mine_look_back.safetensors")])
    config = config_from(p, args)
    assert config.train == ("i2v_adapter", "look_back")
    assert config.outputs == {"i2v_adapter": inputs / "out/mine.safetensors",
                              "look_back": inputs / "out/mine_look_back.safetensors"}


@pytest.mark.parametrize("flag, value, message", [
    ("--steps", "0", "--steps 0 must be at least 1 (optimizer steps)"),
    ("--batch-size", "0", "--batch-size 0 must be at least 1 (clips per GPU per micro-step)"),
    ("--gradient-accumulation", "0", "--gradient-accumulation 0 must be at least 1 (micro-steps per optimizer step; "
                                     "1: no accumulation)"),
    ("--workers", "-1", "--workers -1 must be at least 0 (data-loading processes per GPU; 0: load in the training "
                        "process)"),
    ("--warmup-steps", "-5", "--warmup-steps -5 must be at least 0 (steps of linear warm-up; 0: none)"),
    ("--checkpoint-every", "0", "--checkpoint-every 0 must be at least 1 (steps between checkpoints)"),
    ("--log-every", "0", "--log-every 0 must be at least 1 (steps between reads of the loss on the host)"),
    ("--keep-checkpoints", "0", "--keep-checkpoints 0 must be at least 1 (the checkpoints kept; --resume latest "
                                "continues from the newest)"),
    ("--look-back-depth", "1", "--look-back-depth 1 must be at least 2 (frames in the look-back window, the frame "
                               "itself included)"),
    ("--look-back-kernel", "4", "--look-back-kernel 4 must be odd and at least 1 (a window centred on each pixel): "
                                "use 3 or 5"),
    ("--look-back-adapter-kernel", "0", "--look-back-adapter-kernel 0 must be odd and at least 1 (a window centred "
                                        "on each pixel): use 3 or 5"),
    ("--learning-rate", "0", "--learning-rate 0.0 must be a positive number (AdamW's step size, 0.0001 by default)"),
    ("--learning-rate", "nan", "--learning-rate nan must be a positive number"),
    ("--weight-decay", "-0.1", "--weight-decay -0.1 must be 0 or more (AdamW's decay; 0: none)"),
    ("--max-grad-norm", "-1", "--max-grad-norm -1.0 must be 0 or more (the gradient norm clipped to; 0: no "
                              "clipping)"),
    ("--caption-dropout", "1.5", "--caption-dropout 1.5 must be between 0 and 1 (the share of clips trained with "
                                 "the empty caption; 0.1 by default)"),
    ("--caption-dropout", "-0.1", "--caption-dropout -0.1 must be between 0 and 1"),
    ("--validate-every", "-1", "--validate-every -1 must be at least 0 (steps between validations; 0: never)"),
    ("--validate-steps", "0", "--validate-steps 0 must be at least 1 (DDIM steps of the validation samples)"),
    ("--validate-cfg", "-2", "--validate-cfg -2.0 must be 0 or more (1: no guidance)"),
])
def test_numeric_flags_out_of_range_are_refused_before_any_file_is_read(capsys, inputs, flag, value, message):
    code, err = run(capsys, inputs, flag, value, base="absent.safetensors")  # a base read first would say so
    assert code == 2 and message in err


def test_checkpoints_keep_at_least_one():
    with pytest.raises(ValueError, match="keep 0 checkpoints: keep at least 1, the one --resume continues from"):
        Checkpoints(Path("unused"), Accelerator(cpu=True), None, 0, {})


@pytest.mark.parametrize("flags, message", [
    (["--content-adapter", "plus.bin"], "--content-adapter and --image-encoder go together"),
    (["--image-encoder", "clip.safetensors"], "--content-adapter and --image-encoder go together"),
    (["--content-adapter-weights", "bundle.pth"], "--content-adapter-weights replaces the attention weights of "
                                                  "--content-adapter; give that too"),
])
def test_content_adapter_flags_come_together(capsys, inputs, flags, message):
    code, err = run(capsys, inputs, *flags)
    assert code == 2 and message in err


def test_an_sdxl_content_adapter_for_an_sd15_base_is_refused_before_loading(capsys, inputs):
    from comfyui_i2v_adapter.tests.support.random_models import random_ip_adapter_plus
    save_file(random_ip_adapter_plus(SDXL), str(inputs / "plus_sdxl.safetensors"))
    save_file({"vision_model.embeddings.patch_embedding.weight": torch.zeros(1280, 3, 14, 14)},
              str(inputs / "clip.safetensors"))
    code, err = run(capsys, inputs, "--content-adapter", str(inputs / "plus_sdxl.safetensors"),
                    "--image-encoder", str(inputs / "clip.safetensors"))
    assert code == 1 and "is for SDXL but the base is SD1.5" in err


@pytest.mark.parametrize("motion, flags, schedule, across", [
    (None, [], "linear (SD default)", False),
    ("v1", [], "sqrt_linear (AnimateDiff)", True),
    ("v3", [], "sqrt_linear (AnimateDiff)", False),
    ("v1", ["--beta-schedule", "linear", "--groupnorm", "per-frame"], "linear (SD default)", False),
    ("v3", ["--groupnorm", "across-frames"], "sqrt_linear (AnimateDiff)", True),
])
def test_the_noise_schedule_and_groupnorm_follow_the_motion_module(inputs, motion, flags, schedule, across):
    from comfyui_i2v_adapter.training.train_adapter import prepare
    argv = ["--base", str(shape_only_checkpoint(inputs / "sd15.safetensors")), "--data", str(inputs / "videos"),
            "--out", str(inputs / "out/mine.safetensors"), "--frames", "4", "--stride", "2", "--resolution", "64",
            "--no-progress", *flags]
    if motion:
        frames = 24 if motion == "v1" else 32
        argv += ["--motion-module", str(zero_motion_module(inputs / f"mm_{motion}.ckpt", SD15, frames))]
    p = parser()
    args = p.parse_args(argv)
    config = config_from(p, args)
    prepare(config, args)
    assert (config.noise_schedule.label, config.group_norm_across_frames) == (schedule, across)


def test_the_dqformer_needs_a_vision_language_model_folder(capsys, inputs):
    code, err = run(capsys, inputs, "--train", "dqformer")
    assert code == 2 and "--train dqformer needs --vlm" in err
    (inputs / "instructed.csv").write_text("path,text,instruction\n" + "".join(
        f"{video.name},a caption,it rolls left\n" for video in sorted((inputs / "videos").glob("*.mp4"))))
    code, err = run(capsys, inputs, "--train", "dqformer", "--vlm", str(inputs / "no-such-model"),
                    data="instructed.csv")
    assert code == 1 and "--vlm" in err and "no-such-model is not a folder" in err


def test_the_dqformer_needs_an_instruction_per_video(capsys, inputs):
    """Checked before the vision-language model loads: which file, how many videos lack one, what to give."""
    (inputs / "instructions.csv").write_text("path,text\n" + "".join(
        f"{video.name},a caption\n" for video in sorted((inputs / "videos").glob("*.mp4"))))
    for data, expected in (("videos", "a folder of videos has no instructions"),
                           ("instructions.csv", 'give an "instruction" column')):
        code, err = run(capsys, inputs, "--train", "dqformer", "--vlm", str(inputs), data=data)
        assert code == 1 and "--train dqformer needs an instruction per video" in err and expected in err, err


def test_init_from_takes_several_files_and_refuses_a_wrong_one_before_any_model_loads(capsys, inputs):
    from comfyui_i2v_adapter.kernels.look_back import LookBackLayers
    from comfyui_i2v_adapter.kernels.look_back_file import write_look_back
    from comfyui_i2v_adapter.tests.test_training_init_from import official_layout_file

    p = parser()
    args = p.parse_args(["--base", "sd15.safetensors", "--data", "videos", "--out", str(inputs / "out/a.safetensors"),
                         "--init-from", "a.pth", "--init-from", "b.safetensors", "c.safetensors"])
    assert config_from(p, args).init_from == (Path("a.pth"), Path("b.safetensors"), Path("c.safetensors"))
    write_look_back(inputs / "lb.safetensors", LookBackLayers(SD15))
    code, err = run(capsys, inputs, "--init-from", str(inputs / "lb.safetensors"))
    assert code == 1 and ("error: --init-from lb.safetensors is look-back layers, but this run trains only "
                          "i2v_adapter: add look_back to --train, or leave the file out") in err
    official_layout_file(inputs / "i2v_module.pth", SDXL)
    code, err = run(capsys, inputs, "--init-from", str(inputs / "i2v_module.pth"))
    assert code == 1 and ("--init-from i2v_module.pth is an I2V-Adapter for SDXL, but the base is SD1.5: use a file "
                          "made for SD1.5") in err
    code, err = run(capsys, inputs, "--init-from", str(inputs / "absent.pth"))
    assert code == 1 and f"--init-from {inputs / 'absent.pth'} does not exist" in err


def test_the_validation_flags_reach_the_run(inputs):
    from comfyui_i2v_adapter.training.validation import ValidationSettings

    p = parser()
    args = p.parse_args(["--base", "sd15.safetensors", "--data", "videos", "--out", str(inputs / "out/a.safetensors"),
                         "--validate-every", "50", "--validate-clips", "3", "--validate-steps", "20",
                         "--validate-cfg", "7.5", "--report-to", "tensorboard"])
    assert config_from(p, args).validation == ValidationSettings(50, 3, 20, 7.5, "tensorboard")
