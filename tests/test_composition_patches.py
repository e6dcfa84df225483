"""Tier 2: how our patches meet other patches inside a real ComfyUI: the conds a guider passes, the attention replaces
others register (in either order, under either key), SDXL's layer keys with ComfyUI_IPAdapter_plus, and
torch.compile over the patched UNet. The server-side matrix (test_composition_matrix) runs the same nodes as graphs;
these tests look inside the UNet calls."""
import pytest
import torch

from comfyui_i2v_adapter.tests.support.graphs import (apply_adapter, cond_outputs, encode, random_adapter, sample,
                                                     video_latent)
from comfyui_i2v_adapter.tests.support.images import astronaut

pytestmark = pytest.mark.comfyui
WIDTH = 64  # the small CLIP vision model's width


@pytest.fixture(scope="module", autouse=True)
def hand_memory_back(comfyui):
    """The ControlNet, the compiled graphs and what ComfyUI keeps loaded go before the next module (the trainer's
    tests load a second SD1.5 beside the session's)."""
    yield
    import comfy.model_management
    import torch._dynamo

    from comfyui_i2v_adapter.tests.support.custom_node_packs import release_memory
    comfy.model_management.unload_all_models()
    torch._dynamo.reset()
    release_memory()


@pytest.fixture(scope="module")
def content(comfyui, tmp_path_factory):
    """(Content-Adapter file, its CLIP vision model), SD1.5, small."""
    from comfyui_i2v_adapter.kernels.content_adapter_file import read_content_adapter
    from comfyui_i2v_adapter.kernels.unet_layout import SD15
    from comfyui_i2v_adapter.tests.support.random_models import (random_ip_adapter_plus, small_clip_vision,
                                                                 write_ip_adapter_bin)
    path = tmp_path_factory.mktemp("ipadapter") / "ip-adapter-plus_sd15.bin"
    write_ip_adapter_bin(path, random_ip_adapter_plus(SD15, image_features=WIDTH))
    return read_content_adapter(path), small_clip_vision(WIDTH)


def with_content(model, content, image=None):
    from comfyui_i2v_adapter.nodes.content_adapter_nodes import ApplyContentAdapter
    adapter, clip_vision = content
    return ApplyContentAdapter.execute(model, adapter, clip_vision, astronaut() if image is None else image,
                                       1.0).result[0]


def dual_cfg(clip):
    from comfy_extras.nodes_custom_sampler import DualCFGGuider
    conds = encode(clip, "an astronaut waving"), encode(clip, "an astronaut"), encode(clip, "blurry")
    return lambda model: DualCFGGuider().get_guider(model, *conds, 3.0, 2.0, "regular")[0]


def perp_neg(clip):
    from comfy_extras.nodes_perpneg import PerpNegGuider
    conds = encode(clip, "an astronaut waving"), encode(clip, "blurry"), encode(clip, "")
    return lambda model: PerpNegGuider.execute(model, *conds, 3.0, 1.0).result[0]


@pytest.mark.parametrize("guider", [dual_cfg, perp_neg], ids=["DualCFGGuider", "PerpNegGuider"])
def test_a_guiders_negatives_get_zero_pixels_and_its_other_conds_the_picture(sd15, content, guider):
    """DualCFGGuider passes [negative, middle, positive], PerpNegGuider [positive, negative, empty_negative_prompt]:
    the picture reaches every cond the guider does not name a negative, whatever its position."""
    model, clip, vae = sd15
    latent = video_latent(vae)
    make = guider(clip)
    plain = cond_outputs(model, make, latent)
    seen = cond_outputs(with_content(model, content), make, latent)
    flipped = cond_outputs(with_content(model, content, astronaut().flip(2)), make, latent)
    assert seen.keys() == plain.keys() and len(seen) == 3
    for name in seen:
        assert (seen[name] - plain[name]).abs().max() > 1e-4  # the Content-Adapter acts on every cond
        sees_picture = not (seen[name] - flipped[name]).abs().max() == 0
        assert sees_picture == ("negative" not in name), name


def test_roles_no_guider_named_follow_comfyuis_cond_uncond_convention(comfyui):
    from comfyui_i2v_adapter.nodes.cond_roles import CONDITIONAL, NEGATIVE, UUID_ROLES, RecordCondRoles, chunk_roles

    def roles_of_call(transformer_options):
        seen = []
        RecordCondRoles().apply_model(lambda *args: seen.append(chunk_roles(args[5])), None, None, None, None,
                                      None, transformer_options)
        return seen[0]
    assert roles_of_call({"cond_or_uncond": [1, 0], "uuids": ["a", "b"]}) == (NEGATIVE, CONDITIONAL)
    assert roles_of_call({"cond_or_uncond": [0, 1, 2], "uuids": ["n", "m", "p"],
                          UUID_ROLES: {"n": NEGATIVE, "m": CONDITIONAL, "p": CONDITIONAL}}) == (NEGATIVE, CONDITIONAL,
                                                                                              CONDITIONAL)
    assert chunk_roles({"cond_or_uncond": [1, 0]}) == (NEGATIVE, CONDITIONAL)  # a call that bypassed apply_model


def test_the_content_adapter_adds_to_whatever_replace_a_layer_has_in_either_order(sd15, content):
    """A replace registered under a layer's 2-part key (as PerturbedAttentionGuidance and ComfyUI_IPAdapter_plus on
    SD1.5 do) or its 3-part key, before or after ours, runs; ours adds to its output; nothing of ours is written
    into the MODEL's replace patches."""
    import comfy.ldm.modules.attention as attention

    model, clip, vae = sd15
    latent = video_latent(vae)
    calls = []

    def doubled(q, k, v, extra_options):
        calls.append(extra_options["block"])
        return 2 * attention.optimized_attention(q, k, v, extra_options["n_heads"])

    def theirs(m, key):
        m = m.clone()
        m.set_model_attn2_replace(doubled, *key)
        return m
    results = {}
    for key in (("input", 1), ("input", 1, 0)):
        for order in ("ours first", "theirs first"):
            calls.clear()
            patched = theirs(with_content(model, content), key) if order == "ours first" else \
                with_content(theirs(model, key), content)
            assert patched.model_options["transformer_options"]["patches_replace"]["attn2"] == {key: doubled}
            results[key, order] = sample(patched, clip, latent, steps=1)
            assert calls and set(calls) == {("input", 1)}
    alone = sample(theirs(model, ("input", 1)), clip, latent, steps=1)
    mine = sample(with_content(model, content), clip, latent, steps=1)
    values = list(results.values())
    assert all(torch.equal(values[0], other) for other in values[1:])
    assert (values[0] - alone).abs().max() > 1e-4 and (values[0] - mine).abs().max() > 1e-4


def test_the_i2v_adapter_leaves_attn1_replaces_to_others(sd15):
    """No attn1 replace of ours: PerturbedAttentionGuidance's 2-part one and SelfAttentionGuidance's 3-part one
    are what ComfyUI finds for the middle block, before or after Apply I2V-Adapter."""
    from comfy_extras.nodes_pag import PerturbedAttentionGuidance
    from comfy_extras.nodes_sag import SelfAttentionGuidance

    model, _, vae = sd15
    latent = video_latent(vae)
    adapter = random_adapter()
    for before in (PerturbedAttentionGuidance.execute(model, 3.0).result[0],
                   SelfAttentionGuidance.execute(model, 0.5, 2.0).result[0]):
        replaces = before.model_options["transformer_options"].get("patches_replace", {})
        after = apply_adapter(before, adapter, latent)
        assert after.model_options["transformer_options"].get("patches_replace", {}) == replaces
    sag_after = SelfAttentionGuidance.execute(apply_adapter(model, adapter, latent), 0.5, 2.0).result[0]
    assert list(sag_after.model_options["transformer_options"]["patches_replace"]["attn1"]) == [("middle", 0, 0)]


def test_ipadapter_plus_after_ours_on_sdxl_keeps_both(comfyui, comfy_base, tmp_path):
    """On SDXL, ComfyUI_IPAdapter_plus registers attn2 replaces under 3-part keys and, finding a patch under its
    key, calls its own methods on it. After Apply Content-Adapter it finds none of ours; each UNet call then runs
    its replace and adds ours, layer by layer (the SDXL UNet on the meta device: the keys, not the weights)."""
    from safetensors.torch import save_file

    from comfyui_i2v_adapter.kernels.content_adapter_file import read_content_adapter
    from comfyui_i2v_adapter.kernels.unet_layout import SDXL
    from comfyui_i2v_adapter.nodes.attention_overlay import OverAttention
    from comfyui_i2v_adapter.tests.support.custom_node_packs import load_pack, missing, node, pack_folder
    from comfyui_i2v_adapter.tests.support.random_models import (meta_sdxl_model, random_ip_adapter_plus,
                                                                 small_clip_vision)

    if pack_folder(comfyui, "ComfyUI_IPAdapter_plus") is None:
        pytest.skip(missing(comfyui, "ComfyUI_IPAdapter_plus"))
    load_pack(comfyui, "ComfyUI_IPAdapter_plus", comfy_base)
    tensors = random_ip_adapter_plus(SDXL, image_features=1280)
    save_file(tensors, str(tmp_path / "ip-adapter-plus_sdxl_vit-h.safetensors"))
    clip_vision = small_clip_vision(1280)
    adapter = read_content_adapter(tmp_path / "ip-adapter-plus_sdxl_vit-h.safetensors")
    ours = with_content(meta_sdxl_model(), (adapter, clip_vision))
    nested = {"image_proj": {}, "ip_adapter": {}}
    for key, value in tensors.items():
        part, name = key.split(".", 1)
        nested[part][name] = value
    both = node("IPAdapterAdvanced").apply_ipadapter(ours, nested, image=astronaut(), clip_vision=clip_vision,
                                                     weight_type="linear")[0]
    replaces = both.model_options["transformer_options"]["patches_replace"]["attn2"]
    assert len(replaces) == 70 and all(type(r).__name__ == "Attn2Replace" for r in replaces.values())
    seen = {}

    def call(x, timesteps, context, y, control, transformer_options, **kwargs):
        seen.update(transformer_options["patches_replace"]["attn2"])

    import comfy.patcher_extension
    wrappers = both.get_all_wrappers(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL)
    executor = comfy.patcher_extension.WrapperExecutor.new_executor(call, wrappers)
    executor.execute(None, None, None, None, None, {**both.model_options["transformer_options"]})
    ours_there = [r for r in seen.values() if isinstance(r, OverAttention)]
    # IPAdapter_plus keys its middle block ("middle", 1, i), ComfyUI calls it ("middle", 0, i): 60 layers meet.
    assert len(ours_there) == 70 and sum(r.live is replaces.get(k) for k, r in seen.items()
                                          if isinstance(r, OverAttention) and r.live is not None) == 60


def test_torch_compile_over_each_of_ours_samples_the_same_without_recompiling(sd15, content, motion_files):
    """TorchCompileModel's own wrapper (here with dynamo's eager backend, on the middle block's transformer block
    and first ResNet's norm layers: the CPU has no time to build kernels or trace the whole UNet) traces ours
    inside them, in either order: the same samples, and
    once the first sampling ran (its first call fills the caches of values placed on the device), a second
    compiles nothing new, so what ours hand into the compiled block (per-call replaces, cond roles) keeps its
    guards. Ours of each kind of patch: output patches, an attention overlay with cond roles, injected layers with
    object-patched norms (the look-back layers are injected as the motion modules are)."""
    import torch._dynamo
    from comfy_api.torch_helpers import set_torch_compile_wrapper

    from comfyui_i2v_adapter.kernels.motion_module_file import read_motion_module
    from comfyui_i2v_adapter.nodes.temporal_layer_nodes import ApplyMotionModule

    model, clip, vae = sd15
    latent = video_latent(vae, frames=2)
    ours = {"I2V-Adapter": lambda m: apply_adapter(m, random_adapter(), latent),
            "Content-Adapter": lambda m: with_content(m, content),
            "Motion Module": lambda m: ApplyMotionModule.execute(m, read_motion_module(motion_files["v1"]), 1.0,
                                                                 "autoselect", "autoselect").result[0]}

    def compiled(m):
        m = m.clone()
        set_torch_compile_wrapper(m, backend="eager", keys=["diffusion_model.middle_block.1.transformer_blocks.0",
                                                            "diffusion_model.middle_block.0.in_layers"])
        return m
    for name, apply in ours.items():
        torch._dynamo.reset()
        eager = sample(apply(model), clip, latent, steps=2)
        for patched in (compiled(apply(model)), apply(compiled(model))):
            assert torch.allclose(sample(patched, clip, latent, steps=2), eager, atol=1e-5), name
            graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
            sample(patched, clip, latent, steps=2)
            assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs, f"{name}: recompiled"


def test_a_controlnet_under_context_windows_sees_each_windows_frames_and_none_on_the_reference(sd15, tmp_path):
    """ComfyUI's Context Windows with a per-frame ControlNet hint: each window's ControlNet call gets that window's
    hint frames (ComfyUI 0.3.64 alone gives every window the first ones); the reference put in front of a window
    that lacks frame 0 runs with a zero residual; frame 0 stays the reference."""
    import comfy.controlnet
    import comfy.patcher_extension
    import nodes
    from comfy_extras.nodes_context_windows import ContextWindowsManualNode

    from comfyui_i2v_adapter.tests.support.random_models import write_random_controlnet_sd15

    model, clip, vae = sd15
    latent = video_latent(vae, frames=3)
    write_random_controlnet_sd15(tmp_path / "controlnet.safetensors")
    control = comfy.controlnet.load_controlnet(str(tmp_path / "controlnet.safetensors"))
    hints = torch.stack([torch.full((64, 64, 3), value) for value in (0.2, 0.5, 0.8)])
    positive, negative = nodes.ControlNetApplyAdvanced().apply_controlnet(
        encode(clip, "an astronaut waving"), encode(clip, "blurry"), control, hints, 1.0, 0.0, 1.0, vae=vae)
    windowed = ContextWindowsManualNode.execute(apply_adapter(model, random_adapter(), latent), 2, 1,
                                                "standard_static", 1, False, "pyramid", 0).result[0]
    seen, residual_rows = [], []

    def record_hints(control_net):
        get_control = control_net.get_control

        def recorded(x_noisy, t, cond, batched_number, transformer_options):
            out = get_control(x_noisy, t, cond, batched_number, transformer_options)
            frames = control_net.cond_hint.shape[0] // batched_number
            seen.append((tuple(transformer_options["context_window"].index_list),
                         tuple(round(v, 2) for v in control_net.cond_hint[:frames, 0, 0, 0].tolist())))
            return out
        control_net.get_control = recorded

    def probe(executor, x, timesteps, context, y, control, transformer_options, **kwargs):
        rows = x.shape[0] // len(transformer_options["cond_or_uncond"])
        residual = control["output"][-1] if control else None
        residual_rows.append((rows, None if residual is None else
                              residual.reshape(-1, rows, residual[0].numel()).abs().amax(dim=(0, 2)).tolist()))
        return executor(x, timesteps, context, y, control, transformer_options, **kwargs)
    for control_net in {id(c[1]["control"]): c[1]["control"] for c in positive + negative}.values():
        record_hints(control_net)
    windowed.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "probe", probe)
    # ComfyUI 0.3.64's windows need steps + 1 = frames with a noise-masked latent (docs/temporal-layers.md).
    out = nodes.common_ksampler(windowed, 0, 2, 3.0, "euler", "normal", positive, negative, latent)[0]["samples"]
    assert torch.equal(out[0], latent["samples"][0])
    assert set(seen) == {((0, 1), (0.2, 0.5)), ((1, 2), (0.5, 0.8))}
    in_front = [per_row for rows, per_row in residual_rows if rows == 3]
    assert in_front and all(per_row[0] == 0 and min(per_row[1:]) > 0 for per_row in in_front)
