"""The graph pieces the cases run, through the nodes' own execute() as ComfyUI would (imported once ComfyUI runs)."""
import nodes

from ...nodes.content_adapter_nodes import ApplyContentAdapter
from ...nodes.dqformer_nodes import ApplyDQFormer
from ...nodes.i2v_adapter_nodes import ApplyI2VAdapter
from ...nodes.temporal_layer_nodes import ApplyLookBackLayers, ApplyMotionModule
from ...nodes.temporal_layers_patch import AUTOSELECT
from ...nodes.video_latent import I2VVideoLatent
from .models import Models
from .sizes import Video

CFG = 7.5
V1_FRAMES = 24  # AnimateDiff v1's position encoding, which the official release runs


def video_latent(models: Models, video: Video) -> dict:
    """I2V Video Latent: the encoded reference as frame 0, held by a noise mask."""
    return I2VVideoLatent.execute(models.vae, models.image, video.frames, video.size, video.size).result[0]


def with_i2v_adapter(models: Models, model, family: str, latent: dict):
    return ApplyI2VAdapter.execute(model, models.i2v_adapter(family), latent, 1.0).result[0]


def with_content_adapter(models: Models, model):
    return ApplyContentAdapter.execute(model, models.content_adapter, models.clip_vision, models.image, 1.0).result[0]


def with_look_back(models: Models, model, latent: dict):
    return ApplyLookBackLayers.execute(model, models.look_back, latent).result[0]


def with_dqformer(models: Models, model, latent: dict):
    return ApplyDQFormer.execute(model, models.dqformer, models.states(latent["samples"].shape[0]), 1.0).result[0]


def animated(models: Models):
    """SD1.5 with AnimateDiff v1 as the official release runs it (its noise schedule and GroupNorm across frames,
    what autoselect gives for v1)."""
    return ApplyMotionModule.execute(models.unet("sd15"), models.motion_module(V1_FRAMES, mid_block=False), 1.0,
                                     AUTOSELECT, AUTOSELECT).result[0]


def recipe_base(models: Models, video_model=None):
    """The recipe's model up to its reference latent: `video_model` (default: animated()), then the
    Content-Adapter. The I2V-Adapter goes on last (the adapters stack in any order): it is the one node a new
    reference runs again."""
    return with_content_adapter(models, video_model or animated(models))


def sample(model, latent: dict, conditioning: tuple, steps: int, sampler: str = "euler", scheduler: str = "normal",
           denoise: float = 1.0) -> dict:
    """KSampler, as the stock node runs it."""
    positive, negative = conditioning
    return nodes.common_ksampler(model, 0, steps, CFG, sampler, scheduler, positive, negative, latent,
                                 denoise=denoise)[0]
