"""The training loop on the demonstration's tiny base: identity start, written files, exact resume, the stop on a
non-finite loss, gradient checkpointing and the latent cache."""
import json
import os
from collections import Counter
import shutil
import signal

import pytest
import torch

from comfyui_i2v_adapter.kernels.adapter_file import read_adapter
from comfyui_i2v_adapter.kernels.look_back_file import read_look_back
from comfyui_i2v_adapter.kernels.unet_layout import TINY
from comfyui_i2v_adapter.tests.support.training_runs import FRAMES, quiet, run_config as config
from comfyui_i2v_adapter.training.tiny_base import tiny_base
from comfyui_i2v_adapter.training.tiny_world import SyntheticClips
from comfyui_i2v_adapter.training.trainer import TrainingDiverged, build_video_unet, train
from comfyui_i2v_adapter.training.validation import ValidationSettings


def test_modules_start_as_the_identity(seeded, tmp_path):
    """W'_Q is W_Q, W'_O is zero, the look-back layers are zero: the video UNet predicts what the base does."""
    base, clips = tiny_base(), SyntheticClips(2, FRAMES, 32)
    model = build_video_unet(base, config(tmp_path, ("i2v_adapter", "look_back")), None)
    for path, branch in model.i2v_adapter.branches():
        assert torch.equal(branch.to_q_ff.weight, base.unet.get_submodule(path).to_q.weight)
        assert not branch.to_out_ff.weight.any() and not branch.to_out_ff.bias.any()
    latents = base.latents(base.encode_video(torch.stack([clips.clip(i).pixels for i in range(2)])), None)
    t, context = torch.tensor([500, 500]), base.text(["a disc moving"] * 2).context
    with torch.no_grad():
        video = model(latents, t, context)
        model.remove()
        plain = base.unet(latents.flatten(0, 1), t.repeat_interleave(FRAMES), context.repeat_interleave(FRAMES, 0))
    assert torch.allclose(video.flatten(0, 1), plain.sample, atol=1e-5)


def test_a_down_block_whose_last_skip_is_not_its_output_is_refused(tmp_path):
    """The look-back hook replaces a down block's output and its last skip with the updated output, right only while
    diffusers returns the output itself as the last skip. A hook that copies the skip stands for a diffusers that
    does not (and the check must hold under python -O)."""
    base = tiny_base()
    copy_last_skip = lambda module, args, output: (output[0], (*output[1][:-1], output[1][-1].clone()))
    copying = base.unet.down_blocks[0].register_forward_hook(copy_last_skip)  # runs before the look-back hook
    model = build_video_unet(base, config(tmp_path, ("look_back",)), None)
    try:
        with torch.no_grad(), pytest.raises(RuntimeError, match=r"down_blocks.0: this diffusers \(.*\) no longer "
                                                                  "returns the block's output as its last skip"):
            model(torch.zeros(1, FRAMES, 4, 8, 8), torch.tensor([500]), base.text(["a disc moving"]).context)
    finally:
        model.remove()
        copying.remove()


def test_the_written_files_are_what_the_nodes_read(tmp_path):
    result = train(config(tmp_path, ("i2v_adapter", "look_back")), tiny_base(), SyntheticClips(8, FRAMES, 32),
                   log=quiet)
    adapter = read_adapter(result.outputs["i2v_adapter"])
    look_back = read_look_back(result.outputs["look_back"])
    assert adapter.family is TINY and look_back.family is TINY
    assert all(k.endswith(("attn1.to_q_ff.weight", "attn1.to_out_ff.weight", "attn1.to_out_ff.bias"))
               for k in adapter.state_dict)
    assert any(v.abs().max() > 0 for k, v in adapter.state_dict.items() if "to_out_ff" in k)  # it trained
    for metadata in (adapter.metadata, look_back.metadata):
        assert (metadata["resolution"], metadata["frames"], metadata["steps"]) == ("32x32", "8", "4")
        assert metadata["base_checkpoint"] == "tiny demonstration base"
    log = [json.loads(line) for line in (tmp_path / "run/train_log.jsonl").read_text().splitlines()]
    assert [entry["step"] for entry in log] == [1, 2, 3, 4]
    assert [c.name for c in sorted((tmp_path / "run/checkpoints").iterdir())] == ["checkpoint-00000002",
                                                                                  "checkpoint-00000004"]


class WorldWithEvent(SyntheticClips):
    """The world, with `event(read, clip)` called on every clip read (the first read is 1)."""

    def __init__(self, event):
        super().__init__(16, FRAMES, 32)
        self.reads, self.event = 0, event

    def clip(self, index, generator=None):
        self.reads += 1
        clip = super().clip(index, generator)
        self.event(self.reads, clip)
        return clip


def ctrl_c_at_read_5(read, clip):
    if read == 5:
        os.kill(os.getpid(), signal.SIGINT)


def broken_frames_after_read_4(read, clip):
    if read > 4:
        clip.pixels[:, :, 3:9, 3:9] = float("nan")


@pytest.mark.parametrize("validation", [ValidationSettings(), ValidationSettings(every=2, clips=1, steps=2)],
                         ids=["plain", "validating"])
def test_ctrl_c_then_resume_continues_exactly_like_an_uninterrupted_run(tmp_path, validation):
    """Ctrl-C during step 3 finishes that step, checkpoints it and stops; --resume latest then gives the losses and
    the file of a run that never stopped, bit for bit. Validating every 2 steps changes none of it (its reads of the
    world, at step 2, are where the Ctrl-C then comes)."""
    straight = train(config(tmp_path / "straight", steps=6, validation=validation), tiny_base(),
                     SyntheticClips(16, FRAMES, 32), log=quiet)
    with pytest.raises(KeyboardInterrupt, match="stopped at step 3; checkpoint .*checkpoint-00000003: continue with "
                                                "--resume latest"):
        train(config(tmp_path / "resumed", steps=6, validation=validation), tiny_base(),
              WorldWithEvent(ctrl_c_at_read_5), log=quiet)
    with pytest.raises(ValueError, match="already holds checkpoints .*continue that run with --resume latest"):
        train(config(tmp_path / "resumed", steps=6), tiny_base(), SyntheticClips(16, FRAMES, 32), log=quiet)
    resumed = train(config(tmp_path / "resumed", steps=6, resume="latest", validation=validation), tiny_base(),
                    SyntheticClips(16, FRAMES, 32), log=quiet)
    assert [step for step, _ in resumed.losses] == [4, 5, 6]
    assert resumed.losses == straight.losses[3:]
    written = [read_adapter(tmp_path / name / "i2v_adapter_tiny_demo.safetensors").state_dict
               for name in ("straight", "resumed")]
    assert all(torch.equal(written[0][k], written[1][k]) for k in written[0])


def test_the_loop_reads_the_loss_on_the_host_once_per_log_interval_and_still_logs_every_step(tmp_path):
    """Between reads the host never waits for the device: the losses of 6 steps come back in one read per
    --log-every interval (and the log and the losses are those of a read per step)."""
    from comfyui_i2v_adapter.tests.support.host_sync import HostSyncGuard

    runs = {}
    for every in (1, 3):
        with HostSyncGuard() as guard:
            result = train(config(tmp_path / str(every), steps=6, log_every=every, checkpoint_every=6), tiny_base(),
                           SyntheticClips(16, FRAMES, 32), log=quiet)
        log = [json.loads(line) for line in (tmp_path / str(every) / "run/train_log.jsonl").read_text().splitlines()]
        runs[every] = [found for found in guard.found if "(train)" in found], result.losses, log
    reads = {every: Counter(runs[every][0]) for every in (1, 3)}
    loss_reads = {every: sum(n for where, n in reads[every].items() if where.endswith(": tolist")) for every in (1, 3)}
    assert loss_reads == {1: 6, 3: 2}
    others = {every: sum(reads[every].values()) - loss_reads[every] for every in (1, 3)}
    assert others == {1: 1, 3: 1}  # the DataLoader draws its base seed once, when it starts
    assert runs[1][1] == runs[3][1] and len(runs[3][1]) == 6
    assert [(line["step"], line["loss"]) for line in runs[3][2]] == runs[1][1]


def test_after_a_kill_between_checkpoints_the_log_holds_each_step_once(tmp_path):
    clips = SyntheticClips(8, FRAMES, 32)
    train(config(tmp_path, steps=3), tiny_base(), clips, log=quiet)
    shutil.rmtree(tmp_path / "run/checkpoints/checkpoint-00000003")  # killed before step 3's checkpoint
    train(config(tmp_path, steps=4, resume="latest"), tiny_base(), clips, log=quiet)
    log = [json.loads(line)["step"] for line in (tmp_path / "run/train_log.jsonl").read_text().splitlines()]
    assert log == [1, 2, 3, 4]


def test_resuming_with_other_settings_is_refused(tmp_path):
    clips = SyntheticClips(8, FRAMES, 32)
    train(config(tmp_path, steps=2), tiny_base(), clips, log=quiet)
    with pytest.raises(ValueError, match="checkpoint-00000002 was made with other settings \\(frames: 8 in the "
                                         "checkpoint, 4 now\\)"):
        train(config(tmp_path, steps=4, resume="latest", frames=4), tiny_base(), SyntheticClips(8, 4, 32), log=quiet)


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    settings = config(tmp_path, steps=6)
    with pytest.raises(TrainingDiverged, match=r"the loss became nan at step 3: training stopped .*The last good "
                                               r"checkpoint, .*checkpoint-00000002, is kept"):
        train(settings, tiny_base(), WorldWithEvent(broken_frames_after_read_4), log=quiet)
    assert [c.name for c in (tmp_path / "run/checkpoints").iterdir()] == ["checkpoint-00000002"]
    assert not settings.outputs["i2v_adapter"].exists()


def test_gradient_checkpointing_trains_the_same(tmp_path):
    clips = SyntheticClips(8, FRAMES, 32)
    both = ("i2v_adapter", "look_back")
    plain = train(config(tmp_path / "plain", both, steps=2), tiny_base(), clips, log=quiet)
    recomputed = train(config(tmp_path / "recomputed", both, steps=2, gradient_checkpointing=True), tiny_base(), clips,
                       log=quiet)
    assert torch.allclose(torch.tensor(plain.losses), torch.tensor(recomputed.losses), atol=1e-6)
    files = [read_look_back(tmp_path / name / "look_back_tiny_demo.safetensors").state_dict
             for name in ("plain", "recomputed")]
    assert all(torch.allclose(files[0][k], files[1][k], atol=1e-6) for k in files[0])


def test_cached_latents_are_encoded_once_and_reused(tmp_path):
    """--cache-latents on real videos: one file per video; a second run reads them (nothing re-encoded) and, with
    the same seed, trains exactly as the first."""
    from comfyui_i2v_adapter.tests.support.videos import write_video_folder
    from comfyui_i2v_adapter.training.video_clips import ClipShape, VideoClips
    from comfyui_i2v_adapter.training.video_sources import list_videos

    write_video_folder(tmp_path / "videos")
    clips = VideoClips(list_videos(tmp_path / "videos")[0], ClipShape(FRAMES, 1, 32, 32), "videos", progress=False)
    cached = lambda name: config(tmp_path / name, steps=2, cache_latents=True, cache_dir=tmp_path / "cache")
    first = train(cached("first"), tiny_base(), clips, log=quiet)
    files = {path: path.stat().st_mtime_ns for path in (tmp_path / "cache").iterdir()}
    assert len(files) == len(clips) == 4
    second = train(cached("second"), tiny_base(), clips, log=quiet)
    assert {path: path.stat().st_mtime_ns for path in (tmp_path / "cache").iterdir()} == files
    assert second.losses == first.losses


class CountingFeatures:
    """A tiny Qwen2-VL's features for the DQFormer, counting the clips it is asked about."""

    def __init__(self, folder):
        from comfyui_i2v_adapter.training.instruction_features import VisionLanguageFeatures

        self.features, self.asked = VisionLanguageFeatures(folder, states=2, max_new_tokens=24), 0
        self.name, self.states, self.hidden_size = self.features.name, 2, self.features.hidden_size

    def to(self, device, dtype):
        self.features.to(device, dtype)
        return self

    def __call__(self, first_frame, instruction):
        self.asked += 1
        return self.features(first_frame, instruction)


def test_the_dqformer_trains_on_cached_vision_language_features_and_resumes_exactly(tmp_path):
    """--train dqformer: the vision-language model answers once per clip (its hidden states cached with the
    latents); a run stopped after step 2 and resumed gives the losses and the file of a run that never stopped."""
    from comfyui_i2v_adapter.kernels.dqformer_file import read_dqformer
    from comfyui_i2v_adapter.tests.support.tiny_vlms import write_tiny_vlm

    features = CountingFeatures(write_tiny_vlm(tmp_path / "tiny-vlm"))
    clips = SyntheticClips(4, FRAMES, 32, instructed=True)
    run = lambda name, steps, resume=None: train(
        config(tmp_path / name, ("dqformer",), steps=steps, cache_dir=tmp_path / "cache", resume=resume),
        tiny_base(), clips, features=features, log=quiet)
    straight = run("straight", 4)
    assert features.asked == len(clips) and len(list((tmp_path / "cache").iterdir())) == len(clips)
    run("resumed", 2)
    resumed = run("resumed", 4, resume="latest")
    assert features.asked == len(clips)
    assert resumed.losses == straight.losses[2:]
    written = [read_dqformer(tmp_path / name / "dqformer_tiny_demo.safetensors") for name in ("straight", "resumed")]
    assert written[0].vision_language_model == "tiny-vlm"
    assert written[0].shape.feature_dim == features.hidden_size
    assert all(torch.equal(written[0].state_dict[k], written[1].state_dict[k]) for k in written[0].state_dict)
