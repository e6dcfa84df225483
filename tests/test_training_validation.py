"""--validate-every: held-out clips sampled from their first frame and caption into videos in the run folder, and
the loss, learning rate and held-out loss logged through accelerate's TensorBoard tracker."""
import av
import pytest

from comfyui_i2v_adapter.training.demo import demo_config
from comfyui_i2v_adapter.training.tiny_base import tiny_base
from comfyui_i2v_adapter.training.tiny_world import SyntheticClips
from comfyui_i2v_adapter.training.trainer import train
from comfyui_i2v_adapter.training.validation import ValidationSettings

FRAMES = 8


def test_the_demonstration_validates_into_videos_and_tensorboard_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = demo_config(tmp_path, ("i2v_adapter",), 4, resume=None, progress=False)
    config.batch_size, config.checkpoint_every = 2, 2
    config.validation = ValidationSettings(every=3, clips=2, steps=3, report_to="tensorboard")
    said = []
    result = train(config, tiny_base(), SyntheticClips(8, FRAMES, 32), log=said.append,
                   validation_clips=SyntheticClips(4, FRAMES, 32, seed=1))
    folder = tmp_path / "run/validation"
    assert sorted(p.name for p in folder.iterdir()) == [f"step-0000000{step}-clip-{clip}.mp4"
                                                        for step in (3, 4) for clip in (0, 1)]  # no temporary left
    with av.open(str(folder / "step-00000004-clip-1.mp4")) as video:
        frames = [frame.to_ndarray(format="rgb24") for frame in video.decode(video=0)]
    assert len(frames) == FRAMES and frames[0].shape == (32, 32, 3)
    assert [line.split(":")[0] for line in said] == ["validation at step 3", "validation at step 4"]

    events = EventAccumulator(str(tmp_path / "run/train_adapter"))
    events.Reload()
    scalars = lambda tag: [(event.step, event.value) for event in events.Scalars(tag)]
    assert [step for step, _ in scalars("train/loss")] == [1, 2, 3, 4]
    assert [value for _, value in scalars("train/loss")] == pytest.approx([loss for _, loss in result.losses])
    assert [value for _, value in scalars("train/learning_rate")] == pytest.approx([config.learning_rate] * 4)
    held_out = scalars("validation/held_out_loss")
    assert [step for step, _ in held_out] == [3, 4] and all(0 < value < 10 for _, value in held_out)
    assert [event.step for event in events.Images("validation/clip_1")] == [3, 4]  # the videos' frames


def test_validation_refuses_the_dqformer_it_cannot_sample_yet(tmp_path):
    config = demo_config(tmp_path, ("dqformer",), 2, resume=None, progress=False)
    config.validation = ValidationSettings(every=1)
    with pytest.raises(ValueError, match="--validate-every does not sample with --train dqformer yet"):
        train(config, tiny_base(), SyntheticClips(4, FRAMES, 32, instructed=True))


def test_validation_measures_the_papers_metrics_with_the_models_given(tmp_path):
    """--validate-clip-vision (a CLIP vision folder) and --validate-optical-flow (torchvision RAFT weights): the
    validation videos' CLIPTemp, ISIM, FlowScore and WarpingError, read back from TensorBoard."""
    import torch
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torchvision.models.optical_flow import raft_small
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    clip = tmp_path / "clip_vision"
    CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                                   num_attention_heads=2, projection_dim=16, patch_size=32)
                                  ).save_pretrained(clip)
    torch.save(raft_small(weights=None).state_dict(), tmp_path / "raft_small.pth")
    config = demo_config(tmp_path, ("i2v_adapter",), 2, resume=None, progress=False)
    config.batch_size = 2
    config.validation = ValidationSettings(every=2, clips=1, steps=2, report_to="tensorboard", clip_vision=clip,
                                           optical_flow=tmp_path / "raft_small.pth")
    train(config, tiny_base(), SyntheticClips(4, 4, 32), log=lambda line: None,
          validation_clips=SyntheticClips(2, 4, 32, seed=1))
    events = EventAccumulator(str(tmp_path / "run/train_adapter"))
    events.Reload()
    for name in ("clip_temp", "isim_first", "isim_decay", "flow_score", "warping_error"):
        [event] = events.Scalars(f"validation/{name}")
        assert event.step == 2 and torch.isfinite(torch.tensor(event.value)), name
    assert -1 <= events.Scalars("validation/clip_temp")[0].value <= 1
    assert events.Scalars("validation/flow_score")[0].value >= 0


def test_a_clip_vision_path_that_is_no_folder_of_one_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="--validate-clip-vision .* is not a Hugging Face CLIP vision folder"):
        ValidationSettings(every=1, clip_vision=tmp_path).metrics()
