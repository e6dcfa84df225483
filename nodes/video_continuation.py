"""Long videos clip by clip (AID's long video prediction): the last frame of a clip is the next clip's reference,
its frame 0, which the I2V-Adapter reads and the Frame Similarity Prior starts from; the clips are joined with that
frame once. Each clip takes its own prompt or state, so an instruction can go on from where the last clip ended.

The reference goes through the VAE once per clip (decoded, then encoded as the next clip's frame 0), the way every
image enters these graphs; docs/long-video.md measures what that and the sampling add up to over clips."""
import torch
from comfy_api.latest import io

from .io_types import CATEGORY


class LastFrame(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="I2V_LastFrame",
            display_name="I2V Last Frame (next clip's reference)",
            category=CATEGORY,
            description="The last frame of a decoded clip, to start the next clip from: connect it to the next clip's "
                        "I2V Video Latent or Frame Similarity Prior as its image.",
            inputs=[io.Image.Input("images", tooltip="The clip so far, decoded (VAE Decode or I2V Join Clips).")],
            outputs=[io.Image.Output(tooltip="Its last frame, one image.")],
        )

    @classmethod
    def execute(cls, images):
        return io.NodeOutput(images[-1:])


class JoinClips(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="I2V_JoinClips",
            display_name="I2V Join Clips",
            category=CATEGORY,
            description="Appends a clip that was started from the video's last frame, without that frame twice: the "
                        "next clip's frame 0 (its reference) is left out.",
            inputs=[
                io.Image.Input("video", tooltip="The video so far (a clip, or an earlier I2V Join Clips)."),
                io.Image.Input("next_clip", tooltip="The clip made from I2V Last Frame of `video`, decoded; its "
                                                    "frame 0 is that last frame."),
            ],
            outputs=[io.Image.Output(tooltip="video, then next_clip's frames 1..")],
        )

    @classmethod
    def execute(cls, video, next_clip):
        if tuple(video.shape[1:]) != tuple(next_clip.shape[1:]):
            raise ValueError(f"I2V Join Clips: the video is {_size(video)} but next_clip is {_size(next_clip)}; make "
                             "every clip at the same width and height (the next clip's I2V Video Latent or Frame "
                             "Similarity Prior).")
        if next_clip.shape[0] < 2:
            raise ValueError("I2V Join Clips: next_clip holds a single frame, its reference, so there is nothing to "
                             "append; sample it with 2 or more frames.")
        return io.NodeOutput(torch.cat([video, next_clip[1:].to(video)]))


def _size(images: torch.Tensor) -> str:
    return f"{images.shape[2]}×{images.shape[1]} with {images.shape[3]} channels"
