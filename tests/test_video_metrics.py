"""Tier 1: the video metrics in kernels/ on real pictures with known answers (a still video, a pan by a known shift,
a frame replaced by another picture), and torchvision RAFT files read and run at the sizes videos come in."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from skimage import data
from torchvision.models.optical_flow import raft_large, raft_small

from comfyui_i2v_adapter.kernels.optical_flow import raft_flow, read_raft
from comfyui_i2v_adapter.kernels.tensor_files import FileFormatError
from comfyui_i2v_adapter.kernels.video_metrics import (consistent_pixels, decay_per_frame, input_similarity,
                                                       measure_motion, similarities_to_image, warp_back)


def picture(name: str, size: int = 64) -> torch.Tensor:
    """A scikit-image picture as an IMAGE [1, size, size, 3] in 0..1 (grey ones repeated over RGB)."""
    pixels = torch.from_numpy(getattr(data, name)().astype(np.float32) / 255.0)
    pixels = pixels[..., None].expand(-1, -1, 3) if pixels.ndim == 2 else pixels[..., :3]
    return F.interpolate(pixels.movedim(-1, 0)[None], size=(size, size), mode="area").movedim(1, -1)


def pan(frames: int, shift: tuple[int, int], size: int = 96) -> torch.Tensor:
    """A camera pan over the astronaut: frame k is the window whose content has moved by k * (x, y) pixels."""
    scene = picture("astronaut", 256)[0]
    sx, sy = shift
    x0, y0 = 80, 80
    return torch.stack([scene[y0 - k * sy:y0 - k * sy + size, x0 - k * sx:x0 - k * sx + size] for k in range(frames)])


def translation_flow(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """A real flow model for videos that only translate: the integer shift found by phase correlation, at every
    pixel."""
    a, b = (images[..., :3].mean(-1).double() for images in (first, second))
    cross = torch.fft.fft2(b) * torch.fft.fft2(a).conj()
    peak = torch.fft.ifft2(cross / cross.abs().clamp_min(1e-12)).real.flatten(1).argmax(1)
    height, width = a.shape[-2:]
    dy, dx = peak // width, peak % width
    dy, dx = torch.where(dy > height // 2, dy - height, dy), torch.where(dx > width // 2, dx - width, dx)
    return torch.stack([dx, dy], 1).float()[..., None, None].expand(-1, -1, height, width)


def pooled_encoder(seed: int = 0, width: int = 32):
    """An image encoder: 8×8-pooled pixels through a fixed random projection (a real function, not CLIP)."""
    projection = torch.randn(3 * 8 * 8, width, generator=torch.Generator().manual_seed(seed))

    def encode(images: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(images.movedim(-1, 1), 8).flatten(1) @ projection
    return encode


def cosine(encode, a: torch.Tensor, b: torch.Tensor) -> float:
    return F.cosine_similarity(encode(a), encode(b)).item()


def test_a_video_of_the_input_image_is_fully_similar_and_does_not_decay():
    image = picture("astronaut")
    for seed in (0, 1):
        similarity = input_similarity(similarities_to_image(image.expand(5, -1, -1, -1), image, pooled_encoder(seed)))
        for value in (similarity.clip_temp, similarity.isim_first, similarity.isim_average):
            assert value == pytest.approx(1.0, abs=1e-6)
        assert similarity.isim_decay == pytest.approx(0.0, abs=1e-7)


def test_a_frame_replaced_by_another_picture_lowers_the_scores_by_its_similarity():
    image, other, encode = picture("astronaut"), picture("coffee"), pooled_encoder()
    frames = image.repeat(4, 1, 1, 1)
    frames[2] = other[0]
    s = cosine(encode, image, other)
    assert s < 0.99  # the pictures differ under this encoder
    similarity = input_similarity(similarities_to_image(frames, image, encode, chunk=3))
    assert similarity.clip_temp == pytest.approx((3 + s) / 4, abs=1e-6)
    assert similarity.isim_average == similarity.clip_temp
    assert similarity.isim_first == pytest.approx(1.0, abs=1e-6)
    # least squares over frames 0..3: centred index (-1.5, -0.5, 0.5, 1.5), slope 0.5 (s - 1) / 5
    assert similarity.isim_decay == pytest.approx(0.1 * (1 - s), abs=1e-6)


def test_replacing_frame_0_shows_in_isim_first():
    image, other, encode = picture("astronaut"), picture("chelsea"), pooled_encoder()
    frames = torch.cat([other, image, image])
    similarity = input_similarity(similarities_to_image(frames, image, encode))
    assert similarity.isim_first == pytest.approx(cosine(encode, image, other), abs=1e-6)
    assert similarity.isim_decay < 0  # the video comes closer to the image


def test_the_decay_is_the_per_frame_loss_of_a_linear_drift():
    assert decay_per_frame(1.0 - 0.004 * torch.arange(32.0)).item() == pytest.approx(0.004, rel=1e-6)


def test_frames_are_encoded_chunk_by_chunk_with_a_step_after_each():
    image, encode = picture("astronaut"), pooled_encoder()
    frames = torch.cat([picture(name) for name in ("astronaut", "coffee", "chelsea", "rocket", "camera")])
    batches, steps = [], []

    def counting(images):
        batches.append(images.shape[0])
        return encode(images)

    chunked = similarities_to_image(frames, image, counting, chunk=2, on_step=lambda: steps.append(1))
    assert batches == [1, 2, 2, 1] and len(steps) == 4
    assert torch.allclose(chunked, similarities_to_image(frames, image, encode, chunk=16), atol=1e-6)


def test_a_still_video_has_no_motion_and_no_warping_error():
    motion = measure_motion(picture("astronaut").expand(4, -1, -1, -1), translation_flow)
    assert motion.flow_score == 0.0 and motion.warping_error == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("shift", [(3, 4), (-2, 0), (0, 5)])
def test_a_pan_moves_by_its_shift_and_warps_back_exactly(shift):
    frames = pan(4, shift)
    forward = translation_flow(frames[:1], frames[1:2])
    assert forward[0, :, 0, 0].tolist() == list(shift)  # the flow model finds the pan
    motion = measure_motion(frames, translation_flow)
    assert motion.flow_score == pytest.approx(float(np.hypot(*shift)), abs=1e-5)
    assert motion.warping_error == pytest.approx(0.0, abs=1e-6)


def test_warping_error_is_the_squared_rgb_error_in_thousandths():
    """A pan whose flow model is told no motion: every pixel is compared with the one at the same place."""
    frames = pan(2, (2, 1))
    motion = measure_motion(frames, lambda a, b: torch.zeros(a.shape[0], 2, *a.shape[1:3]))
    expected = (frames[1] - frames[0]).square().sum(-1).mean().item() * 1000
    assert motion.flow_score == 0.0
    assert motion.warping_error == pytest.approx(expected, rel=1e-5)
    assert motion.warping_error > 5  # a 2-pixel pan unaccounted for is a large error


def test_pixels_that_leave_the_frame_or_disagree_are_left_out():
    forward = torch.zeros(1, 2, 8, 8)
    forward[:, 0] = 3.0
    image = torch.arange(64.0).reshape(1, 1, 8, 8)
    warped, inside = warp_back(image, forward)
    assert torch.equal(warped[0, 0, :, :5], image[0, 0, :, 3:])
    assert inside[0, :, :5].all() and not inside[0, :, 5:].any()  # x + 3 beyond column 7 leaves the frame
    backward = -forward
    assert torch.equal(consistent_pixels(forward, backward), inside)
    backward[:, :, 2, 4] = 2.0  # pixel (2, 1) lands on (2, 4), whose way back is elsewhere: occluded
    seen = consistent_pixels(forward, backward)
    assert not seen[0, 2, 1] and seen.sum() == inside.sum() - 1


def test_flow_needs_two_frames():
    with pytest.raises(ValueError, match="2 or more frames; the video has 1"):
        measure_motion(picture("astronaut"), translation_flow)


@pytest.fixture(scope="module")
def random_raft_small():
    torch.manual_seed(0)
    return raft_small(weights=None).eval()


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_a_raft_small_file_reads_back_as_raft_small(random_raft_small, tmp_path, suffix):
    path = tmp_path / f"raft_small{suffix}"
    state = random_raft_small.state_dict()
    if suffix == ".pth":
        torch.save(state, path)
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, path)
    raft = read_raft(path)
    assert raft.feature_encoder.convnormrelu[0].out_channels == 32  # raft_large's is 64
    assert all(torch.equal(raft.state_dict()[k], v) for k, v in state.items())


def test_raft_flow_is_torchvisions_raft_on_frames_in_minus_1_to_1(random_raft_small):
    frames = pan(2, (2, 1), size=128)
    ours = raft_flow(random_raft_small, torch.device("cpu"))(frames[:1], frames[1:])
    with torch.no_grad():
        theirs = random_raft_small(*(f.movedim(-1, 1) * 2 - 1 for f in (frames[:1], frames[1:])),
                                   num_flow_updates=20)[-1]
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_raft_large_is_told_from_its_tensors(tmp_path):
    torch.manual_seed(1)
    torch.save(raft_large(weights=None).state_dict(), tmp_path / "large.pth")
    raft = read_raft(tmp_path / "large.pth")
    assert raft.feature_encoder.convnormrelu[0].out_channels == 64  # raft_small's is 32


def test_a_file_that_is_not_raft_is_refused_saying_what_differs(random_raft_small, tmp_path):
    save_file({"down_blocks.0.weight": torch.zeros(2)}, tmp_path / "other.safetensors")
    with pytest.raises(FileFormatError, match=r"other.safetensors is not torchvision RAFT weights .* missing"):
        read_raft(tmp_path / "other.safetensors")
    state = dict(random_raft_small.state_dict())
    state["feature_encoder.convnormrelu.0.weight"] = torch.zeros(16, 3, 7, 7)
    torch.save(state, tmp_path / "reshaped.pth")
    with pytest.raises(FileFormatError, match=r"'feature_encoder.convnormrelu.0.weight' is \[16, 3, 7, 7\]"):
        read_raft(tmp_path / "reshaped.pth")


def test_raft_flow_pads_any_size_and_gives_the_frames_size_back(random_raft_small):
    """RAFT needs sides divisible by 8 and of 128 or more; a video of any size gets a flow of its own size."""
    frames = pan(2, (1, 1), size=90)[:, :70]
    flow = raft_flow(random_raft_small, torch.device("cpu"))(frames[:1], frames[1:])
    assert flow.shape == (1, 2, 70, 90) and flow.isfinite().all()
