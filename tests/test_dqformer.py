"""Tier 1: the DQFormer (AID's dual-query transformer) and its files."""
import pytest
import torch
from safetensors.torch import save_file

from comfyui_i2v_adapter.kernels.dqformer import DQFormer, DQFormerShape, frame_tokens
from comfyui_i2v_adapter.kernels.dqformer_file import read_dqformer, write_dqformer
from comfyui_i2v_adapter.kernels.state_schedule import frame_state_weights
from comfyui_i2v_adapter.kernels.tensor_files import FileFormatError
from comfyui_i2v_adapter.kernels.unet_layout import SD15, SDXL

SMALL = dict(width=32, layers=2, heads=4, queries=8)


def features(states=3, hidden=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    instruction, state = torch.randn(1, 11, hidden, generator=g), torch.randn(states, 6, hidden, generator=g)
    state_mask = torch.ones(states, 6, dtype=torch.bool)
    state_mask[0, 4:] = False
    return instruction, torch.ones(1, 11, dtype=torch.bool), state, state_mask


def trained(shape: DQFormerShape, seed=1) -> DQFormer:
    torch.manual_seed(seed)
    model = DQFormer(shape)
    torch.nn.init.normal_(model.proj_out.weight, std=0.05)
    return model


def test_aid_sizes_and_parameter_counts():
    """Table 8: 77 queries, 1024 wide, 2 layers, 8 heads; the output is the UNet's cross-attention width."""
    for family, count in ((SD15, 72_329_984), (SDXL, 73_641_984)):
        with torch.device("meta"):
            model = DQFormer(DQFormerShape(feature_dim=2048, context_dim=family.context_dim))
        assert sum(p.numel() for p in model.parameters()) == count
        assert model.proj_out.out_features == family.context_dim and model.shape.queries == 77


def test_an_untrained_dqformer_gives_zero_tokens():
    tokens = DQFormer(DQFormerShape(40, 24, **SMALL))(*features())
    assert tokens.shape == (3, 8, 24) and torch.equal(tokens, torch.zeros_like(tokens))


def test_tokens_read_the_instruction_and_each_state_but_not_padding():
    model = trained(DQFormerShape(40, 24, **SMALL))
    instruction, instruction_mask, states, states_mask = features()
    tokens = model(instruction, instruction_mask, states, states_mask)
    other_instruction = model(instruction + 1, instruction_mask, states, states_mask)
    padding_changed = states.clone()
    padding_changed[0, 4:] += 5
    assert (tokens - other_instruction).abs().amax(dim=(1, 2)).min() > 1e-4  # every state's tokens
    assert (tokens[0] - tokens[1]).abs().max() > 1e-4  # states differ
    assert torch.allclose(model(instruction, instruction_mask, padding_changed, states_mask), tokens, atol=1e-6)


def test_frame_tokens_blend_the_states_as_the_conditioning_does():
    tokens = torch.randn(4, 8, 24)
    weights = frame_state_weights(16, 4, 2.0)
    per_frame = frame_tokens(tokens, weights)
    assert per_frame.shape == (16, 8, 24)
    assert torch.allclose(per_frame[0], tokens[0]) and torch.allclose(per_frame[15], tokens[3])
    assert torch.allclose(per_frame[4], 0.25 * tokens[0] + 0.75 * tokens[1], atol=1e-6)  # past the boundary at 3.5


def test_file_round_trip_records_family_shape_and_model(tmp_path):
    model = trained(DQFormerShape(40, SD15.context_dim, **SMALL))
    write_dqformer(tmp_path / "dq.safetensors", model, SD15, "Qwen2.5-VL-3B-Instruct", steps=10)
    loaded = read_dqformer(tmp_path / "dq.safetensors")
    assert loaded.family is SD15 and loaded.shape == model.shape
    assert loaded.vision_language_model == "Qwen2.5-VL-3B-Instruct" and loaded.metadata["steps"] == "10"
    assert torch.equal(loaded.build()(*features()), model(*features()))


@pytest.mark.parametrize("metadata, message", [
    ({}, "a file without DQFormer metadata, not a DQFormer"),
    ({"format": "i2v-adapter"}, "is a 'i2v-adapter' file, not a DQFormer"),
    ({"format": "dqformer", "base": "sd15"}, "its metadata lacks feature_dim"),
    ({"format": "dqformer", "base": "sdxl", "feature_dim": "40", "context_dim": "768", "width": "32", "layers": "2",
      "heads": "4", "queries": "8"}, "makes tokens 768 wide but SDXL's cross-attention is 2048"),
])
def test_files_that_are_no_dqformer_are_refused(tmp_path, metadata, message):
    save_file({"proj_out.weight": torch.zeros(1)}, str(tmp_path / "x.safetensors"), metadata=metadata)
    with pytest.raises(FileFormatError, match=message):
        read_dqformer(tmp_path / "x.safetensors")
