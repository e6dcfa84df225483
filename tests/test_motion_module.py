"""Tier 1: AnimateDiff motion modules in kernels/: the math (against diffusers' own implementation) and the file
layouts the community uses."""
import re

import pytest
import torch
from safetensors.torch import save_file

from comfyui_i2v_adapter.kernels.motion_module import MotionModule, MotionModules
from comfyui_i2v_adapter.kernels.motion_module_file import motion_module_from_tensors, original_names, read_motion_module
from comfyui_i2v_adapter.kernels.tensor_files import FileFormatError
from comfyui_i2v_adapter.kernels.unet_layout import SD15, SDXL


def randomised(module, seed=0):
    torch.manual_seed(seed)
    for name, p in module.named_parameters():
        torch.nn.init.normal_(p, std=0.3 if "norm" not in name else 1.0)
    return module


def test_frames_attend_to_each_other_and_only_within_their_video():
    module = randomised(MotionModule(64, max_frames=24)).eval()
    x = torch.randn(2 * 6, 64, 4, 4)
    moved = x.clone()
    moved[2] += 1.0  # video 0, frame 2
    change = (module(moved, 6) - module(x, 6)).abs().amax(dim=(1, 2, 3)).reshape(2, 6)
    assert (change[0] > 1e-4).all() and torch.equal(change[1], torch.zeros(6))


def test_scale_zero_and_zero_projection_leave_the_input_exactly():
    module = randomised(MotionModule(64, max_frames=24))
    x = torch.randn(8, 64, 4, 4)
    assert torch.equal(module(x, 8, scale=0.0), x)
    torch.nn.init.zeros_(module.temporal_transformer.proj_out.weight)
    torch.nn.init.zeros_(module.temporal_transformer.proj_out.bias)
    assert torch.equal(module(x, 8), x)


def test_more_frames_than_the_position_encoding_is_refused():
    with pytest.raises(ValueError, match="at most 24 frames .* got 25"):
        MotionModule(64, max_frames=24)(torch.randn(25, 64, 2, 2), 25)


def test_same_math_as_diffusers_motion_module():
    """diffusers' AnimateDiffTransformer3D, given the same weights in its own layout. It normalises over all frames
    where AnimateDiff normalises per frame, so the frames share their statistics here (they differ only by the
    position encoding inside the module)."""
    from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D

    theirs = randomised(AnimateDiffTransformer3D(
        in_channels=64, num_attention_heads=8, attention_head_dim=8, norm_num_groups=32, cross_attention_dim=None,
        activation_fn="geglu", attention_bias=False, positional_embeddings="sinusoidal",
        num_positional_embeddings=24)).eval()
    ours = MotionModule(64, max_frames=24).eval()
    ours.load_state_dict({name: value for key, value in theirs.state_dict().items() for name in original_names(key)})
    x = torch.randn(1, 64, 3, 3).repeat(5, 1, 1, 1)
    with torch.no_grad():
        ours_out, theirs_out = ours(x, 5), theirs(x, num_frames=5)
    assert (ours_out - theirs_out).abs().max() <= 1e-5 * theirs_out.abs().max()


def original_state(family=SD15, max_frames=32, mid_block=True):
    """The keys and shapes of an original AnimateDiff checkpoint, backed by one value each (no memory)."""
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in MotionModules(family, max_frames, mid_block).state_dict().items()}
    return {k: torch.zeros(1, dtype=torch.float16).expand(s) for k, s in shapes.items()}


@pytest.mark.parametrize("max_frames, mid_block, version", [(24, False, "v1"), (32, True, "v2"), (32, False, "v3")])
def test_original_sd15_layouts_are_recognised(max_frames, mid_block, version):
    motion = motion_module_from_tensors(original_state(SD15, max_frames, mid_block), "mm.ckpt")
    assert (motion.family, motion.version, motion.max_frames, motion.mid_block, motion.layout) == \
        (SD15, version, max_frames, mid_block, "AnimateDiff")


def test_sdxl_beta_layout_is_recognised():
    motion = motion_module_from_tensors(original_state(SDXL, 32, False), "mm_sdxl_v10_beta.ckpt")
    assert (motion.family, motion.version) == (SDXL, "sdxl-beta")


def test_ckpt_wrapped_in_state_dict_with_a_prefix_loads_safely(tmp_path):
    torch.save({"state_dict": {f"module.{k}": v for k, v in original_state().items()}, "global_step": 5000},
               tmp_path / "mm_sd_v15_v2.ckpt")
    motion = read_motion_module(tmp_path / "mm_sd_v15_v2.ckpt")
    assert motion.version == "v2" and len(motion.state_dict) == 588


def test_not_a_motion_module_and_hotshot_are_named(tmp_path):
    save_file({"down_blocks.0.attentions.0.proj_in.weight": torch.zeros(2, 2)}, str(tmp_path / "unet.safetensors"))
    with pytest.raises(FileFormatError, match="unet.safetensors is not a motion module"):
        read_motion_module(tmp_path / "unet.safetensors")
    with pytest.raises(FileFormatError, match="HotShot-XL"):
        motion_module_from_tensors({"down_blocks.1.temporal_attentions.0.proj_in.weight": torch.zeros(1)}, "hsxl")


def test_wrong_shapes_and_missing_keys_are_refused():
    state = original_state()
    key = "up_blocks.3.motion_modules.2.temporal_transformer.proj_in.weight"
    with pytest.raises(FileFormatError, match=r"proj_in.weight is \(640, 640\), expected \(320, 320\)"):
        motion_module_from_tensors({**state, key: torch.zeros(640, 640)}, "mm")
    del state[key]
    with pytest.raises(FileFormatError, match="1 keys missing"):
        motion_module_from_tensors(state, "mm")


PE = "down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0.pos_encoder.pe"
MALFORMED = {
    "no down-block modules": (
        lambda state: {k: v for k, v in state.items() if not k.startswith("down_blocks.")},
        "mm.ckpt has no motion modules in its down blocks (only in mid_block, up_blocks); AnimateDiff motion modules "
        "sit in every block"),
    "no transformer blocks": (
        lambda state: {k: v for k, v in state.items() if "transformer_blocks." not in k},
        "mm.ckpt: its motion modules have no transformer blocks (no 'transformer_blocks.<n>.' keys)"),
    "a flat position encoding": (
        lambda state: {k: torch.zeros(32) if k.endswith(".pe") else v for k, v in state.items()},
        f"mm.ckpt: {PE} is (32,); a position encoding is [1, frames ≥ 1, channels]"),
    "a position encoding of no frames": (
        lambda state: {k: v[:, :0] if k.endswith(".pe") else v for k, v in state.items()},
        f"mm.ckpt: {PE} is (1, 0, 320); a position encoding is [1, frames ≥ 1, channels]"),
    "an unknown diffusers key": (
        lambda state: {"down_blocks.0.motion_modules.0.transformer_blocks.0.attn9.to_q.weight": torch.zeros(1)},
        "mm.ckpt: unexpected key in a diffusers motion adapter: transformer_blocks.0.attn9.to_q.weight"),
}


@pytest.mark.parametrize("damage, message", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_files_are_refused_naming_the_file_and_the_fault(damage, message):
    with pytest.raises(FileFormatError, match=re.escape(message)):
        motion_module_from_tensors(damage(original_state()), "mm.ckpt")


@pytest.mark.parametrize("config, fault", [
    ("{not json", "is not valid JSON"),
    ('["a list"]', "holds a list, not a JSON object"),
    ('{"motion_max_seq_length": "32"}', "gives motion_max_seq_length '32'; it must be a whole number of frames ≥ 1"),
    ('{"motion_max_seq_length": 0}', "gives motion_max_seq_length 0; it must be a whole number of frames ≥ 1"),
])
def test_a_damaged_config_beside_a_motion_module_is_named(tmp_path, config, fault):
    save_file({"down_blocks.0.motion_modules.0.proj_in.weight": torch.zeros(1)}, str(tmp_path / "mm.safetensors"))
    (tmp_path / "config.json").write_text(config)
    with pytest.raises(FileFormatError, match=re.escape(f"config.json beside mm.safetensors {fault}")):
        read_motion_module(tmp_path / "mm.safetensors")
