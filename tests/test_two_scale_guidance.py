"""Two-Scale Guidance (AID): tier 1, the combination and which predictions it skips; tier 2, the guider in-process
on the random SD1.5 (its identities with single CFG, the roles each patch of ours follows, frame 0) and as a graph
with SamplerCustomAdvanced on a server."""
import pytest
import torch

from comfyui_i2v_adapter.kernels.two_scale_guidance import ALL, Predictions, add_text_guidance, predictions_needed
from comfyui_i2v_adapter.tests.support.graphs import (apply_adapter, cond_outputs, encode, guided_sample, random_adapter,
                                                     video_latent)
from comfyui_i2v_adapter.tests.support.images import astronaut

POSITIVE, NEGATIVE = "an astronaut waving", "blurry"
FRAMES = 2  # the random SD1.5 is full size: a 64² frame costs seconds per call on a CPU


def plain_cfg(cond, uncond, scale):
    """ComfyUI's cfg_function without sampler-cfg or post-cfg functions."""
    return uncond + (cond - uncond) * scale


@pytest.mark.parametrize("visual, text, cfg_functions, needed", [
    (1.5, 12.0, False, ALL),
    (1.0, 12.0, False, Predictions(unconditional=False, picture=True)),
    (3.0, 3.0, False, Predictions(unconditional=True, picture=False)),
    (3.0, 3.0, True, ALL),  # RescaleCFG & co. see ε(img,∅) as the visual step's conditional
    (1.0, 1.0, False, Predictions(unconditional=False, picture=False)),
    (1.0, 1.0, True, Predictions(unconditional=False, picture=False)),
    (12.0, 1.0, False, ALL),
])
def test_a_prediction_runs_unless_its_weight_is_zero(visual, text, cfg_functions, needed):
    assert predictions_needed(visual, text, cfg_functions) == needed


def test_the_combination_is_aids_formula():
    unconditional, picture, prompt = torch.randn(3, 2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    visual, text = 1.5, 12.0
    guided = add_text_guidance(plain_cfg(picture, unconditional, visual), picture, prompt, text)
    expected = (1 - visual) * unconditional + (visual - text) * picture + text * prompt
    assert torch.allclose(guided, expected, atol=1e-5)
    # Visual scale 1, ε(∅,∅) skipped (ComfyUI gives zeros for a cond it skips): CFG between the prompt and the
    # negative, both with the picture, as ComfyUI computes it.
    skipped = torch.zeros_like(unconditional)
    assert torch.equal(add_text_guidance(plain_cfg(picture, skipped, 1.0), picture, prompt, text),
                       plain_cfg(prompt, picture, text))


# Tier 2, in-process.

@pytest.fixture(scope="module")
def parts(comfyui, module_tmp):
    """(Content-Adapter, its CLIP vision model, DQFormer), random, SD1.5, small."""
    from comfyui_i2v_adapter.kernels.content_adapter_file import read_content_adapter
    from comfyui_i2v_adapter.kernels.dqformer import DQFormer, DQFormerShape
    from comfyui_i2v_adapter.kernels.dqformer_file import read_dqformer, write_dqformer
    from comfyui_i2v_adapter.kernels.unet_layout import SD15
    from comfyui_i2v_adapter.tests.support.random_models import (random_ip_adapter_plus, small_clip_vision,
                                                                 write_ip_adapter_bin)
    write_ip_adapter_bin(module_tmp / "ip.bin", random_ip_adapter_plus(SD15, image_features=64))
    torch.manual_seed(3)
    dqformer = DQFormer(DQFormerShape(32, SD15.context_dim, width=64, layers=2, heads=4, queries=8))
    torch.nn.init.normal_(dqformer.proj_out.weight, std=0.5)
    write_dqformer(module_tmp / "dq.safetensors", dqformer, SD15, "tiny-vlm")
    return (read_content_adapter(module_tmp / "ip.bin"), small_clip_vision(64),
            read_dqformer(module_tmp / "dq.safetensors"))


def with_content(model, parts, image=None):
    from comfyui_i2v_adapter.nodes.content_adapter_nodes import ApplyContentAdapter
    adapter, clip_vision, _ = parts
    return ApplyContentAdapter.execute(model, adapter, clip_vision, astronaut() if image is None else image,
                                       1.0).result[0]


def with_dqformer(model, parts, weight=1.0):
    """Condition tokens of random state features (no vision-language model needed)."""
    from comfyui_i2v_adapter.kernels.state_schedule import frame_state_weights
    from comfyui_i2v_adapter.kernels.vlm_io import StateFeatures
    from comfyui_i2v_adapter.nodes.dqformer_nodes import ApplyDQFormer
    from comfyui_i2v_adapter.nodes.vlm_answer import DecomposedStates

    generator = torch.Generator().manual_seed(4)
    features = StateFeatures("tiny-vlm", torch.randn(1, 5, 32, generator=generator), torch.ones(1, 5, dtype=bool),
                             torch.randn(2, 3, 32, generator=generator), torch.ones(2, 3, dtype=bool))
    states = DecomposedStates("tiny-vlm", features, frame_state_weights(FRAMES, 2, 1.0))
    return ApplyDQFormer.execute(model, parts[2], states, weight).result[0]


def two_scale(clip, visual, text):
    from comfyui_i2v_adapter.nodes.two_scale_guidance import TwoScaleGuidance
    positive, negative = encode(clip, POSITIVE), encode(clip, NEGATIVE)
    return lambda model: TwoScaleGuidance.execute(model, positive, negative, visual, text).result[0]


def single_cfg_without_picture(clip, cfg):
    """CFGGuider whose negative has none of the picture: the negative prompt with zero pixels' image tokens, no
    DQFormer tokens and no first-frame branch (what Two-Scale Guidance calls ε(∅,∅)); its positive has everything."""
    import comfy.samplers

    from comfyui_i2v_adapter.nodes.cond_roles import NEGATIVE_WITHOUT_PICTURE

    class NoPictureCFG(comfy.samplers.CFGGuider):
        def predict_noise(self, x, timestep, model_options={}, seed=None):
            return comfy.samplers.sampling_function(self.inner_model, x, timestep, self.conds[NEGATIVE_WITHOUT_PICTURE],
                                                    self.conds["positive"], self.cfg, model_options, seed)

    def make(model):
        guider = NoPictureCFG(model)
        guider.inner_set_conds({"positive": encode(clip, POSITIVE), NEGATIVE_WITHOUT_PICTURE: encode(clip, NEGATIVE)})
        guider.set_cfg(cfg)
        return guider
    return make


def core_guider(clip, name, *scales):
    from comfy_extras.nodes_custom_sampler import CFGGuider, DualCFGGuider
    positive, negative = encode(clip, POSITIVE), encode(clip, NEGATIVE)
    if name == "CFGGuider":
        return lambda model: CFGGuider().get_guider(model, positive, negative, *scales)[0]
    # AID's scales on DualCFGGuider: cond2 the negative prompt, so its negative keeps the first-frame branch.
    return lambda model: DualCFGGuider().get_guider(model, positive, negative, negative, *scales, "regular")[0]


def sampled(model, guider_of, latent, chunks=None, steps=1):
    """What SamplerCustomAdvanced samples (euler, normal); `chunks` collects each UNet call's number of conds."""
    import comfy.patcher_extension

    if chunks is not None:
        def count(executor, x, timesteps, context, y, control, transformer_options, **kwargs):
            chunks.append(len(transformer_options["cond_or_uncond"]))
            return executor(x, timesteps, context, y, control, transformer_options, **kwargs)
        model = model.clone()
        model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "count", count)
    return guided_sample(model, guider_of, latent, steps)


@pytest.fixture(scope="module")
def video(sd15, parts):
    """(model, clip, latent, the model with the I2V-Adapter and the Content-Adapter)."""
    model, clip, vae = sd15
    latent = video_latent(vae, frames=FRAMES)
    return model, clip, latent, with_content(apply_adapter(model, random_adapter(), latent), parts)


@pytest.mark.comfyui
def test_both_scales_1_give_the_conditional_prediction_exactly(video):
    """One cond per call, the prompt with the picture: what CFGGuider samples at cfg 1."""
    _, clip, latent, model = video
    chunks = []
    ours = sampled(model, two_scale(clip, 1.0, 1.0), latent, chunks=chunks)
    assert set(chunks) == {1}
    assert torch.equal(ours, sampled(model, core_guider(clip, "CFGGuider", 1.0), latent))


@pytest.mark.comfyui
def test_equal_scales_are_single_cfg_against_the_negative_without_the_picture(video):
    """s_v = s_t = s: CFG at s between the prompt with the picture and the negative prompt with none of it, bit for
    bit (two conds per call); with the cfg 1 optimisation disabled, the three-cond formula gives it to rounding
    (relative to the latent's largest value)."""
    _, clip, latent, model = video
    reference = sampled(model, single_cfg_without_picture(clip, 4.0), latent)
    chunks = []
    assert torch.equal(sampled(model, two_scale(clip, 4.0, 4.0), latent, chunks=chunks), reference)
    assert set(chunks) == {2}
    disabled = model.clone()
    disabled.model_options["disable_cfg1_optimization"] = True
    chunks.clear()
    three = sampled(disabled, two_scale(clip, 4.0, 4.0), latent, chunks=chunks)
    assert set(chunks) == {3}
    error = ((three - reference).abs().max() / reference.abs().max()).item()
    assert error < 1e-5, error
    assert torch.equal(three[0], latent["samples"][0])


@pytest.mark.comfyui
def test_visual_scale_1_is_todays_cfg_guider_where_the_picture_is_only_the_first_frame_branch(video):
    """Without the Content-Adapter, the negative with the picture is CFGGuider's negative (the branch on): at
    visual scale 1 the guider samples what CFGGuider samples at cfg = text scale, bit for bit."""
    model, clip, latent, _ = video
    i2v = apply_adapter(model, random_adapter(), latent)
    chunks = []
    assert torch.equal(sampled(i2v, two_scale(clip, 1.0, 5.0), latent, chunks=chunks),
                       sampled(i2v, core_guider(clip, "CFGGuider", 5.0), latent))
    assert set(chunks) == {2}


@pytest.mark.comfyui
def test_the_negative_without_the_picture_has_no_first_frame_branch(video, parts):
    """AID's scales on DualCFGGuider differ from ours only in the first-frame branch of ε(∅,∅): the same where the
    picture is the Content-Adapter's tokens alone, not with the I2V-Adapter. Frame 0 stays the reference."""
    model, clip, latent, both = video
    scales = 1.5, 12.0
    content = with_content(model, parts)
    assert torch.allclose(sampled(content, two_scale(clip, *scales), latent),
                          sampled(content, core_guider(clip, "DualCFGGuider", *reversed(scales)), latent), atol=1e-4)
    ours, dual = (sampled(both, guider, latent) for guider in (two_scale(clip, *scales),
                                                                core_guider(clip, "DualCFGGuider", *reversed(scales))))
    assert (ours[1:] - dual[1:]).abs().max() > 1e-3
    assert torch.equal(ours[0], latent["samples"][0]) and torch.equal(dual[0], latent["samples"][0])


@pytest.mark.comfyui
def test_each_part_of_the_pack_follows_its_conds_role(video, parts):
    """Each patch of ours, changed, changes exactly the conds whose role has its part: the first-frame branch (a
    trained against an identity adapter) and the Content-Adapter's picture (flipped) go to both conds with the
    picture; the DQFormer's tokens (weight 1 against 0.5) to the prompt only."""
    from comfyui_i2v_adapter.nodes.cond_roles import NEGATIVE_WITH_PICTURE, NEGATIVE_WITHOUT_PICTURE

    model, clip, latent, _ = video
    guider = two_scale(clip, 1.5, 12.0)
    i2v = apply_adapter(model, random_adapter(), latent)
    variants = {"first-frame branch": (apply_adapter(model, random_adapter(trained=False), latent), i2v),
                "picture tokens": (with_content(i2v, parts), with_content(i2v, parts, astronaut().flip(2))),
                "prompt tokens": (with_dqformer(i2v, parts, 1.0), with_dqformer(i2v, parts, 0.5))}
    follows = {"first-frame branch": {"positive", NEGATIVE_WITH_PICTURE},
               "picture tokens": {"positive", NEGATIVE_WITH_PICTURE}, "prompt tokens": {"positive"}}
    for part, (one, other) in variants.items():
        a, b = cond_outputs(one, guider, latent, 1), cond_outputs(other, guider, latent, 1)
        assert a.keys() == {"positive", NEGATIVE_WITH_PICTURE, NEGATIVE_WITHOUT_PICTURE}
        assert {name for name in a if not torch.equal(a[name], b[name])} == follows[part], part


@pytest.mark.comfyui
def test_post_cfg_functions_apply_and_the_optimisation_keeps_what_they_see(video):
    """RescaleCFG (a sampler cfg function) acts on the visual step; with it, equal scales still run three conds."""
    from comfy_extras.nodes_model_advanced import RescaleCFG

    _, clip, latent, model = video
    rescaled = RescaleCFG().patch(model, 0.7)[0]
    chunks = []
    aid = sampled(model, two_scale(clip, 1.5, 12.0), latent)
    assert (sampled(rescaled, two_scale(clip, 1.5, 12.0), latent, chunks=chunks) - aid).abs().max() > 1e-4
    sampled(rescaled, two_scale(clip, 4.0, 4.0), latent, chunks=chunks)
    assert set(chunks) == {3}


@pytest.mark.comfyui
def test_a_cond_without_the_branch_syncs_nothing_with_the_host(video, parts):
    """The chunks with and without the first-frame branch in one UNet call (tests/test_no_host_sync.py's guard)."""
    from comfyui_i2v_adapter.tests.support.host_sync import HostSyncGuard, guard_unet_calls_after_the_first

    model, clip, latent, _ = video
    guard = HostSyncGuard()
    guarded, calls = guard_unet_calls_after_the_first(model, guard)
    patched = with_content(apply_adapter(guarded, random_adapter(), latent), parts)
    with torch.inference_mode():  # as ComfyUI's executor runs a prompt
        sampled(patched, two_scale(clip, 1.5, 12.0), latent, steps=2)
    assert len(calls) == 2 and guard.watched > 0
    assert guard.found == [], "\n".join(sorted(set(guard.found)))


@pytest.mark.comfyui
def test_a_model_without_picture_conditioning_is_refused_naming_the_fix(video, parts):
    from comfyui_i2v_adapter.nodes.two_scale_guidance import TwoScaleGuidance

    model, clip, latent, _ = video
    positive, negative = encode(clip, POSITIVE), encode(clip, NEGATIVE)
    for bare in (model, apply_adapter(model, random_adapter(), latent, strength=0.0), with_dqformer(model, parts)):
        with pytest.raises(ValueError, match="Two-Scale Guidance .*no picture conditioning.*Apply I2V-Adapter"):
            TwoScaleGuidance.execute(bare, positive, negative, 1.5, 12.0)
    assert TwoScaleGuidance.execute(with_content(model, parts), positive, negative, 1.5, 12.0).result[0] is not None


# Tier 2, a graph on a server.

def guided_graph(model_with_adapter: bool = True) -> tuple[dict, str, str]:
    """Reference picture → I2V Video Latent → Apply I2V-Adapter → Two-Scale Guidance → SamplerCustomAdvanced, 2
    frames at 64², one euler step; returns (prompt, the sampled latent's SaveLatent, the start's)."""
    from comfyui_i2v_adapter.tests.support.api_graph import Graph

    graph = Graph()
    checkpoint = graph.add("CheckpointLoaderSimple", ckpt_name="random_sd15.safetensors")
    model, clip, vae = [checkpoint, 0], [checkpoint, 1], [checkpoint, 2]
    image = graph.out("LoadImage", image="reference.png")
    latent = graph.out("I2V_VideoLatent", vae=vae, image=image, frames=2, width=64, height=64)
    if model_with_adapter:
        adapter = graph.out("I2V_LoadAdapter", adapter_name="random_i2v_sd15.safetensors")
        model = graph.out("I2V_ApplyAdapter", model=model, i2v_adapter=adapter, reference=latent, strength=1.0)
    guider = graph.out("I2V_TwoScaleGuidance", model=model, visual_scale=1.5, text_scale=12.0,
                       positive=graph.out("CLIPTextEncode", clip=clip, text=POSITIVE),
                       negative=graph.out("CLIPTextEncode", clip=clip, text=NEGATIVE))
    sigmas = graph.out("BasicScheduler", model=model, scheduler="normal", steps=1, denoise=1.0)
    sample = graph.out("SamplerCustomAdvanced", noise=graph.out("RandomNoise", noise_seed=0), guider=guider,
                       sampler=graph.out("KSamplerSelect", sampler_name="euler"), sigmas=sigmas, latent_image=latent)
    return graph.nodes, graph.save_latent(sample, "two_scale"), graph.save_latent(latent, "two_scale-start")


def saved_latent(server, outputs: dict, save: str) -> torch.Tensor:
    from safetensors.torch import load_file
    item = outputs[save]["latents"][0]
    return load_file(str(server.base / "output" / item["subfolder"] / item["filename"]))["latent_tensor"]


@pytest.mark.comfyui
def test_the_guider_samples_a_video_in_a_graph_with_sampler_custom_advanced(server, adapter_files):
    prompt, sampled_save, start_save = guided_graph()
    outputs = server.run(prompt)["outputs"]
    video, start = saved_latent(server, outputs, sampled_save), saved_latent(server, outputs, start_save)
    assert video.shape == start.shape == (2, 4, 8, 8)
    assert torch.equal(video[0], start[0]) and (video[1] - start[1]).abs().max() > 0 and video.isfinite().all()
    info = server.object_info()["I2V_TwoScaleGuidance"]
    assert info["output"] == ["GUIDER"] and info["category"] == "I2V-Adapter"
    inputs = info["input"]["required"]
    assert list(inputs) == ["model", "positive", "negative", "visual_scale", "text_scale"]
    assert inputs["visual_scale"][1]["default"] == 1.5 and inputs["text_scale"][1]["default"] == 12.0
    assert all(spec[1].get("tooltip") for spec in inputs.values())


@pytest.mark.comfyui
def test_the_graph_without_the_adapter_fails_naming_the_fix(server):
    from comfyui_i2v_adapter.evaluation.comfy_client import ExecutionFailed
    with pytest.raises(ExecutionFailed, match="no picture conditioning.*Apply I2V-Adapter"):
        server.run(guided_graph(model_with_adapter=False)[0])


@pytest.mark.comfyui
def test_the_shipped_graph_samples_the_official_recipe_with_aids_scales(server, official_files):
    from comfyui_i2v_adapter.evaluation.workflow_api import node_of_type
    from comfyui_i2v_adapter.tests.support.workflows import OFFICIAL_TEST_FILES, run_workflow, workflow_prompt

    prompt = workflow_prompt(server, "i2v_two_scale_guidance.json", OFFICIAL_TEST_FILES)
    inputs = lambda class_type: prompt[node_of_type(prompt, class_type)]["inputs"]
    prior = node_of_type(prompt, "I2V_FrameSimilarityPrior")
    assert (inputs("I2V_TwoScaleGuidance")["visual_scale"], inputs("I2V_TwoScaleGuidance")["text_scale"]) == (1.5, 12)
    assert inputs("I2V_TwoScaleGuidance")["model"][0] == node_of_type(prompt, "I2V_ApplyContentAdapter")
    assert inputs("KSamplerSelect")["sampler_name"] == "ddim"
    scheduler = inputs("BasicScheduler")
    assert (scheduler["scheduler"], scheduler["steps"], scheduler["denoise"]) == ("ddim_uniform", [prior, 1], [prior, 2])
    result = run_workflow(server, prompt, sampler="SamplerCustomAdvanced")
    assert result.video_frames == 16 and result.video_size == (64, 64)
    assert torch.equal(result.sampled[0], result.video_latent[0])
    assert all((result.sampled[i] - result.video_latent[i]).abs().max() > 0 for i in range(1, 16))
