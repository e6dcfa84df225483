"""--init-from: the trained parts start from a file's weights (the official i2v_module.pth layout, our own files) at
step 0, and a file of another kind, family or shape is refused naming both what it is and what the run trains."""
import pytest
import torch

from comfyui_i2v_adapter.kernels.adapter_file import read_adapter
from comfyui_i2v_adapter.kernels.dqformer import DQFormer, DQFormerShape
from comfyui_i2v_adapter.kernels.dqformer_file import write_dqformer
from comfyui_i2v_adapter.kernels.first_frame_attention import I2VAdapter
from comfyui_i2v_adapter.kernels.look_back import LookBackLayers
from comfyui_i2v_adapter.kernels.look_back_file import write_look_back
from comfyui_i2v_adapter.kernels.unet_layout import SD15, TINY
from comfyui_i2v_adapter.tests.support.training_runs import FRAMES, quiet, run_config
from comfyui_i2v_adapter.training import trainer
from comfyui_i2v_adapter.training.instruction_features import TextEncoderFeatures
from comfyui_i2v_adapter.training.tiny_base import tiny_base
from comfyui_i2v_adapter.training.tiny_world import SyntheticClips


def config(folder, train_what=("i2v_adapter",), **changes):
    return run_config(folder, train_what, steps=2, **changes)


def official_layout_file(path, family=TINY, seed=3):
    """Random branch weights under the official release's keys, wrapped as i2v_module.pth wraps them."""
    torch.manual_seed(seed)
    with torch.device("cpu" if family is TINY else "meta"):
        adapter = I2VAdapter(family)
    state = {k: torch.randn(v.shape) * 0.05 if family is TINY else torch.zeros(1).expand(v.shape)
             for k, v in adapter.state_dict().items()}  # expanded zeros: a few bytes per tensor
    torch.save({"state_dict": state}, path)
    return path


def test_a_run_from_an_official_layout_file_trains_as_if_its_weights_had_been_set_directly(tmp_path, monkeypatch):
    """The step-1 loss (and every later one, and the written file) of a run with --init-from i2v_module.pth equals
    that of a run whose adapter was given those weights by hand; it starts at step 1, with no checkpoint read."""
    official = official_layout_file(tmp_path / "i2v_module.pth")
    clips = SyntheticClips(8, FRAMES, 32)
    said = []
    started = trainer.train(config(tmp_path / "init", init_from=(official,)), tiny_base(), clips, log=said.append)
    assert said == ["i2v_adapter starts from i2v_module.pth"]

    build = trainer.build_video_unet

    def built_with_the_file_weights(*args, **kwargs):
        model = build(*args, **kwargs)
        model.i2v_adapter.load_state_dict(read_adapter(official).state_dict)
        return model

    monkeypatch.setattr(trainer, "build_video_unet", built_with_the_file_weights)
    direct = trainer.train(config(tmp_path / "direct"), tiny_base(), clips, log=quiet)
    assert [step for step, _ in started.losses] == [1, 2]
    assert started.losses == direct.losses
    written = [read_adapter(tmp_path / name / "i2v_adapter_tiny_demo.safetensors").state_dict
               for name in ("init", "direct")]
    assert all(torch.equal(written[0][k], written[1][k]) for k in written[0])


def test_the_papers_two_resolutions_are_two_runs(tmp_path):
    """Train both parts at 32², then continue the written files at 64² (which --resume refuses) in a new run."""
    both = ("i2v_adapter", "look_back")
    first = trainer.train(config(tmp_path / "32", both), tiny_base(), SyntheticClips(8, FRAMES, 32), log=quiet)
    said = []
    second = trainer.train(config(tmp_path / "64", both, width=64, height=64,
                                  init_from=tuple(first.outputs.values())),
                           tiny_base(), SyntheticClips(4, FRAMES, 64), log=said.append)
    assert said == ["i2v_adapter starts from i2v_adapter_tiny_demo.safetensors (2 steps, 32x32 resolution)",
                    "look_back starts from look_back_tiny_demo.safetensors (2 steps, 32x32 resolution)"]
    assert [step for step, _ in second.losses] == [1, 2]
    assert read_adapter(second.outputs["i2v_adapter"]).metadata["resolution"] == "64x64"


def look_back_file(path, **settings):
    write_look_back(path, LookBackLayers(TINY, **settings))
    return path


def dqformer_file(path, feature_dim, family=TINY):
    write_dqformer(path, DQFormer(DQFormerShape(feature_dim, family.context_dim, width=64, layers=2, heads=4,
                                                queries=16)), family, "other-vlm")
    return path


def refusal(tmp_path, train_what, files, features=None):
    base = tiny_base()
    with pytest.raises(ValueError) as refused:
        trainer.train(config(tmp_path / "run", train_what, init_from=files), base, SyntheticClips(4, FRAMES, 32),
                      features=features and features(base), log=quiet)
    assert not (tmp_path / "run").exists()  # refused before anything ran
    return str(refused.value)


def test_a_part_the_run_does_not_train_is_refused(tmp_path):
    found = refusal(tmp_path, ("i2v_adapter",), (look_back_file(tmp_path / "lb.safetensors", depth=3, kernel=3),))
    assert found == ("--init-from lb.safetensors is look-back layers, but this run trains only i2v_adapter: add "
                     "look_back to --train, or leave the file out")


def test_a_file_for_another_family_is_refused(tmp_path):
    found = refusal(tmp_path, ("i2v_adapter",), (official_layout_file(tmp_path / "i2v_module.pth", SD15),))
    assert found == ("--init-from i2v_module.pth is an I2V-Adapter for SD1.5, but the base is Tiny-demo: use a file "
                     "made for Tiny-demo")


def test_look_back_layers_of_another_shape_are_refused_naming_the_flags_that_match(tmp_path):
    found = refusal(tmp_path, ("look_back",), (look_back_file(tmp_path / "lb.safetensors", depth=4, kernel=3,
                                                              dense=True),))
    assert found == ("--init-from lb.safetensors is look-back layers with depth 4, kernel 3, adapter_kernel 3, dense "
                     "True, but this run's are depth 3, kernel 3, adapter_kernel 3, dense False; to continue it: "
                     "--look-back-depth 4, --look-back-dense")


def test_a_dqformer_for_another_vision_language_width_is_refused(tmp_path):
    found = refusal(tmp_path, ("dqformer",), (dqformer_file(tmp_path / "dq.safetensors", feature_dim=16),),
                    features=lambda base: TextEncoderFeatures(base.text, name="tiny-text"))
    assert found == ("--init-from dq.safetensors is a DQFormer for other-vlm (hidden width 16), but this run's "
                     "vision-language model tiny-text is 32 wide: use a DQFormer trained on that model (--vlm)")


def test_two_files_for_one_part_and_files_of_no_trained_kind_are_refused(tmp_path):
    one, other = (official_layout_file(tmp_path / name) for name in ("a.pth", "b.pth"))
    assert refusal(tmp_path, ("i2v_adapter",), (one, other)) == (
        "--init-from a.pth and b.pth are both an I2V-Adapter: give one file per trained part")
    torch.save({"down_blocks.0.motion_modules.0.proj.weight": torch.zeros(2, 2)}, tmp_path / "mm.ckpt")
    assert refusal(tmp_path, ("i2v_adapter",), (tmp_path / "mm.ckpt",)).startswith(
        "--init-from mm.ckpt is neither an I2V-Adapter safetensors file nor the official i2v_module layout")
