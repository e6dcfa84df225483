"""The pack's loader nodes: one weights file picked from one model folder, read by a kernels reader."""
from typing import Callable

import folder_paths
from comfy_api.latest import io

from .model_folders import full_path, missing_file_message
from .unet_families import refuse_demo_family


class WeightsFileLoader(io.ComfyNode):
    """Subclasses set FOLDER (a folder_paths name), INPUT (the file input's name) and read (path -> weights), and
    build their schema with file_input()."""
    FOLDER: str
    INPUT: str
    read: Callable[[str], object]

    @classmethod
    def file_input(cls, tooltip: str) -> io.Combo.Input:
        return io.Combo.Input(cls.INPUT, options=folder_paths.get_filename_list(cls.FOLDER), tooltip=tooltip)

    @classmethod
    def validate_inputs(cls, **inputs):
        # Replaces ComfyUI's "value not in list" with a message naming the folders searched.
        return missing_file_message(cls.FOLDER, inputs[cls.INPUT]) or True

    @classmethod
    def execute(cls, **inputs):
        weights = cls.read(full_path(cls.FOLDER, inputs[cls.INPUT]))
        refuse_demo_family(weights.family, inputs[cls.INPUT])
        return io.NodeOutput(weights)
