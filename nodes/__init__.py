"""ComfyUI nodes of the pack (V3 schema)."""
from comfy_api.latest import ComfyExtension

from .colour_drift import AnchorLatentColour, ColourMatch
from .content_adapter_nodes import ApplyContentAdapter, LoadContentAdapter
from .dqformer_nodes import ApplyDQFormer, LoadDQFormer
from .frame_similarity_prior import FrameSimilarityPrior
from .i2v_adapter_nodes import ApplyI2VAdapter, LoadI2VAdapter
from .temporal_layer_nodes import ApplyLookBackLayers, ApplyMotionModule, LoadLookBackLayers, LoadMotionModule
from .state_decomposition_nodes import DecomposePromptIntoStates, LoadVisionLanguageModel
from .two_scale_guidance import TwoScaleGuidance
from .video_continuation import JoinClips, LastFrame
from .video_latent import I2VVideoLatent
from .video_metrics_nodes import LoadOpticalFlowModel, VideoMetrics


class I2VAdapterExtension(ComfyExtension):
    async def get_node_list(self):
        return [LoadI2VAdapter, ApplyI2VAdapter, I2VVideoLatent, LoadContentAdapter, ApplyContentAdapter,
                LoadMotionModule, ApplyMotionModule, LoadLookBackLayers, ApplyLookBackLayers,
                FrameSimilarityPrior, ColourMatch, AnchorLatentColour,
                LoadVisionLanguageModel, DecomposePromptIntoStates, LoadDQFormer, ApplyDQFormer, LastFrame, JoinClips,
                LoadOpticalFlowModel, VideoMetrics, TwoScaleGuidance]
