"""Tier 2: the pack's model folders in ComfyUI's folder_paths, beside other packs that register the same ones."""
import copy

import pytest

pytestmark = pytest.mark.comfyui


@pytest.fixture
def folders(comfyui, monkeypatch, tmp_path):
    """(folder_paths, our model_folders) with ComfyUI's folder table restored after the test, no motion-module folder
    registered yet, an empty models/ folder of the test's own, and AnimateDiff-Evolved's own models folder holding
    one file of each kind."""
    import folder_paths

    from comfyui_i2v_adapter.nodes import model_folders

    monkeypatch.setattr(folder_paths, "folder_names_and_paths", copy.deepcopy(folder_paths.folder_names_and_paths))
    monkeypatch.setattr(folder_paths, "models_dir", str(tmp_path / "models"))
    monkeypatch.setattr(folder_paths, "filename_list_cache", {})
    folder_paths.folder_names_and_paths.pop(model_folders.MOTION_MODULES, None)
    for name in ("mm_sd_v15_v2.ckpt", "mm.safetensors", "mm.pt2", "mm.pkl", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    return folder_paths, model_folders


def register_like_animatediff_evolved(folder_paths, folder: str, own_models) -> None:
    """What AnimateDiff-Evolved does when it loads: its folders, then every PyTorch extension added in place."""
    folder_paths.add_model_folder_path(folder, str(own_models))
    for extension in folder_paths.supported_pt_extensions:
        folder_paths.folder_names_and_paths[folder][1].add(extension)


ALL_WEIGHTS = ["mm.pkl", "mm.pt2", "mm.safetensors", "mm_sd_v15_v2.ckpt"]


def test_loading_after_animatediff_evolved_keeps_its_extensions(folders, tmp_path):
    folder_paths, ours = folders
    register_like_animatediff_evolved(folder_paths, ours.MOTION_MODULES, tmp_path)
    ours.register_model_folder(ours.MOTION_MODULES, ours.WEIGHT_EXTENSIONS)
    extensions = folder_paths.folder_names_and_paths[ours.MOTION_MODULES][1]
    assert extensions >= folder_paths.supported_pt_extensions | ours.WEIGHT_EXTENSIONS
    assert str(tmp_path) in folder_paths.get_folder_paths(ours.MOTION_MODULES)
    assert folder_paths.get_filename_list(ours.MOTION_MODULES) == ALL_WEIGHTS


def test_loading_before_animatediff_evolved_keeps_both(folders, tmp_path):
    folder_paths, ours = folders
    ours.register_model_folder(ours.MOTION_MODULES, ours.WEIGHT_EXTENSIONS)
    register_like_animatediff_evolved(folder_paths, ours.MOTION_MODULES, tmp_path)
    extensions = folder_paths.folder_names_and_paths[ours.MOTION_MODULES][1]
    assert extensions >= folder_paths.supported_pt_extensions | ours.WEIGHT_EXTENSIONS
    assert folder_paths.get_filename_list(ours.MOTION_MODULES) == ALL_WEIGHTS


@pytest.mark.parametrize("known", [False, True], ids=["unknown to ComfyUI", "path only, from extra_model_paths.yaml"])
def test_a_folder_without_extensions_lists_only_weight_files(folders, tmp_path, known):
    """ComfyUI lists every file of a folder registered without extensions; ours list weight files only."""
    folder_paths, ours = folders
    if known:
        folder_paths.add_model_folder_path(ours.MOTION_MODULES, str(tmp_path))
    ours.register_model_folder(ours.MOTION_MODULES, ours.WEIGHT_EXTENSIONS)
    folder_paths.add_model_folder_path(ours.MOTION_MODULES, str(tmp_path))
    assert folder_paths.folder_names_and_paths[ours.MOTION_MODULES][1] == ours.WEIGHT_EXTENSIONS
    assert folder_paths.get_filename_list(ours.MOTION_MODULES) == ["mm.safetensors", "mm_sd_v15_v2.ckpt"]
