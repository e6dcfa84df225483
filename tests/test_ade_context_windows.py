"""Tier 2: AnimateDiff-Evolved's motion modules (Gen1 and Gen2 nodes) and context options with Apply I2V-Adapter,
± Apply Look-Back Layers. ADE is imported into this process from the ComfyUI checkout's custom_nodes and builds
its motion model from a random SD1.5 motion-module file in models/animatediff_models. Each window is a UNet call
(on a CPU mostly the cost of reading the weights), so the tests sample 4-5 frames in 2 windows, 1 step."""
import pytest
import torch

from comfyui_i2v_adapter.kernels.look_back_file import read_look_back
from comfyui_i2v_adapter.tests.support.custom_node_packs import ADE, node, release_memory, requires
from comfyui_i2v_adapter.tests.support.graphs import apply_adapter, encode, random_adapter, video_latent

pytestmark = [pytest.mark.comfyui, requires(ADE)]

LENGTH = 3
# Gen1 on v1 (ADE's GroupNorm-across-frames hack is on for v1), Gen2 on v2 (mid-block module).
LAYOUT = {"gen1": "v1", "gen2": "v2"}
# name: (ADE context options, frames). The windows ADE makes at the first step are in the comments.
CONTEXTS = {
    "no_context": (lambda: None, 4),  # one pass over frames 0-3
    # 0-2, 2-4: the second without frame 0
    "standard_uniform": (lambda: node("ADE_StandardUniformContextOptions").create_options(LENGTH, 1, 1)[0], 5),
    # 0-2 and 3,4,0: frame 0 inside a window, not first
    "looped_closed": (lambda: node("ADE_LoopedUniformContextOptions").create_options(LENGTH, 1, 0, True)[0], 5),
    # 0-2 and 3-4 (shorter): no overlap, so frames 3-4 see the image only through the reference put in front
    "batched": (lambda: node("ADE_BatchedContextOptions").create_options(LENGTH)[0], 5),
}
# Every pair of generation × context, context × look-back and generation × look-back at least once (the full
# product costs twice the CPU time). CFG 3: cond and uncond in one batch, two videos to put the reference in.
CASES = [
    ("gen1", "no_context", False),
    ("gen1", "standard_uniform", True),
    ("gen1", "looped_closed", False),
    ("gen2", "no_context", True),
    ("gen2", "standard_uniform", False),
    ("gen2", "looped_closed", True),
    ("gen2", "batched", False),
]


def gen1_model(model, motion_name: str, context):
    """Gen1: AnimateDiff Loader (reads the motion-model file each time)."""
    return node("ADE_AnimateDiffLoaderGen1").load_mm_and_inject_params(
        model, motion_name, "autoselect", context_options=context)[0]


def gen2_model(model, motion, context):
    """Gen2: Apply AnimateDiff Model (of a motion model from Load AnimateDiff Model, if any) + Use Evolved Sampling."""
    m_models = motion and node("ADE_ApplyAnimateDiffModelSimple").apply_motion_model(motion)[0]
    return node("ADE_UseEvolvedSampling").use_evolved_sampling(model, "autoselect", m_models=m_models,
                                                               context_options=context)[0]


def with_look_back(model, path, latent):
    from comfyui_i2v_adapter.nodes.temporal_layer_nodes import ApplyLookBackLayers
    return ApplyLookBackLayers.execute(model, read_look_back(path), latent).result[0]


def other_reference(latent: dict) -> dict:
    """The same video latent with another reference image: only frame 0 differs."""
    samples = latent["samples"].clone()
    samples[0] = samples[0].flip(-1) + 0.5
    return {**latent, "samples": samples}


def windows_seen(model, reference_in_model_space: torch.Tensor) -> list:
    """A probe on every UNet call: (ADE's window, frames per chunk, whether every row that holds frame 0, the first
    of each chunk included, is the clean reference, the video lengths ADE's motion models were told)."""
    import comfy.patcher_extension
    seen = []

    def probe(executor, x, timesteps, context, y, control, transformer_options, **kwargs):
        window = transformer_options["ad_params"]["sub_idxs"]
        frames = x.shape[0] // len(transformer_options["cond_or_uncond"])
        rows = {0} if window is None else {0} | {row + frames - len(window) for row, f in enumerate(window) if f == 0}
        clean = all(torch.equal(x[start + row], reference_in_model_space)
                    for start in range(0, x.shape[0], frames) for row in rows)
        motion_models = transformer_options["ADGS"].motion_models_devices[x.device].models
        seen.append((window and tuple(window), frames, clean, {m.model.AD_video_length for m in motion_models}))
        return executor(x, timesteps, context, y, control, transformer_options, **kwargs)
    model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "probe", probe)
    return seen


@pytest.fixture(scope="module", autouse=True)
def memory_back_after_the_module():
    yield
    release_memory()


@pytest.fixture(scope="module")
def gen2_motion(ade):
    """Load AnimateDiff Model once: ADE's Gen2 nodes share it (a motion model is GBs in fp32)."""
    return node("ADE_LoadAnimateDiffModel").load_motion_model(ade[LAYOUT["gen2"]].name)[0]


@pytest.fixture
def ade_model(sd15, ade, gen2_motion):
    def build(gen: str, context):
        if gen == "gen1":
            return gen1_model(sd15[0], ade[LAYOUT["gen1"]].name, context)
        return gen2_model(sd15[0], gen2_motion, context)
    return build


@pytest.fixture(scope="module")
def conds(sd15):
    return encode(sd15[1], "an astronaut waving"), encode(sd15[1], "blurry")


def ksample(model, conds, latent, cfg=3.0):
    """KSampler (euler / normal, 1 step) as the stock node runs it, on conditioning encoded once."""
    import nodes
    return nodes.common_ksampler(model, 0, 1, cfg, "euler", "normal", *conds, latent)[0]["samples"]


@pytest.mark.parametrize("gen, context, look_back", CASES,
                         ids=["-".join([g, c, "look_back" if lb else "adapter"]) for g, c, lb in CASES])
def test_ade_motion_and_context_windows_keep_the_reference(sd15, ade_model, conds, look_back_file, gen, context,
                                                           look_back):
    """Frame 0 of the sampled latent is exactly the reference; every window starts with the clean reference (put in
    front of windows that lack it) and holds it wherever frame 0 is; the frames that only windows that do not start
    with frame 0 hold follow the reference."""
    model, _, vae = sd15
    latent = video_latent(vae, frames=CONTEXTS[context][1])
    adapter, windowed = random_adapter(), ade_model(gen, CONTEXTS[context][0]())
    runs = []
    for reference in (latent, other_reference(latent))[:1 if context == "no_context" else 2]:
        patched = apply_adapter(windowed, adapter, reference)
        if look_back:
            patched = with_look_back(patched, look_back_file, reference)
        seen = windows_seen(patched, model.model.process_latent_in(reference["samples"][:1])[0])
        # One step: a frame's result comes from the windows that hold it, in this step only.
        runs.append((reference, ksample(patched, conds, latent), seen))

    for reference, out, seen in runs:
        assert torch.equal(out[0], reference["samples"][0])
        assert seen and all(clean for _, _, clean, _ in seen), seen
        # ADE's motion modules split the batch into videos of the length they were told: each chunk's.
        assert all(told == {frames} for _, frames, _, told in seen), seen
    windows = {window for window, *_ in runs[0][2]}
    if context == "no_context":
        assert windows == {None}
        return
    assert any(window[0] != 0 and frames == len(window) + 1 for window, frames, *_ in runs[0][2]), runs[0][2]
    # Frames that only windows not starting with frame 0 hold: they see the image through the reference in front.
    in_front_only = set(range(latent["samples"].shape[0])) - {f for window in windows if window[0] == 0 for f in window}
    change = (runs[1][1] - runs[0][1]).abs().amax(dim=(1, 2, 3))
    assert in_front_only and (change[sorted(in_front_only)] > 1e-4).all(), (windows, change)


def test_windows_too_long_for_the_reference_in_front_are_refused_before_the_first_step(sd15, ade_model, conds):
    """v2 covers 32 frames: ADE accepts windows of 32, which the reference in front would make 33."""
    model, _, vae = sd15
    context = node("ADE_StandardUniformContextOptions").create_options(32, 1, 4)[0]
    latent = video_latent(vae, frames=33)
    patched = apply_adapter(ade_model("gen2", context), random_adapter(), latent)
    seen = windows_seen(patched, latent["samples"][0])
    with pytest.raises(ValueError, match=r"Apply I2V-Adapter: AnimateDiff-Evolved's context windows of 32 frames .* "
                                         r"handles at most 32\. Set the context options' context_length to 31 or less"):
        ksample(patched, conds, latent)
    assert not seen


def with_our_motion(model, path):
    from comfyui_i2v_adapter.kernels.motion_module_file import read_motion_module
    from comfyui_i2v_adapter.nodes.temporal_layer_nodes import ApplyMotionModule
    return ApplyMotionModule.execute(model, read_motion_module(path), 1.0, "autoselect", "autoselect").result[0]


def test_our_motion_module_under_ade_context_options_takes_more_frames_than_it_covers(sd15, ade, conds):
    """Apply Motion Module (v1: 24 frames) under ADE's windows of 16 samples 25 frames; windows of 24 would give it
    25 with the reference in front, and are refused before the first step."""
    model, _, vae = sd15
    latent = video_latent(vae, frames=25)
    ours = apply_adapter(with_our_motion(model, ade["v1"]), random_adapter(), latent)
    static = lambda length: node("ADE_StandardStaticContextOptions").create_options(length, 4)[0]
    out = ksample(gen2_model(ours, None, static(16)), conds, latent, cfg=1.0)
    assert torch.equal(out[0], latent["samples"][0]) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match=r"Apply Motion Module: .* at most 24 frames at once .* context windows of 24 "
                                         r"frames with the reference image put in front .* at most 23 frames"):
        ksample(gen2_model(ours, None, static(24)), conds, latent)
