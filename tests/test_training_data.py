"""Training data: the three listing formats, PyAV decoding with stride and centre crop, and unusable videos skipped
and counted, never replaced."""
import json

import pytest
import torch

from comfyui_i2v_adapter.tests.support.videos import write_broken_videos, write_video_folder
from comfyui_i2v_adapter.training.video_clips import ClipShape, NoUsableVideos, Unusable, VideoClips, read_clip
from comfyui_i2v_adapter.training.video_sources import list_videos

SHAPE = ClipShape(frames=4, stride=2, width=64, height=48)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    return folder, write_video_folder(folder)


def test_a_folder_pairs_each_video_with_its_same_name_caption(videos):
    folder, written = videos
    entries, notes = list_videos(folder)
    assert {e.path.name: e.caption for e in entries} == written
    assert notes == []


def test_a_video_without_a_caption_trains_with_the_empty_caption_and_the_log_says_so(videos, tmp_path):
    folder, written = videos
    name = sorted(written)[0]
    (tmp_path / name).write_bytes((folder / name).read_bytes())
    entries, notes = list_videos(tmp_path)
    assert [(e.path.name, e.caption) for e in entries] == [(name, "")]
    assert notes == [f"1 of 1 videos have no same-name .txt caption and train with an empty caption (e.g. {name})"]


def test_csv_and_jsonl_listings(videos):
    folder, written = videos
    names = sorted(written)
    (folder / "pairs.csv").write_text("path,text\n" + "".join(f"{n},{written[n]}\n" for n in names))
    (folder / "list.jsonl").write_text("".join(json.dumps({"video": n, "caption": written[n]}) + "\n" for n in names))
    webvid = folder / "webvid.csv"
    webvid.write_text("videoid,name,page_dir\n" + "".join(f"{n[:-4]},{written[n]},x\n" for n in names))
    expected = [(folder / n, written[n]) for n in names]
    for listing, video_folder in (("pairs.csv", None), ("list.jsonl", None), ("webvid.csv", folder)):
        entries, _ = list_videos(folder / listing, video_folder)
        assert [(e.path, e.caption) for e in entries] == expected, listing
    with pytest.raises(ValueError, match="WebVid's videoid,name columns: pass --video-folder"):
        list_videos(webvid)


def test_listings_that_are_not_understood_say_what_is_expected(tmp_path):
    (tmp_path / "wrong.csv").write_text("file,caption\na.mp4,x\n")
    (tmp_path / "wrong.jsonl").write_text('{"video": "a.mp4"}\n[1, 2]\n')
    (tmp_path / "videos.txt").write_text("a.mp4\n")
    with pytest.raises(ValueError, match=r"columns \['caption', 'file'\]; a training CSV needs either videoid,name"):
        list_videos(tmp_path / "wrong.csv")
    with pytest.raises(ValueError, match='wrong.jsonl line 2 is not a JSON object with a "video" path'):
        list_videos(tmp_path / "wrong.jsonl")
    with pytest.raises(ValueError, match="must be a folder of videos, a .csv, a .jsonl or a Something-Something v2 "
                                         "label .json file; videos.txt is none of these"):
        list_videos(tmp_path / "videos.txt")
    with pytest.raises(FileNotFoundError, match="--data .*missing does not exist"):
        list_videos(tmp_path / "missing")


def _cover_and_crop(frame, width, height):
    """The expected clip frame, computed independently: area-scaled to cover, centre-cropped, in [-1, 1]."""
    image = torch.from_numpy(frame).permute(2, 0, 1).float()[None] / 127.5 - 1
    scale = max(width / image.shape[-1], height / image.shape[-2])
    size = (max(height, round(image.shape[-2] * scale)), max(width, round(image.shape[-1] * scale)))
    image = torch.nn.functional.interpolate(image, size=size, mode="area")[0]
    top, left = (size[0] - height) // 2, (size[1] - width) // 2
    return image[:, top:top + height, left:left + width]


def test_a_clip_takes_every_stride_th_frame_scaled_to_cover_and_centre_cropped(videos):
    import av
    folder, _ = videos
    path = folder / "bikes_0.mp4"
    with av.open(str(path)) as container:
        source = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    pixels, geometry = read_clip(path, 1, SHAPE)
    height, width = source[0].shape[:2]
    assert pixels.shape == (4, 3, 48, 64) and pixels.min() >= -1 and pixels.max() <= 1
    assert geometry.tolist() == [height, width, 0, (round(width * 48 / height) - 64) // 2, 48, 64]
    error = lambda indices: max((pixels[k] - _cover_and_crop(source[i], 64, 48)).abs().mean().item()
                                for k, i in enumerate(indices))
    assert error((1, 3, 5, 7)) < 0.02
    assert error((1, 2, 3, 4)) > 2 * error((1, 3, 5, 7))


def test_unusable_videos_are_skipped_and_counted_by_reason(videos, tmp_path):
    folder, written = videos
    for name in written:
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    broken = write_broken_videos(tmp_path)
    entries, _ = list_videos(tmp_path)
    clips = VideoClips(entries, SHAPE, str(tmp_path), progress=False)
    assert sorted(clips.describe(i) for i in range(len(clips))) == sorted(written)
    assert {kind: sorted(name for name, _ in items) for kind, items in clips.failures.items()} == {
        "unreadable": ["corrupt.mp4", "empty.webm"], "too short": ["short.mp4"]}
    assert set(broken.values()) == set(clips.failures)
    assert clips.report().startswith(f"4 usable videos in {tmp_path}; skipped 3: 2 unreadable (e.g. corrupt.mp4")


def test_a_folder_with_nothing_usable_says_how_many_were_tried_and_why(videos, tmp_path):
    folder, _ = videos
    write_broken_videos(tmp_path)
    entries, _ = list_videos(tmp_path)
    with pytest.raises(NoUsableVideos, match=r"tried 3: 2 unreadable .*1 too short \(e.g. short.mp4: 3 frames, 7 "
                                             r"needed\).*longest readable video has 3: lower --frames or --stride"):
        VideoClips(entries, SHAPE, str(tmp_path), progress=False)
    with pytest.raises(NoUsableVideos, match=f"no videos found in {tmp_path / 'none'}"):
        VideoClips([], SHAPE, str(tmp_path / "none"), progress=False)


def test_more_frames_than_the_videos_hold_at_the_stride_is_refused_with_the_numbers(videos):
    folder, _ = videos
    entries, _ = list_videos(folder)
    with pytest.raises(NoUsableVideos, match=r"tried 4: 4 too short .*--frames 8 at --stride 4 needs 29 frames but the "
                                             r"longest readable video has 12"):
        VideoClips(entries, ClipShape(8, 4, 64, 48), str(folder), progress=False)


def test_a_video_that_breaks_after_listing_is_reported_when_drawn(videos, tmp_path):
    folder, _ = videos
    path = tmp_path / "bikes_0.mp4"
    path.write_bytes((folder / "bikes_0.mp4").read_bytes())
    clips = VideoClips(list_videos(tmp_path)[0], SHAPE, str(tmp_path), progress=False)
    path.write_bytes(b"")
    with pytest.raises(Unusable, match="unreadable"):
        clips.clip(0, torch.Generator().manual_seed(0))


def test_instructions_come_from_a_column_a_key_or_something_something_labels(videos):
    """The DQFormer's instruction per video: a CSV "instruction" column, a JSONL "instruction" key, or SSv2's label
    file, where the label is caption and instruction."""
    folder, written = videos
    names = sorted(written)
    (folder / "instructed.csv").write_text("path,text,instruction\n" + "".join(f"{n},{written[n]},move {n}\n"
                                                                              for n in names))
    (folder / "instructed.jsonl").write_text("".join(
        json.dumps({"video": n, "caption": written[n], "instruction": f"move {n}"}) + "\n" for n in names))
    for listing in ("instructed.csv", "instructed.jsonl"):
        entries, _ = list_videos(folder / listing)
        assert [e.instruction for e in entries] == [f"move {n}" for n in names], listing
    labels = [{"id": "74225", "label": "Pushing a cup from left to right", "template": "Pushing [something]"}]
    (folder / "ssv2.json").write_text(json.dumps(labels))
    (entry,) = list_videos(folder / "ssv2.json", folder)[0]
    assert (entry.path, entry.caption, entry.instruction) == (folder / "74225.webm", labels[0]["label"],
                                                              labels[0]["label"])
    with pytest.raises(ValueError, match="ssv2.json is a Something-Something v2 label file: pass --video-folder"):
        list_videos(folder / "ssv2.json")
