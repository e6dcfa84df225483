"""The composition matrix's graphs: one small video graph (a random SD1.5 checkpoint, the reference picture, 2
frames at 96², one euler step), each Apply node of ours, and each node of ComfyUI core or of the packs users run
beside ours that patches a MODEL, its conditioning or drives the sampling, wired in either order.

96² keeps the UNet's middle block 2×2 (12 → 6 → 3 → 2 latent pixels; a 1×1 one makes PerturbedAttentionGuidance a
no-op, and SelfAttentionGuidance blurs the middle block's attention map) at a CPU-sized cost: SD1.5's weights
dominate a call at these sizes.
"""
from dataclasses import dataclass, field
from typing import Callable

from .api_graph import Graph, Output

SIZE, FRAMES, STEPS, CFG, SEED = 96, 2, 1, 3.0, 0
POSITIVE, NEGATIVE, MIDDLE = "an astronaut waving a flag", "blurry, static", "an astronaut"

# What the matrix server holds, by loader input (conftest's files and the matrix's own).
FILES = {"ckpt_name": "random_sd15.safetensors", "adapter_name": "random_i2v_sd15.safetensors",
         "motion_module_name": "random_mm_sd15_v1.ckpt", "look_back_name": "random_look_back_sd15.safetensors",
         "ipadapter_name": "random_ip_adapter_plus_sd15.safetensors",
         "clip_name": "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors", "model_folder": "tiny-qwen2-vl",
         "dqformer_name": "random_dqformer_sd15.safetensors", "lora_name": "random_lora_sd15.safetensors",
         "control_net_name": "random_controlnet_sd15.safetensors", "ade_motion": "random_mm_sd15_v2.safetensors",
         "image": "reference.png"}


@dataclass
class Video:
    """The graph being built and the sockets a node may rewire."""
    graph: Graph
    model: Output
    clip: Output
    vae: Output
    image: Output
    latent: Output
    frames: int
    steps: int
    conditioning: Callable = None  # (video, positive, negative) -> (positive, negative), set by a conditioning node
    sampler: Callable = None       # (video, positive, negative) -> sampled latent, set by a guider

    def encode(self, text: str) -> Output:
        return self.graph.out("CLIPTextEncode", clip=self.clip, text=text)


def video(frames: int = FRAMES, steps: int = STEPS) -> Video:
    graph = Graph()
    checkpoint = graph.add("CheckpointLoaderSimple", ckpt_name=FILES["ckpt_name"])
    image = graph.out("LoadImage", image=FILES["image"])
    latent = graph.out("I2V_VideoLatent", vae=[checkpoint, 2], image=image, frames=frames, width=SIZE, height=SIZE)
    return Video(graph, [checkpoint, 0], [checkpoint, 1], [checkpoint, 2], image, latent, frames, steps)


def sample(video: Video, name: str) -> tuple[str, str]:
    """The sampler (KSampler unless a guider took over) and SaveLatents of its output and of the video latent it
    started from; returns their ids."""
    positive, negative = video.encode(POSITIVE), video.encode(NEGATIVE)
    if video.conditioning:
        positive, negative = video.conditioning(video, positive, negative)
    if video.sampler:
        sampled = video.sampler(video, positive, negative)
    else:
        sampled = video.graph.out("KSampler", model=video.model, seed=SEED, steps=video.steps, cfg=CFG,
                                  sampler_name="euler", scheduler="normal", positive=positive, negative=negative,
                                  latent_image=video.latent, denoise=1.0)
    return video.graph.save_latent(sampled, name), video.graph.save_latent(video.latent, f"{name}-start")


# Ours: each applies one Apply node of the pack to video.model.
def _i2v(v: Video):
    adapter = v.graph.out("I2V_LoadAdapter", adapter_name=FILES["adapter_name"])
    v.model = v.graph.out("I2V_ApplyAdapter", model=v.model, i2v_adapter=adapter, reference=v.latent, strength=1.0)


def _content(v: Video):
    adapter = v.graph.out("I2V_LoadContentAdapter", ipadapter_name=FILES["ipadapter_name"],
                          attention_weights="from the IP-Adapter file")
    encoder = v.graph.out("CLIPVisionLoader", clip_name=FILES["clip_name"])
    v.model = v.graph.out("I2V_ApplyContentAdapter", model=v.model, content_adapter=adapter, clip_vision=encoder,
                          image=v.image, weight=1.0)


def _motion(v: Video):
    motion = v.graph.out("I2V_LoadMotionModule", motion_module_name=FILES["motion_module_name"])
    v.model = v.graph.out("I2V_ApplyMotionModule", model=v.model, motion_module=motion, scale=1.0,
                          beta_schedule="autoselect", groupnorm="autoselect")


def _look_back(v: Video):
    layers = v.graph.out("I2V_LoadLookBack", look_back_name=FILES["look_back_name"])
    v.model = v.graph.out("I2V_ApplyLookBack", model=v.model, look_back=layers, reference=v.latent)


def _dqformer(v: Video):
    vlm = v.graph.out("I2V_LoadVisionLanguageModel", model_folder=FILES["model_folder"], device="default",
                      dtype="auto", keep_loaded=True, trust_remote_code=False)
    states = v.graph.out("I2V_DecomposePromptIntoStates", 4, vlm=vlm, clip=v.clip, images=v.image,
                         instruction="The astronaut waves the flag.", states=2, latent=v.latent, blend_frames=0.0,
                         template="{instruction}", max_new_tokens=16, temperature=0.0, sampling_seed=0,
                         max_image_side=64)
    dqformer = v.graph.out("I2V_LoadDQFormer", dqformer_name=FILES["dqformer_name"])
    v.model = v.graph.out("I2V_ApplyDQFormer", model=v.model, dqformer=dqformer, state_features=states, weight=1.0)


OURS = {"I2V-Adapter": _i2v, "Content-Adapter": _content, "Motion Module": _motion, "Look-Back": _look_back,
        "DQFormer": _dqformer}
PINS_FRAME_0 = {"I2V-Adapter", "Look-Back"}


# Theirs: each patches video.model, its conditioning or its sampler.
def _model_patch(class_type: str, **settings) -> Callable:
    def apply(v: Video):
        v.model = v.graph.out(class_type, model=v.model, **settings)
    return apply


def _lora(v: Video):
    lora = v.graph.add("LoraLoader", model=v.model, clip=v.clip, lora_name=FILES["lora_name"], strength_model=1.0,
                       strength_clip=1.0)
    v.model, v.clip = [lora, 0], [lora, 1]


def _merge(v: Video):
    """Half of a LoRA'd copy of the checkpoint merged in: ModelMergeSimple's patches, no second checkpoint."""
    checkpoint = v.graph.add("CheckpointLoaderSimple", ckpt_name=FILES["ckpt_name"])
    other = v.graph.out("LoraLoaderModelOnly", model=[checkpoint, 0], lora_name=FILES["lora_name"], strength_model=1.0)
    v.model = v.graph.out("ModelMergeSimple", model1=v.model, model2=other, ratio=0.5)


def _controlnet(v: Video):
    def condition(v: Video, positive, negative):
        control = v.graph.out("ControlNetLoader", control_net_name=FILES["control_net_name"])
        frames = v.graph.out("RepeatImageBatch", image=v.image, amount=v.frames)
        applied = v.graph.add("ControlNetApplyAdvanced", positive=positive, negative=negative, control_net=control,
                              image=frames, strength=1.0, start_percent=0.0, end_percent=1.0, vae=v.vae)
        return [applied, 0], [applied, 1]
    v.conditioning = condition


def _guider(make_guider: Callable) -> Callable:
    def apply(v: Video):
        def sampler(v: Video, positive, negative):
            g = v.graph
            return g.out("SamplerCustomAdvanced", noise=g.out("RandomNoise", noise_seed=SEED),
                         guider=make_guider(v, positive, negative),
                         sampler=g.out("KSamplerSelect", sampler_name="euler"),
                         sigmas=g.out("BasicScheduler", model=v.model, scheduler="normal", steps=v.steps, denoise=1.0),
                         latent_image=v.latent)
        v.sampler = sampler
    return apply


_cfg = _guider(lambda v, p, n: v.graph.out("CFGGuider", model=v.model, positive=p, negative=n, cfg=CFG))
_dual_cfg = _guider(lambda v, p, n: v.graph.out("DualCFGGuider", model=v.model, cond1=p, cond2=v.encode(MIDDLE),
                                                negative=n, cfg_conds=CFG, cfg_cond2_negative=2.0, style="regular"))
_perp_neg = _guider(lambda v, p, n: v.graph.out("PerpNegGuider", model=v.model, positive=p, negative=n,
                                                empty_conditioning=v.encode(""), cfg=CFG, neg_scale=1.0))


def _ipadapter_plus(v: Video):
    ipadapter = v.graph.out("IPAdapterModelLoader", ipadapter_file=FILES["ipadapter_name"])
    encoder = v.graph.out("CLIPVisionLoader", clip_name=FILES["clip_name"])
    v.model = v.graph.out("IPAdapterAdvanced", model=v.model, ipadapter=ipadapter, image=v.image, weight=1.0,
                          weight_type="linear", combine_embeds="concat", start_at=0.0, end_at=1.0,
                          embeds_scaling="V only", clip_vision=encoder)


def _ade_gen1(v: Video):
    v.model = v.graph.out("ADE_AnimateDiffLoaderGen1", model=v.model, model_name=FILES["ade_motion"],
                          beta_schedule="autoselect")


def _ade_gen2(context_length: int | None = None) -> Callable:
    def apply(v: Video):
        g = v.graph
        motion = g.out("ADE_ApplyAnimateDiffModelSimple",
                       motion_model=g.out("ADE_LoadAnimateDiffModel", model_name=FILES["ade_motion"]))
        context = {} if context_length is None else {"context_options": g.out(
            "ADE_StandardStaticContextOptions", context_length=context_length, context_overlap=1)}
        v.model = g.out("ADE_UseEvolvedSampling", model=v.model, beta_schedule="autoselect", m_models=motion, **context)
    return apply


@dataclass
class Other:
    """A node of someone else's. `apply` rewires the video; `order`: whether it can stand before or after ours
    on the MODEL (a guider or a conditioning node cannot); `frames`, `steps`: what its graph needs; `pack`: the
    custom-node pack it comes from (None: ComfyUI core); `temporal`: its effect exists only across frames, so it
    is measured where ours make the frames interact."""
    apply: Callable
    order: bool = True
    frames: int = FRAMES
    steps: int = STEPS
    pack: str | None = None
    temporal: bool = False
    ours: tuple = tuple(OURS)


ADE, IPADAPTER = "ComfyUI-AnimateDiff-Evolved", "ComfyUI_IPAdapter_plus"
OTHERS = {
    "CFGGuider": Other(_cfg, order=False),
    "DualCFGGuider": Other(_dual_cfg, order=False),
    "PerpNegGuider": Other(_perp_neg, order=False),
    "PerturbedAttentionGuidance": Other(_model_patch("PerturbedAttentionGuidance", scale=3.0)),
    "SelfAttentionGuidance": Other(_model_patch("SelfAttentionGuidance", scale=0.5, blur_sigma=2.0)),
    "FreeU_V2": Other(_model_patch("FreeU_V2", b1=1.3, b2=1.4, s1=0.9, s2=0.2)),
    "RescaleCFG": Other(_model_patch("RescaleCFG", multiplier=0.7)),
    # Two steps: LCM's first sigma is the plain schedule's, so one euler step samples the same.
    "ModelSamplingDiscrete lcm": Other(_model_patch("ModelSamplingDiscrete", sampling="lcm", zsnr=False), steps=2),
    "ModelSamplingDiscrete v_prediction": Other(_model_patch("ModelSamplingDiscrete", sampling="v_prediction",
                                                             zsnr=False)),
    # bf16: the CPU has fp16 kernels 100× slower than fp32; the dtype patch is the same one.
    "ModelComputeDtype bf16": Other(_model_patch("ModelComputeDtype", dtype="bf16")),
    "LoraLoader": Other(_lora),
    "LoraLoaderModelOnly": Other(_model_patch("LoraLoaderModelOnly", lora_name=FILES["lora_name"],
                                              strength_model=1.0)),
    "ModelMergeSimple": Other(_merge),
    "ControlNetApplyAdvanced": Other(_controlnet, order=False),
    # ComfyUI 0.3.64's context windows need steps + 1 = frames with a noise-masked latent (docs/temporal-layers.md).
    "ContextWindowsManual": Other(_model_patch("ContextWindowsManual", context_length=2, context_overlap=1,
                                               context_schedule="standard_static", context_stride=1,
                                               closed_loop=False, fuse_method="pyramid", dim=0),
                                  frames=3, steps=2, temporal=True),
    "IPAdapterAdvanced": Other(_ipadapter_plus, pack=IPADAPTER),
    "ADE Gen1 AnimateDiff Loader": Other(_ade_gen1, pack=ADE, ours=("I2V-Adapter", "Content-Adapter", "Look-Back",
                                                                    "DQFormer")),
    "ADE Gen2 Use Evolved Sampling": Other(_ade_gen2(), pack=ADE, ours=("I2V-Adapter", "Content-Adapter",
                                                                        "Look-Back", "DQFormer")),
    "ADE context options": Other(_ade_gen2(context_length=2), frames=3, pack=ADE, ours=("I2V-Adapter", "Look-Back")),
}
# Ours whose frames depend on later frames: under context windows they sample otherwise. The look-back layers are
# causal: with the reference in front of each window, a window holding a frame's whole past gives what the video does.
INTERACTING = {"Motion Module"}


def cell_graph(ours: str | None, other: str | None, ours_first: bool = True, frames: int = FRAMES,
               steps: int = STEPS) -> tuple[dict, str, str]:
    """The API prompt of one cell (either may be None: the graph without it) and the ids of the SaveLatents of its
    sampled latent and of its start."""
    v = video(frames, steps)
    applied = [OURS[ours]] if ours else []
    if other:
        applied = applied + [OTHERS[other].apply] if ours_first else [OTHERS[other].apply] + applied
    for apply in applied:
        apply(v)
    name = f"{ours}-{other}-{'ours_first' if ours_first else 'theirs_first'}-{frames}-{steps}".replace(" ", "_")
    return (v.graph.nodes, *sample(v, name))
