"""Tier 1: state boundaries, the schedule string as the prompt-travel nodes parse it, and per-frame blends."""
import pytest
import torch

from comfyui_i2v_adapter.kernels.state_schedule import (blend_embeddings, blend_pooled, frame_state_weights,
                                                         schedule_string, state_starts)
from comfyui_i2v_adapter.tests.support.prompt_travel import animatediff_evolved_parse, fizznodes_parse

STATES = ['A hand holds a "white" sheet.', "The hands pull\napart, C:\\path `x`.", "A tear runs down.",
          "Two pieces remain."]


@pytest.mark.parametrize("frames,states", [(16, 4), (10, 4), (7, 7), (24, 5), (1, 1), (100, 3)])
def test_keys_are_round_i_f_over_n_distinct_and_increasing(frames, states):
    starts = state_starts(frames, states)
    assert starts == [round(i * frames / states) for i in range(states)]
    assert starts[0] == 0 and all(a < b for a, b in zip(starts, starts[1:])) and starts[-1] < frames


def test_schedule_string_parses_the_same_in_fizznodes_and_animatediff_evolved():
    text = schedule_string(STATES, 16)
    expected = {0: "A hand holds a 'white' sheet.", 4: "The hands pull apart, C:path x.", 8: "A tear runs down.",
                12: "Two pieces remain."}
    assert text == "\n".join(['"0": "A hand holds a \'white\' sheet.",', '"4": "The hands pull apart, C:path x.",',
                              '"8": "A tear runs down.",', '"12": "Two pieces remain."'])
    assert fizznodes_parse(text) == expected
    assert fizznodes_parse(text + ",") == expected  # as users extend it, with a trailing comma
    assert animatediff_evolved_parse(text) == expected


def test_control_characters_a_model_may_write_never_reach_the_schedule():
    """A random or odd model can decode to control characters, which JSON refuses inside a string."""
    text = schedule_string(["The cat\x01 rises.", "It\x7f jumps\x0b down."], 4)
    assert fizznodes_parse(text) == {0: "The cat rises.", 2: "It jumps down."} == animatediff_evolved_parse(text)


def test_more_states_than_frames_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"states \(5\) is more than frames \(4\): every state needs at least one "
                                         r"frame\. Ask for at most 4 states, or make the video longer\."):
        state_starts(4, 5)


def test_hard_cut_gives_each_frame_its_state():
    weights = frame_state_weights(16, 4, 0)
    assert torch.equal(weights.argmax(1), torch.arange(16) // 4) and torch.equal(weights.max(1).values, torch.ones(16))
    assert torch.equal(frame_state_weights(16, 4, 1), weights)


def test_blend_is_linear_across_each_boundary_and_rows_sum_to_one():
    weights = frame_state_weights(24, 3, 4)
    assert torch.allclose(weights.sum(1), torch.ones(24))
    # boundary at frame 8: centre 7.5, ramp over 4 frames → 1/8, 3/8, 5/8, 7/8 of the next state on frames 6..9
    assert torch.allclose(weights[5:11, 1], torch.tensor([0, 0.125, 0.375, 0.625, 0.875, 1.0]))
    assert torch.allclose(weights[5:11, 0], 1 - weights[5:11, 1])
    assert torch.equal(weights[0], torch.tensor([1.0, 0, 0])) and torch.equal(weights[23], torch.tensor([0, 0, 1.0]))


def test_overlapping_ramps_stay_convex_and_move_forward():
    weights = frame_state_weights(12, 6, 9)
    position = (weights * torch.arange(6)).sum(1)
    assert torch.allclose(weights.sum(1), torch.ones(12)) and (weights >= 0).all()
    assert (position[1:] >= position[:-1]).all() and (weights > 0).sum(1).max() <= 2


def test_embeddings_of_different_lengths_blend_per_frame():
    short, long = torch.randn(1, 77, 8), torch.randn(1, 154, 8)
    weights = frame_state_weights(6, 2, 2)
    cond = blend_embeddings([short, long], weights)
    assert cond.shape == (6, 154, 8)
    assert torch.equal(cond[0], short[0].repeat(2, 1)) and torch.equal(cond[5], long[0])
    assert torch.allclose(cond[2], 0.75 * short[0].repeat(2, 1) + 0.25 * long[0])
    pooled = blend_pooled([torch.ones(1, 3), torch.zeros(1, 3)], weights)
    assert pooled.shape == (6, 3) and torch.allclose(pooled[:, 0], weights[:, 0])
