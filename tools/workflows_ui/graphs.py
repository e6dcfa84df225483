"""The shipped example graphs (workflows/*.json) as data: nodes with the widget values to set in the UI, links,
columns inside the four groups, and the Note. build.py makes each one in ComfyUI's web UI from this and saves
it with the UI's own Export, so the widget values in the files are positioned by the frontend itself.

Layout: the Note on the left, then the groups Models, Conditioning, Sampling, Output from left to right; each
group is a list of columns, each column a list of node keys stacked top to bottom. Every link must run from a
column to a column further right (build.py refuses a graph where one does not).
"""
from dataclasses import dataclass, field

HF = "https://huggingface.co"


@dataclass(frozen=True)
class Model:
    """An entry of a loader's properties.models: the UI's missing-models dialog offers `url` for `name`."""
    name: str
    url: str
    directory: str

    def entry(self) -> dict:
        return {"name": self.name, "url": self.url, "directory": self.directory}


SD15 = Model("v1-5-pruned-emaonly-fp16.safetensors",
             f"{HF}/Comfy-Org/stable-diffusion-v1-5-archive/resolve/main/v1-5-pruned-emaonly-fp16.safetensors",
             "checkpoints")
I2V_MODULE = Model("i2v_module.pth", f"{HF}/space-xun/i2v_adapter/resolve/main/i2v_module.pth", "i2v_adapter")
BUNDLE = Model("animatediff_v15_v1_ipplus.pth",
               f"{HF}/space-xun/i2v_adapter/resolve/main/animatediff_v15_v1_ipplus.pth", "animatediff_models")
IP_ADAPTER_PLUS = Model("ip-adapter-plus_sd15.safetensors",
                        f"{HF}/h94/IP-Adapter/resolve/main/models/ip-adapter-plus_sd15.safetensors", "ipadapter")
CLIP_VISION_H = Model("CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors",
                      f"{HF}/h94/IP-Adapter/resolve/main/models/image_encoder/model.safetensors", "clip_vision")
MM_V2 = Model("mm_sd_v15_v2.ckpt", f"{HF}/guoyww/animatediff/resolve/main/mm_sd_v15_v2.ckpt", "animatediff_models")
MM_V3 = Model("v3_sd15_mm.ckpt", f"{HF}/guoyww/animatediff/resolve/main/v3_sd15_mm.ckpt", "animatediff_models")
CONTROLNET_CANNY = Model("control_v11p_sd15_canny_fp16.safetensors",
                         f"{HF}/comfyanonymous/ControlNet-v1-1_fp16_safetensors/resolve/main/"
                         "control_v11p_sd15_canny_fp16.safetensors", "controlnet")
# Not downloadable as one file: a model folder, and a file only the trainer writes.
VLM_FOLDER = "Qwen2.5-VL-3B-Instruct"
LOOK_BACK_FILE = "look_back_sd15.safetensors"
DQFORMER_FILE = "dqformer_sd15_qwen2.5-vl-3b.safetensors"
RAFT_FILE = "raft_large_C_T_SKHT_V2-ff5fadd5.pth"  # its address is torchvision's own (docs/metrics.md)
REFERENCE_IMAGE = "reference.png"
CONTROL_VIDEO = "control.mp4"

SAME_FILE = "from the IP-Adapter file"
POSITIVE = "an anime girl with long brown hair hugging a white cat"
OFFICIAL_NEGATIVE = "worst quality, low quality, normal quality, lowres, bad anatomy, bad hands, watermark, moles"
EXAMPLE_POSITIVE = "a woman smiling and turning her head, gentle breeze, high quality"
EXAMPLE_NEGATIVE = "blurry, distorted, low quality, watermark"
KSAMPLER_DDIM = {"seed": 42, "control_after_generate": "fixed", "steps": 25, "cfg": 7.5, "sampler_name": "ddim",
                 "scheduler": "ddim_uniform", "denoise": 1.0}
PRIOR_OFFICIAL = {"frames": 16, "width": 512, "height": 512, "steps": 25, "t0": 1.0, "p": 0.5, "blur_kernel": 9,
                  "blur_sigma": 18.0, "degrade_in": "latent", "mask_seed": 0}

# Colours the UI offers in a node's colour menu (LGraphCanvas.node_colors).
GREEN, RED, YELLOW = ("#232", "#353"), ("#322", "#533"), ("#432", "#653")


@dataclass
class Node:
    type: str
    widgets: dict = field(default_factory=dict)  # widget name -> value, set in the UI
    title: str | None = None
    models: tuple[Model, ...] = ()
    colour: tuple[str, str] | None = None
    size: tuple[int, int] | None = None  # at least this; never smaller than the UI's own size


@dataclass
class Graph:
    name: str          # the file name: the template browser's title
    title: str         # the Note's title and first line
    note: str          # Markdown: what the graph needs and what to change first
    nodes: dict[str, Node]
    links: list[tuple[str, str, str, str]]  # (from node, output name, to node, input name)
    groups: list[tuple[str, list[list[str]]]]


def files_list(*lines: str) -> str:
    return "\n".join(f"- {line}" for line in lines)


def file_line(model: Model, note: str = "") -> str:
    return f"`{model.name}`{note} → `models/{model.directory}/` ([download]({model.url}))"


SD15_LINE = file_line(SD15, " (or any SD1.5 checkpoint)")
I2V_LINE = file_line(I2V_MODULE, " (the official I2V-Adapter)")
BUNDLE_LINE = file_line(BUNDLE, " (5.2 GB; Load Motion Module reads its AnimateDiff v1 motion modules, which the "
                                "official I2V-Adapter was trained on)")
REFRESH = ("When the graph opens, ComfyUI's missing-models dialog offers the `.safetensors` files (your browser saves "
           "them in its download folder: move each into the folder above); it refuses `.pth` and `.ckpt` links, so get "
           "those from the links here. Press **R** to refresh the lists after adding files.")


def loader(type_: str, widgets: dict, *models: Model) -> Node:
    """Loaders wide enough to show their widgets' names and whole file names."""
    return Node(type_, widgets, models=models, size=(420, 0))


def checkpoint() -> Node:
    return loader("CheckpointLoaderSimple", {"ckpt_name": SD15.name}, SD15)


def i2v_loader() -> Node:
    return loader("I2V_LoadAdapter", {"adapter_name": I2V_MODULE.name}, I2V_MODULE)


def load_image() -> Node:
    return Node("LoadImage", {"image": REFERENCE_IMAGE}, size=(320, 360))


def prompt(text: str, negative: bool = False) -> Node:
    return Node("CLIPTextEncode", {"text": text}, title="Negative prompt" if negative else "Prompt",
                colour=RED if negative else GREEN, size=(400, 160))


def official_loaders() -> dict[str, Node]:
    """The official release's five files: SD1.5, the bundle (motion modules and IP weights), i2v_module.pth, h94's
    IP-Adapter Plus and CLIP ViT-H."""
    return {
        "checkpoint": checkpoint(),
        "motion_loader": bundle_motion_loader(),
        "i2v_loader": i2v_loader(),
        "content_loader": loader("I2V_LoadContentAdapter", {"ipadapter_name": IP_ADAPTER_PLUS.name,
                                                            "attention_weights": BUNDLE.name}, IP_ADAPTER_PLUS, BUNDLE),
        "clip_vision": loader("CLIPVisionLoader", {"clip_name": CLIP_VISION_H.name}, CLIP_VISION_H),
    }


def bundle_motion_loader() -> Node:
    """The official bundle's AnimateDiff v1 motion modules: what the official I2V-Adapter was trained on."""
    return loader("I2V_LoadMotionModule", {"motion_module_name": BUNDLE.name}, BUNDLE)


def apply_motion() -> Node:
    """Apply Motion Module as the module was trained: AnimateDiff's schedule, its GroupNorm."""
    return Node("I2V_ApplyMotionModule", {"scale": 1.0, "beta_schedule": "autoselect", "groupnorm": "autoselect"})


def apply_i2v() -> Node:
    return Node("I2V_ApplyAdapter", {"strength": 1.0})


def video_latent(side: int = 512) -> Node:
    return Node("I2V_VideoLatent", {"frames": 16, "width": side, "height": side})


def colour_match() -> Node:
    return Node("I2V_ColourMatch", size=(260, 0))


def create_video() -> Node:
    return Node("CreateVideo", {"fps": 8.0})


# The sampler's latent decoded with the checkpoint's VAE (node keys "sampler", "decode", "checkpoint").
DECODE_LINKS = [("sampler", "LATENT", "decode", "samples"), ("checkpoint", "VAE", "decode", "vae")]
# The checkpoint's model under the motion module of "motion_loader".
MOTION_LINKS = [("checkpoint", "MODEL", "apply_motion", "model"),
                ("motion_loader", "I2V_MOTION_MODULE", "apply_motion", "motion_module")]


def save_video(name: str) -> Node:
    return Node("SaveVideo", {"filename_prefix": f"video/{name}", "format": "auto", "codec": "auto"}, size=(320, 120))


OFFICIAL_FILES = files_list(
    SD15_LINE, file_line(BUNDLE, " (5.2 GB: SD1.5, AnimateDiff v1 and the IP weights; both Load Motion Module and "
                                 "Load Content-Adapter read it)"),
    I2V_LINE, file_line(IP_ADAPTER_PLUS),
    f"`model.safetensors` of h94's image encoder, **renamed** `{CLIP_VISION_H.name}` → `models/clip_vision/` "
    f"([download]({CLIP_VISION_H.url}))")

OFFICIAL = Graph(
    name="i2v_adapter_official",
    title="I2V-Adapter: the official recipe",
    note=f"""The official I2V-Adapter release's recipe: AnimateDiff v1 motion modules, the I2V-Adapter, the \
Content-Adapter (IP-Adapter Plus), the Frame Similarity Prior, DDIM 25 steps at CFG 7.5, and a colour match to \
frame 0. Your picture becomes frame 0 of a 16-frame 512×512 video that moves as the prompt says.

**Change first**

1. **Load Image**: your picture (resized and centre-cropped to 512×512).
2. **Prompt**: what the picture does (the text here is an example); keep the negative prompt, the official one.
3. Queue: the video is saved in `output/video/`.

A LoRA or a fine-tuned SD1.5 checkpoint (DreamBooth) works as in any SD1.5 graph: put **Load LoRA** between \
**Load Checkpoint** and **Apply Motion Module**, its CLIP into both prompts. A ControlNet per frame: \
`i2v_controlnet`.

**Files** (five, about 8 GB):

{OFFICIAL_FILES}

{REFRESH}""",
    nodes={
        **official_loaders(),
        "image": load_image(),
        "positive": prompt(POSITIVE),
        "negative": prompt(OFFICIAL_NEGATIVE, negative=True),
        "prior": Node("I2V_FrameSimilarityPrior", PRIOR_OFFICIAL),
        "apply_motion": apply_motion(),
        "apply_i2v": apply_i2v(),
        "apply_content": Node("I2V_ApplyContentAdapter", {"weight": 1.0}),
        "sampler": Node("KSampler", KSAMPLER_DDIM),
        "decode": Node("VAEDecode"),
        "colour": colour_match(),
        "video": create_video(),
        "save": save_video("i2v_adapter_official"),
    },
    links=[
        *MOTION_LINKS,
        ("checkpoint", "CLIP", "positive", "clip"), ("checkpoint", "CLIP", "negative", "clip"),
        ("checkpoint", "VAE", "prior", "vae"), ("image", "IMAGE", "prior", "image"),
        ("apply_motion", "MODEL", "apply_i2v", "model"), ("i2v_loader", "I2V_ADAPTER", "apply_i2v", "i2v_adapter"),
        ("prior", "latent", "apply_i2v", "reference"),
        ("apply_i2v", "MODEL", "apply_content", "model"),
        ("content_loader", "I2V_CONTENT_ADAPTER", "apply_content", "content_adapter"),
        ("clip_vision", "CLIP_VISION", "apply_content", "clip_vision"), ("image", "IMAGE", "apply_content", "image"),
        ("apply_content", "MODEL", "sampler", "model"), ("positive", "CONDITIONING", "sampler", "positive"),
        ("negative", "CONDITIONING", "sampler", "negative"), ("prior", "latent", "sampler", "latent_image"),
        ("prior", "steps", "sampler", "steps"), ("prior", "denoise", "sampler", "denoise"),
        *DECODE_LINKS,
        ("decode", "IMAGE", "colour", "images"), ("colour", "IMAGE", "video", "images"),
        ("video", "VIDEO", "save", "video"),
    ],
    groups=[
        ("Models", [["checkpoint", "motion_loader", "i2v_loader", "content_loader", "clip_vision"]]),
        ("Conditioning", [["image", "positive", "negative"], ["prior"]]),
        ("Sampling", [["apply_motion"], ["apply_i2v"], ["apply_content"], ["sampler"]]),
        ("Output", [["decode"], ["colour"], ["video"], ["save"]]),
    ],
)

BASIC = Graph(
    name="i2v_adapter_basic",
    title="I2V-Adapter on AnimateDiff v1 (the smallest graph)",
    note=f"""The I2V-Adapter on an SD1.5 checkpoint with the AnimateDiff v1 motion modules it was trained on: \
every frame attends to the first frame, your picture, which stays fixed as frame 0, and the motion modules tie \
the frames together. Without the Content-Adapter and the Frame Similarity Prior of the full recipe \
(`i2v_adapter_official`).

**Change first**

1. **Load Image**: your picture (resized and centre-cropped to 512×512).
2. **Prompt**: what the picture does.
3. Queue: the video is saved in `output/video/`.

**Files:**

{files_list(SD15_LINE, BUNDLE_LINE, I2V_LINE)}

{REFRESH}""",
    nodes={
        "checkpoint": checkpoint(),
        "motion_loader": bundle_motion_loader(),
        "i2v_loader": i2v_loader(),
        "image": load_image(),
        "positive": prompt(EXAMPLE_POSITIVE),
        "negative": prompt(EXAMPLE_NEGATIVE, negative=True),
        "latent": video_latent(),
        "apply_motion": apply_motion(),
        "apply_i2v": apply_i2v(),
        "sampler": Node("KSampler", KSAMPLER_DDIM),
        "decode": Node("VAEDecode"),
        "video": create_video(),
        "save": save_video("i2v_adapter"),
    },
    links=[
        *MOTION_LINKS,
        ("checkpoint", "CLIP", "positive", "clip"), ("checkpoint", "CLIP", "negative", "clip"),
        ("checkpoint", "VAE", "latent", "vae"), ("image", "IMAGE", "latent", "image"),
        ("apply_motion", "MODEL", "apply_i2v", "model"), ("i2v_loader", "I2V_ADAPTER", "apply_i2v", "i2v_adapter"),
        ("latent", "LATENT", "apply_i2v", "reference"),
        ("apply_i2v", "MODEL", "sampler", "model"), ("positive", "CONDITIONING", "sampler", "positive"),
        ("negative", "CONDITIONING", "sampler", "negative"), ("latent", "LATENT", "sampler", "latent_image"),
        *DECODE_LINKS,
        ("decode", "IMAGE", "video", "images"), ("video", "VIDEO", "save", "video"),
    ],
    groups=[
        ("Models", [["checkpoint", "motion_loader", "i2v_loader"]]),
        ("Conditioning", [["image", "positive", "negative"], ["latent"]]),
        ("Sampling", [["apply_motion"], ["apply_i2v"], ["sampler"]]),
        ("Output", [["decode"], ["video"], ["save"]]),
    ],
)

ANIMATEDIFF = Graph(
    name="i2v_animatediff",
    title="I2V-Adapter with another AnimateDiff motion module (v3)",
    note=f"""The I2V-Adapter on an AnimateDiff motion module other than the official v1 one: here v3 \
(`v3_sd15_mm.ckpt`; v2's `mm_sd_v15_v2.ckpt` works too). `beta_schedule` and `groupnorm` on **autoselect** \
set what the module was trained with (AnimateDiff's schedule; per-frame GroupNorm for v2/v3). The official \
I2V-Adapter was trained on v1: for its own recipe start from `i2v_adapter_official`.

**Change first**

1. **Load Image**: your picture (resized and centre-cropped to 512×512).
2. **Prompt**: what the picture does.
3. **Load Motion Module**: the module you have.

**Files:**

{files_list(SD15_LINE, file_line(MM_V3, " (AnimateDiff v3)"), file_line(MM_V2, " (or AnimateDiff v2)"), I2V_LINE)}

{REFRESH}""",
    nodes={
        "checkpoint": checkpoint(),
        "motion_loader": loader("I2V_LoadMotionModule", {"motion_module_name": MM_V3.name}, MM_V3, MM_V2),
        "i2v_loader": i2v_loader(),
        "image": load_image(),
        "positive": prompt(EXAMPLE_POSITIVE),
        "negative": prompt(EXAMPLE_NEGATIVE, negative=True),
        "latent": video_latent(),
        "apply_motion": apply_motion(),
        "apply_i2v": apply_i2v(),
        "sampler": Node("KSampler", KSAMPLER_DDIM),
        "decode": Node("VAEDecode"),
        "video": create_video(),
        "save": save_video("i2v_animatediff"),
    },
    links=[
        *MOTION_LINKS,
        ("checkpoint", "CLIP", "positive", "clip"), ("checkpoint", "CLIP", "negative", "clip"),
        ("checkpoint", "VAE", "latent", "vae"), ("image", "IMAGE", "latent", "image"),
        ("apply_motion", "MODEL", "apply_i2v", "model"), ("i2v_loader", "I2V_ADAPTER", "apply_i2v", "i2v_adapter"),
        ("latent", "LATENT", "apply_i2v", "reference"),
        ("apply_i2v", "MODEL", "sampler", "model"), ("positive", "CONDITIONING", "sampler", "positive"),
        ("negative", "CONDITIONING", "sampler", "negative"), ("latent", "LATENT", "sampler", "latent_image"),
        *DECODE_LINKS,
        ("decode", "IMAGE", "video", "images"), ("video", "VIDEO", "save", "video"),
    ],
    groups=[
        ("Models", [["checkpoint", "motion_loader", "i2v_loader"]]),
        ("Conditioning", [["image", "positive", "negative"], ["latent"]]),
        ("Sampling", [["apply_motion"], ["apply_i2v"], ["sampler"]]),
        ("Output", [["decode"], ["video"], ["save"]]),
    ],
)

PRIOR = Graph(
    name="i2v_frame_similarity_prior",
    title="Frame Similarity Prior and colour drift",
    note=f"""The Frame Similarity Prior's knobs with the I2V-Adapter: later frames start from a masked, blurred \
copy of your picture. **t0** below 1 starts later in the schedule (a steadier video in fewer steps: the prior \
feeds `steps` and `denoise` to the KSampler); **p** is the share of sharp pixels; **blur_kernel**/**blur_sigma** \
the blur. Against colour drift: **I2V Anchor Latent Colour** while sampling (strength 0 = off, as here) and \
**I2V Colour Match to Frame 0** after decoding.

**Change first**

1. **Load Image**: your picture (resized and centre-cropped to 512×512).
2. **Prompt**: what the picture does.
3. **t0**, **p**, and the anchor's **strength**, one at a time.

**Files:**

{files_list(SD15_LINE, BUNDLE_LINE, I2V_LINE)}

{REFRESH}""",
    nodes={
        "checkpoint": checkpoint(),
        "motion_loader": bundle_motion_loader(),
        "i2v_loader": i2v_loader(),
        "image": load_image(),
        "positive": prompt(EXAMPLE_POSITIVE),
        "negative": prompt(EXAMPLE_NEGATIVE, negative=True),
        "prior": Node("I2V_FrameSimilarityPrior", PRIOR_OFFICIAL),
        "apply_motion": apply_motion(),
        "apply_i2v": apply_i2v(),
        "anchor": Node("I2V_AnchorLatentColour", {"strength": 0.0}),
        "sampler": Node("KSampler", KSAMPLER_DDIM),
        "decode": Node("VAEDecode"),
        "colour": colour_match(),
        "video": create_video(),
        "save": save_video("i2v_frame_similarity_prior"),
    },
    links=[
        *MOTION_LINKS,
        ("checkpoint", "CLIP", "positive", "clip"), ("checkpoint", "CLIP", "negative", "clip"),
        ("checkpoint", "VAE", "prior", "vae"), ("image", "IMAGE", "prior", "image"),
        ("apply_motion", "MODEL", "apply_i2v", "model"), ("i2v_loader", "I2V_ADAPTER", "apply_i2v", "i2v_adapter"),
        ("prior", "latent", "apply_i2v", "reference"),
        ("apply_i2v", "MODEL", "anchor", "model"), ("prior", "latent", "anchor", "reference"),
        ("anchor", "MODEL", "sampler", "model"), ("positive", "CONDITIONING", "sampler", "positive"),
        ("negative", "CONDITIONING", "sampler", "negative"), ("prior", "latent", "sampler", "latent_image"),
        ("prior", "steps", "sampler", "steps"), ("prior", "denoise", "sampler", "denoise"),
        *DECODE_LINKS,
        ("decode", "IMAGE", "colour", "images"), ("colour", "IMAGE", "video", "images"),
        ("video", "VIDEO", "save", "video"),
    ],
    groups=[
        ("Models", [["checkpoint", "motion_loader", "i2v_loader"]]),
        ("Conditioning", [["image", "positive", "negative"], ["prior"]]),
        ("Sampling", [["apply_motion"], ["apply_i2v"], ["anchor"], ["sampler"]]),
        ("Output", [["decode"], ["colour"], ["video"], ["save"]]),
    ],
)

STATES = Graph(
    name="i2v_instruction_states",
    title="Instruction → states (a vision-language model)",
    note=f"""AID's prompt decomposition: a local vision-language model looks at your picture and splits the \
instruction into **states** (four here), one sentence each; each stretch of frames is conditioned on its state \
(cross-faded over `blend_frames`). The two previews show the states and a prompt schedule for FizzNodes / \
AnimateDiff-Evolved.

**Change first**

1. **Load Image**: your picture (resized and centre-cropped to 512×512).
2. **instruction**: what happens in the video.
3. **Load Vision-Language Model**: the folder you have; `device` cpu leaves the GPU to the sampler.

**Files:**

{files_list(SD15_LINE, BUNDLE_LINE, I2V_LINE,
            f"a vision-language model **folder**, e.g. `{VLM_FOLDER}` (every file of "
            f"[Qwen/{VLM_FOLDER}]({HF}/Qwen/{VLM_FOLDER}), about 7.5 GB) → `models/LLM/{VLM_FOLDER}/`. "
            "A folder is no single download, so the missing-models dialog cannot offer it; Qwen3-VL and SmolVLM "
            "folders work too")}

{REFRESH}""",
    nodes={
        "checkpoint": checkpoint(),
        "motion_loader": bundle_motion_loader(),
        "i2v_loader": i2v_loader(),
        "vlm_loader": loader("I2V_LoadVisionLanguageModel", {"model_folder": VLM_FOLDER, "device": "default",
                                                             "dtype": "auto", "keep_loaded": False,
                                                             "trust_remote_code": False}),
        "image": load_image(),
        "negative": prompt(EXAMPLE_NEGATIVE, negative=True),
        "latent": video_latent(),
        "decompose": Node("I2V_DecomposePromptIntoStates", {
            "instruction": "the astronaut raises the flag and waves", "states": 4, "blend_frames": 2.0,
            "max_new_tokens": 256, "temperature": 0.0, "sampling_seed": 0, "max_image_side": 768},
            size=(420, 560)),
        "apply_motion": apply_motion(),
        "apply_i2v": apply_i2v(),
        "sampler": Node("KSampler", KSAMPLER_DDIM),
        "decode": Node("VAEDecode"),
        "preview_states": Node("PreviewAny", title="States", size=(420, 220)),
        "preview_schedule": Node("PreviewAny", title="Prompt schedule", size=(420, 220)),
        "video": create_video(),
        "save": save_video("i2v_instruction_states"),
    },
    links=[
        *MOTION_LINKS,
        ("checkpoint", "CLIP", "negative", "clip"),
        ("checkpoint", "VAE", "latent", "vae"), ("image", "IMAGE", "latent", "image"),
        ("vlm_loader", "vlm", "decompose", "vlm"), ("checkpoint", "CLIP", "decompose", "clip"),
        ("image", "IMAGE", "decompose", "images"), ("latent", "LATENT", "decompose", "latent"),
        ("apply_motion", "MODEL", "apply_i2v", "model"), ("i2v_loader", "I2V_ADAPTER", "apply_i2v", "i2v_adapter"),
        ("latent", "LATENT", "apply_i2v", "reference"),
        ("apply_i2v", "MODEL", "sampler", "model"), ("decompose", "positive", "sampler", "positive"),
        ("negative", "CONDITIONING", "sampler", "negative"), ("latent", "LATENT", "sampler", "latent_image"),
        *DECODE_LINKS,
        ("decompose", "states", "preview_states", "source"), ("decompose", "schedule", "preview_schedule", "source"),
        ("decode", "IMAGE", "video", "images"), ("video", "VIDEO", "save", "video"),
    ],
    groups=[
        ("Models", [["checkpoint", "motion_loader", "i2v_loader", "vlm_loader"]]),
        ("Conditioning", [["image", "negative"], ["latent"], ["decompose"]]),
        ("Sampling", [["apply_motion"], ["apply_i2v"], ["sampler"]]),
        ("Output", [["decode", "preview_states", "preview_schedule"], ["video"], ["save"]]),
    ],
)

DQFORMER = Graph(
    name="i2v_dqformer",
    title="Instruction → DQFormer tokens (train it first)",
    note=f"""AID's instruction path: the vision-language model splits the instruction into states as in \
`i2v_instruction_states`, and a **DQFormer** reads the model's hidden states (the picture with the instruction, and \
each state's sentence) and adds 77 condition tokens per frame beside CLIP's in every cross-attention. `weight` 0 \
turns it off.

**No DQFormer is published**: it exists only from this pack's trainer, for the vision-language model it was \
trained on: `python training/train_adapter.py --train dqformer --vlm models/LLM/{VLM_FOLDER} --base <your SD1.5 \
checkpoint> --data <videos with an instruction column> --out models/dqformer/{DQFORMER_FILE}` (see \
`docs/prompt-decomposition.md`).

**Change first**

1. **Load DQFormer**: the file you trained; **Load Vision-Language Model**: the folder it was trained on.
2. **Load Image**: your picture; **instruction**: what happens in the video.

**Files:**

{files_list(SD15_LINE, BUNDLE_LINE, I2V_LINE,
            f"a vision-language model **folder**, e.g. `{VLM_FOLDER}` → `models/LLM/{VLM_FOLDER}/`",
            f"`{DQFORMER_FILE}` (your trained DQFormer) → `models/dqformer/`")}

{REFRESH}""",
    nodes={**{k: v for k, v in STATES.nodes.items() if not k.startswith("preview")},
           "dqformer_loader": loader("I2V_LoadDQFormer", {"dqformer_name": DQFORMER_FILE}),
           "apply_dqformer": Node("I2V_ApplyDQFormer", {"weight": 1.0}),
           "save": save_video("i2v_dqformer")},
    links=[link for link in STATES.links if link[:2] != ("apply_i2v", "MODEL") and link[2] != "preview_states"
           and link[2] != "preview_schedule"] + [
        ("apply_i2v", "MODEL", "apply_dqformer", "model"),
        ("dqformer_loader", "I2V_DQFORMER", "apply_dqformer", "dqformer"),
        ("decompose", "state_features", "apply_dqformer", "state_features"),
        ("apply_dqformer", "MODEL", "sampler", "model"),
    ],
    groups=[
        ("Models", [["checkpoint", "motion_loader", "i2v_loader", "vlm_loader", "dqformer_loader"]]),
        ("Conditioning", [["image", "negative"], ["latent"], ["decompose"]]),
        ("Sampling", [["apply_motion"], ["apply_i2v"], ["apply_dqformer"], ["sampler"]]),
        ("Output", [["decode"], ["video"], ["save"]]),
    ],
)

CLIP_PROMPTS = (POSITIVE, "the girl looks up and smiles, the white cat in her arms",
                "the white cat jumps out of her arms, the girl laughs")


def long_video() -> Graph:
    """The official recipe three times, each clip started from the last frame of the one before."""
    nodes = {
        **official_loaders(),
        "image": load_image(),
        "negative": prompt(OFFICIAL_NEGATIVE, negative=True),
        "apply_motion": apply_motion(),
        "video": create_video(),
        "save": save_video("i2v_long_video"),
    }
    links = [
        *MOTION_LINKS,
        ("checkpoint", "CLIP", "negative", "clip"),
        ("video", "VIDEO", "save", "video"),
    ]
    groups = [("Models", [["checkpoint", "motion_loader", "i2v_loader", "content_loader", "clip_vision"],
                          ["image", "negative", "apply_motion"]])]
    for k, text in enumerate(CLIP_PROMPTS, 1):
        n = lambda name: f"{name}_{k}"
        reference = ("image", "IMAGE") if k == 1 else (f"last_{k - 1}", "IMAGE")
        nodes |= {n("prompt"): Node("CLIPTextEncode", {"text": text}, title=f"Prompt, clip {k}", colour=GREEN,
                                   size=(400, 160)),
                  n("prior"): Node("I2V_FrameSimilarityPrior", PRIOR_OFFICIAL),
                  n("apply_i2v"): apply_i2v(),
                  n("apply_content"): Node("I2V_ApplyContentAdapter", {"weight": 1.0}),
                  n("sampler"): Node("KSampler", KSAMPLER_DDIM),
                  n("decode"): Node("VAEDecode"),
                  n("colour"): colour_match()}
        links += [
            ("checkpoint", "CLIP", n("prompt"), "clip"), ("checkpoint", "VAE", n("prior"), "vae"),
            (*reference, n("prior"), "image"),
            ("apply_motion", "MODEL", n("apply_i2v"), "model"),
            ("i2v_loader", "I2V_ADAPTER", n("apply_i2v"), "i2v_adapter"),
            (n("prior"), "latent", n("apply_i2v"), "reference"),
            (n("apply_i2v"), "MODEL", n("apply_content"), "model"),
            ("content_loader", "I2V_CONTENT_ADAPTER", n("apply_content"), "content_adapter"),
            ("clip_vision", "CLIP_VISION", n("apply_content"), "clip_vision"),
            (*reference, n("apply_content"), "image"),
            (n("apply_content"), "MODEL", n("sampler"), "model"),
            (n("prompt"), "CONDITIONING", n("sampler"), "positive"),
            ("negative", "CONDITIONING", n("sampler"), "negative"),
            (n("prior"), "latent", n("sampler"), "latent_image"),
            (n("prior"), "steps", n("sampler"), "steps"), (n("prior"), "denoise", n("sampler"), "denoise"),
            (n("sampler"), "LATENT", n("decode"), "samples"), ("checkpoint", "VAE", n("decode"), "vae"),
            (n("decode"), "IMAGE", n("colour"), "images"), ("image", "IMAGE", n("colour"), "colour_reference"),
        ]
        last_column = []
        if k < len(CLIP_PROMPTS):
            nodes[n("last")] = Node("I2V_LastFrame")
            links.append((n("colour"), "IMAGE", n("last"), "images"))
            last_column.append(n("last"))
        if k > 1:
            nodes[n("join")] = Node("I2V_JoinClips")
            before = "colour_1" if k == 2 else f"join_{k - 1}"
            links += [(before, "IMAGE", n("join"), "video"), (n("colour"), "IMAGE", n("join"), "next_clip")]
            last_column.append(n("join"))
        groups.append((f"Clip {k}", [[n("prompt"), n("prior")], [n("apply_i2v")], [n("apply_content")], [n("sampler")],
                                     [n("decode")], [n("colour")], last_column]))
    links.append((f"join_{len(CLIP_PROMPTS)}", "IMAGE", "video", "images"))
    groups.append(("Output", [["video"], ["save"]]))
    return Graph(
        name="i2v_long_video",
        title="A long video, clip by clip",
        note=f"""Three clips of the official recipe in one queue: each clip starts from the **last frame of the one \
before** (its reference: the I2V-Adapter reads it, the Frame Similarity Prior starts from it, the Content-Adapter \
sees it), goes on as its own prompt says, and I2V Join Clips appends it without that frame twice: 16 + 15 + 15 = \
46 frames. Every clip's colours are matched to your picture (I2V Colour Match's `colour_reference`), so colour \
picked up through the VAE at each clip's start is not handed on.

**Change first**

1. **Load Image**: your picture (resized and centre-cropped to 512×512).
2. **Prompt, clip 1 / 2 / 3**: what happens in each clip, in order.
3. For a fourth clip, copy a Clip group: its prior's image from the last clip's **I2V Last Frame**, its Join \
Clips' video from the last Join Clips.

Drift over clips (colour, detail lost through the VAE once per clip) and what holds it: `docs/long-video.md`.

**Files** (five, about 8 GB, as in `i2v_adapter_official`):

{OFFICIAL_FILES}

{REFRESH}""",
        nodes=nodes, links=links, groups=groups)


LONG_VIDEO = long_video()

LOOK_BACK = Graph(
    name="i2v_look_back",
    title="Look-back temporal layers (train them first)",
    note=f"""Look-back layers instead of motion modules (implicit semi-auto-regressive I2V): each frame is \
updated from the frames before it, so your picture, frame 0, reaches the last frame. 256×256 here.

**No look-back layers are published**: they exist only from this pack's trainer, \
`python training/train_adapter.py --train look_back --base <your SD1.5 checkpoint> --data <your videos> \
--out models/look_back/{LOOK_BACK_FILE}` (see `docs/training.md`). Files the trainer's built-in demonstration \
writes are for its tiny model and are refused here.

**Change first**

1. **Load Look-Back Layers**: the file you trained.
2. **Load Image**: your picture; **Prompt**: what it does.

**Files:**

{files_list(SD15_LINE, f"`{LOOK_BACK_FILE}` (your trained layers) → `models/look_back/`")}

{REFRESH}""",
    nodes={
        "checkpoint": checkpoint(),
        "look_back_loader": loader("I2V_LoadLookBack", {"look_back_name": LOOK_BACK_FILE}),
        "image": load_image(),
        "positive": prompt(EXAMPLE_POSITIVE),
        "negative": prompt(EXAMPLE_NEGATIVE, negative=True),
        "latent": video_latent(256),
        "apply_look_back": Node("I2V_ApplyLookBack"),
        "sampler": Node("KSampler", KSAMPLER_DDIM),
        "decode": Node("VAEDecode"),
        "video": create_video(),
        "save": save_video("i2v_look_back"),
    },
    links=[
        ("checkpoint", "CLIP", "positive", "clip"), ("checkpoint", "CLIP", "negative", "clip"),
        ("checkpoint", "VAE", "latent", "vae"), ("image", "IMAGE", "latent", "image"),
        ("checkpoint", "MODEL", "apply_look_back", "model"),
        ("look_back_loader", "I2V_LOOK_BACK", "apply_look_back", "look_back"),
        ("latent", "LATENT", "apply_look_back", "reference"),
        ("apply_look_back", "MODEL", "sampler", "model"), ("positive", "CONDITIONING", "sampler", "positive"),
        ("negative", "CONDITIONING", "sampler", "negative"), ("latent", "LATENT", "sampler", "latent_image"),
        *DECODE_LINKS,
        ("decode", "IMAGE", "video", "images"), ("video", "VIDEO", "save", "video"),
    ],
    groups=[
        ("Models", [["checkpoint", "look_back_loader"]]),
        ("Conditioning", [["image", "positive", "negative"], ["latent"]]),
        ("Sampling", [["apply_look_back"], ["sampler"]]),
        ("Output", [["decode"], ["video"], ["save"]]),
    ],
)

def controlnet() -> Graph:
    """The official recipe with a Canny ControlNet per frame: frame 0's edges from the picture, the others' from a
    control video."""
    nodes = {**OFFICIAL.nodes,
             "control_loader": loader("ControlNetLoader", {"control_net_name": CONTROLNET_CANNY.name},
                                      CONTROLNET_CANNY),
             "control_video": Node("LoadVideo", {"file": CONTROL_VIDEO}, size=(440, 420)),
             "video_frames": Node("GetVideoComponents"),
             "picture": Node("ImageScale", {"upscale_method": "bilinear", "width": 512, "height": 512,
                                            "crop": "center"}),
             "later_frames": Node("ImageFromBatch", {"batch_index": 1, "length": 15}),
             "control_frames": Node("ImageBatch"),
             "edges": Node("Canny", {"low_threshold": 0.4, "high_threshold": 0.8}),
             "apply_control": Node("ControlNetApplyAdvanced", {"strength": 0.8, "start_percent": 0.0,
                                                               "end_percent": 1.0}),
             "save": save_video("i2v_controlnet")}
    into_sampler = {("positive", "CONDITIONING", "sampler", "positive"), ("negative", "CONDITIONING", "sampler",
                                                                          "negative")}
    links = [link for link in OFFICIAL.links if link not in into_sampler] + [
        ("control_video", "VIDEO", "video_frames", "video"), ("image", "IMAGE", "picture", "image"),
        ("video_frames", "images", "later_frames", "image"),
        ("picture", "IMAGE", "control_frames", "image1"), ("later_frames", "IMAGE", "control_frames", "image2"),
        ("control_frames", "IMAGE", "edges", "image"),
        ("positive", "CONDITIONING", "apply_control", "positive"),
        ("negative", "CONDITIONING", "apply_control", "negative"),
        ("control_loader", "CONTROL_NET", "apply_control", "control_net"), ("edges", "IMAGE", "apply_control", "image"),
        ("checkpoint", "VAE", "apply_control", "vae"),
        ("apply_control", "positive", "sampler", "positive"), ("apply_control", "negative", "sampler", "negative"),
    ]
    return Graph(
        name="i2v_controlnet",
        title="The official recipe with a ControlNet per frame",
        note=f"""The official recipe (`i2v_adapter_official`) with a **Canny ControlNet on every frame**, as the \
I2V-Adapter paper shows it: the adapter leaves the SD1.5 model as it was, so its ControlNets work. Frame 0's edges \
come from your picture itself; frames 1–15 take theirs from a **control video** (frames 1–15 of it, resized to \
512×512): the video moves along them.

**Change first**

1. **Load Image**: your picture; **Load Video**: a clip whose motion the video should follow (16 frames or more; \
VideoHelperSuite's Load Video works as well).
2. **Prompt**: what the picture does.
3. **strength** of Apply ControlNet: lower lets the motion modules and the prompt take over.

**Files** (six: the official five and the ControlNet):

{OFFICIAL_FILES}
{files_list(file_line(CONTROLNET_CANNY, " (or another SD1.5 ControlNet, with its preprocessor)"))}

{REFRESH}""",
        nodes=nodes, links=links,
        groups=[
            ("Models", [["checkpoint", "motion_loader", "i2v_loader", "content_loader", "clip_vision",
                         "control_loader"]]),
            ("Conditioning", [["image", "control_video", "positive", "negative"],
                              ["prior", "video_frames", "picture"], ["later_frames"], ["control_frames"], ["edges"],
                              ["apply_control"]]),
            ("Sampling", [["apply_motion"], ["apply_i2v"], ["apply_content"], ["sampler"]]),
            ("Output", [["decode"], ["colour"], ["video"], ["save"]]),
        ])


CONTROLNET = controlnet()


def metrics() -> Graph:
    """The official recipe measured by I2V Video Metrics: the graph evaluation/prior_sweep.py runs."""
    nodes = {**OFFICIAL.nodes,
             "flow_loader": loader("I2V_LoadOpticalFlowModel", {"optical_flow_name": RAFT_FILE}),
             "metrics": Node("I2V_VideoMetrics", size=(420, 260)),
             "save": save_video("i2v_metrics")}
    links = OFFICIAL.links + [
        ("colour", "IMAGE", "metrics", "images"), ("image", "IMAGE", "metrics", "image"),
        ("clip_vision", "CLIP_VISION", "metrics", "clip_vision"),
        ("flow_loader", "I2V_OPTICAL_FLOW", "metrics", "optical_flow"),
    ]
    return Graph(
        name="i2v_metrics",
        title="The official recipe, measured",
        note=f"""The official recipe (`i2v_adapter_official`) with **I2V Video Metrics** on its video: CLIPTemp and \
ISIM (how close the frames stay to your picture), FlowScore (how much it moves) and WarpingError (how steady the \
motion is), the numbers the I2V-Adapter and look-back papers report. The node shows them after the run. Use it to \
compare settings: the Frame Similarity Prior's **t0** and **p** trade motion for stability (the paper's Table 2); \
`evaluation/prior_sweep.py` runs this graph over both and writes a table and a plot (docs/metrics.md).

**Change first**

1. **Load Image**: your picture; **Prompt**: what it does.
2. **t0** and **p** of Frame Similarity Prior: lower t0 = steadier, less motion, fewer steps.
3. Queue: the video is saved in `output/video/`, the numbers are on I2V Video Metrics.

**Files** (the official five and RAFT):

{OFFICIAL_FILES}
{files_list(f"`{RAFT_FILE}` (torchvision's RAFT, `Raft_Large_Weights.C_T_SKHT_V2`; one command fetches it: "
            "docs/metrics.md) → `models/optical_flow/`")}

{REFRESH}""",
        nodes=nodes, links=links,
        groups=[
            ("Models", [["checkpoint", "motion_loader", "i2v_loader", "content_loader", "clip_vision",
                         "flow_loader"]]),
            ("Conditioning", [["image", "positive", "negative"], ["prior"]]),
            ("Sampling", [["apply_motion"], ["apply_i2v"], ["apply_content"], ["sampler"]]),
            ("Output", [["decode"], ["colour"], ["video", "metrics"], ["save"]]),
        ])


def two_scale_guidance() -> Graph:
    """The official recipe sampled with AID's two guidance scales (SamplerCustomAdvanced and Two-Scale Guidance)."""
    nodes = {k: v for k, v in OFFICIAL.nodes.items() if k != "sampler"} | {
        "guider": Node("I2V_TwoScaleGuidance", {"visual_scale": 1.5, "text_scale": 12.0}),
        "noise": Node("RandomNoise", {"noise_seed": 42, "control_after_generate": "fixed"}),
        "sampler_select": Node("KSamplerSelect", {"sampler_name": "ddim"}),
        "scheduler": Node("BasicScheduler", {"scheduler": "ddim_uniform", "steps": 25, "denoise": 1.0}),
        "sampler": Node("SamplerCustomAdvanced"),
        "save": save_video("i2v_two_scale_guidance"),
    }
    links = [link for link in OFFICIAL.links if link[2] != "sampler" and link[0] != "sampler"] + [
        ("apply_content", "MODEL", "guider", "model"), ("positive", "CONDITIONING", "guider", "positive"),
        ("negative", "CONDITIONING", "guider", "negative"),
        ("apply_content", "MODEL", "scheduler", "model"), ("prior", "steps", "scheduler", "steps"),
        ("prior", "denoise", "scheduler", "denoise"),
        ("noise", "NOISE", "sampler", "noise"), ("guider", "GUIDER", "sampler", "guider"),
        ("sampler_select", "SAMPLER", "sampler", "sampler"), ("scheduler", "SIGMAS", "sampler", "sigmas"),
        ("prior", "latent", "sampler", "latent_image"),
        ("sampler", "output", "decode", "samples"),
    ]
    return Graph(
        name="i2v_two_scale_guidance",
        title="Two guidance scales: the picture and the prompt (AID)",
        note=f"""The official recipe (`i2v_adapter_official`) sampled with AID's two guidance scales instead of \
one CFG: **Two-Scale Guidance (AID)** pushes the video towards your picture by `visual_scale` and towards the \
prompt by `text_scale` (AID's 1.5 and 12), three model evaluations per step. "The picture" is what the \
I2V-Adapter and the Content-Adapter add of it; frame 0 stays your picture whatever the scales. \
`visual_scale` 1 is one CFG at `text_scale`; equal scales are one CFG against a negative without the picture \
(docs/guidance.md).

**Change first**

1. **Load Image**: your picture; **Prompt**: what it does.
2. **text_scale**: lower it (7.5 is the official recipe's CFG) where the colours burn; **visual_scale**: higher \
for a video closer to the picture, 1 to turn it off.
3. Queue: the video is saved in `output/video/`.

**Files** (the official five):

{OFFICIAL_FILES}

{REFRESH}""",
        nodes=nodes, links=links,
        groups=[
            ("Models", [["checkpoint", "motion_loader", "i2v_loader", "content_loader", "clip_vision"]]),
            ("Conditioning", [["image", "positive", "negative"], ["prior"]]),
            ("Sampling", [["apply_motion"], ["apply_i2v"], ["apply_content"],
                          ["guider", "noise", "sampler_select", "scheduler"], ["sampler"]]),
            ("Output", [["decode"], ["colour"], ["video"], ["save"]]),
        ])


TWO_SCALE_GUIDANCE = two_scale_guidance()
METRICS = metrics()

GRAPHS = [OFFICIAL, BASIC, ANIMATEDIFF, PRIOR, STATES, DQFORMER, LONG_VIDEO, LOOK_BACK, CONTROLNET, METRICS,
          TWO_SCALE_GUIDANCE]


def placeholder_files() -> dict[str, list[str]]:
    """{models/ folder: file names} the loaders must list while the graphs are made (empty files do)."""
    folders: dict[str, set[str]] = {}
    for graph in GRAPHS:
        for node in graph.nodes.values():
            for model in node.models:
                folders.setdefault(model.directory, set()).add(model.name)
    folders.setdefault("look_back", set()).add(LOOK_BACK_FILE)
    folders.setdefault("dqformer", set()).add(DQFORMER_FILE)
    folders.setdefault("optical_flow", set()).add(RAFT_FILE)
    return {k: sorted(v) for k, v in folders.items()}
