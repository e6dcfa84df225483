"""Tier 2: Apply DQFormer inside a real ComfyUI: the state features Decompose Prompt into States gives (a tiny
Qwen2-VL), condition tokens beside CLIP's in every attn2, the same prediction as the trainer's UNet."""
import pytest
import torch

from comfyui_i2v_adapter.kernels.dqformer import DQFormer, DQFormerShape
from comfyui_i2v_adapter.kernels.dqformer_file import read_dqformer, write_dqformer
from comfyui_i2v_adapter.kernels.unet_layout import SD15, SDXL
from comfyui_i2v_adapter.tests.support.graphs import FRAMES, apply_adapter, random_adapter, sample, video_latent
from comfyui_i2v_adapter.tests.support.images import astronaut
from comfyui_i2v_adapter.tests.support.tiny_vlms import write_tiny_vlm

pytestmark = pytest.mark.comfyui
SMALL = dict(width=64, layers=2, heads=4, queries=8)


@pytest.fixture(scope="module")
def states(tmp_path_factory, sd15):
    """Decompose Prompt into States on a random tiny Qwen2-VL, for a FRAMES-frame latent: its state features."""
    import folder_paths

    from comfyui_i2v_adapter.kernels.state_prompt import AID_TEMPLATE
    from comfyui_i2v_adapter.nodes.state_decomposition_nodes import DecomposePromptIntoStates, LoadVisionLanguageModel

    root = tmp_path_factory.mktemp("LLM")
    folder_paths.add_model_folder_path("LLM", str(root))
    write_tiny_vlm(root / "tiny-vlm")
    vlm = LoadVisionLanguageModel.execute("tiny-vlm", "default", "auto", False, False).result[0]
    latent = {"samples": torch.zeros(FRAMES, 4, 8, 8)}
    return DecomposePromptIntoStates.execute(vlm, sd15[1], astronaut(), "an astronaut waves", 2, latent, 1.0,
                                             AID_TEMPLATE, 8, 0.0, 0, 256).result[4]


def dqformer_file(tmp_path, states, family=SD15, trained=True, feature_dim=None, seed=3):
    torch.manual_seed(seed)
    model = DQFormer(DQFormerShape(feature_dim or states.features.hidden_size, family.context_dim, **SMALL))
    if trained:
        torch.nn.init.normal_(model.proj_out.weight, std=0.5)
    write_dqformer(tmp_path / "dq.safetensors", model, family, states.features.model)
    return read_dqformer(tmp_path / "dq.safetensors")


def apply(model, dqformer, states, weight=1.0):
    from comfyui_i2v_adapter.nodes.dqformer_nodes import ApplyDQFormer
    return ApplyDQFormer.execute(model, dqformer, states, weight).result[0]


def unet_calls(model, clip, latent, cfg=3.0):
    """Every UNet call's (input, timesteps, context, output, cond_or_uncond) of a one-step sampling."""
    import comfy.patcher_extension
    calls = []

    def record(executor, x, timesteps, context, y, control, transformer_options, **kwargs):
        out = executor(x, timesteps, context, y, control, transformer_options, **kwargs)
        calls.append((x.clone(), timesteps.clone(), context.clone(), out.clone(), transformer_options["cond_or_uncond"]))
        return out
    model = model.clone()
    model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "record", record)
    sample(model, clip, latent, steps=1, cfg=cfg)
    return calls


def test_an_untrained_dqformer_samples_bit_for_bit_like_the_plain_model(sd15, states, tmp_path):
    model, clip, vae = sd15
    latent = video_latent(vae)
    assert torch.equal(sample(apply(model, dqformer_file(tmp_path, states, trained=False), states), clip, latent),
                       sample(model, clip, latent))


def test_condition_tokens_reach_the_conditional_side_only(sd15, states, tmp_path):
    model, clip, vae = sd15
    latent = video_latent(vae)
    plain = unet_calls(model, clip, latent)[0]
    patched = unet_calls(apply(model, dqformer_file(tmp_path, states), states), clip, latent)[0]
    sides = patched[4]
    chunk = lambda out, side: out[sides.index(side) * FRAMES:(sides.index(side) + 1) * FRAMES]
    assert torch.equal(chunk(patched[3], 1), chunk(plain[3], 1))
    assert (chunk(patched[3], 0) - chunk(plain[3], 0)).abs().amax(dim=(1, 2, 3)).min() > 1e-4  # every frame


def test_the_trainer_predicts_what_comfyuis_dqformer_model_predicts(sd15, states, tmp_path, comfy_base, comfyui):
    """Same checkpoint, I2V-Adapter, DQFormer and state features: the trainer's UNet with its attn2 processor gives
    ComfyUI's noise prediction on the conditional side."""
    from comfyui_i2v_adapter.training.base_checkpoint import load_base
    from comfyui_i2v_adapter.training.video_unet import StateInputs, VideoUNet

    model, clip, vae = sd15
    latent, adapter, dqformer = video_latent(vae), random_adapter(seed=4), dqformer_file(tmp_path, states)
    x, timesteps, context, comfy_out, _ = unet_calls(apply(apply_adapter(model, adapter, latent), dqformer, states),
                                                     clip, latent, cfg=1.0)[0]
    base = load_base(comfy_base / "models/checkpoints/random_sd15.safetensors", comfyui / "comfy/sd1_tokenizer")
    trainer_model = VideoUNet(base.unet, SD15, adapter.build(), dqformer=dqformer.build())
    f = states.features
    inputs = StateInputs(f.instruction, f.instruction_mask, f.states[None], f.states_mask[None], states.weights[None],
                         torch.ones(1, dtype=torch.bool))
    with torch.no_grad():
        trainer_out = trainer_model(x[None], timesteps[:1], context[:1], states=inputs)
    trainer_model.remove()
    assert (trainer_out[0] - comfy_out).abs().max() / comfy_out.abs().max() < 1e-4


def test_stacks_with_the_adapter_in_either_order(sd15, states, tmp_path):
    model, clip, vae = sd15
    latent, adapter, dqformer = video_latent(vae), random_adapter(), dqformer_file(tmp_path, states)
    first = sample(apply(apply_adapter(model, adapter, latent), dqformer, states), clip, latent)
    second = sample(apply_adapter(apply(model, dqformer, states), adapter, latent), clip, latent)
    assert torch.equal(first, second) and torch.equal(first[0], latent["samples"][0])


def test_a_lora_applied_after_reaches_the_condition_tokens_keys_and_values(sd15, states, tmp_path):
    """The tokens' keys and values are projected once per sampling: a LoRA applied after Apply DQFormer (the same
    patch objects, other weights) samples what Apply DQFormer on the LoRA'd model does, and the model without it
    samples what it sampled before; under inference mode, as ComfyUI's executor runs a prompt."""
    import comfy.sd
    import comfy.utils

    from comfyui_i2v_adapter.tests.support.random_models import write_random_lora_sd15

    model, clip, vae = sd15
    latent, dqformer = video_latent(vae), dqformer_file(tmp_path, states)
    write_random_lora_sd15(tmp_path / "lora.safetensors")
    lora = comfy.utils.load_torch_file(str(tmp_path / "lora.safetensors"), safe_load=True)
    with_lora = lambda m: comfy.sd.load_lora_for_models(m, None, lora, 1.0, 0.0)[0]
    ours = apply(model, dqformer, states)
    with torch.inference_mode():
        before = sample(ours, clip, latent)
        after = sample(with_lora(ours), clip, latent)
        assert torch.equal(after, sample(apply(with_lora(model), dqformer, states), clip, latent))
        assert not torch.allclose(after, before, atol=1e-3)
        assert torch.equal(sample(ours, clip, latent), before)


def test_context_windows_take_each_frames_tokens(sd15, states, tmp_path):
    """ComfyUI's context windows of 2 frames on 4, with the I2V-Adapter (windows without frame 0 get the reference
    in front): the tokens reach every window, and zero tokens leave every window as it was."""
    from comfy_extras.nodes_context_windows import ContextWindowsManualNode
    model, clip, vae = sd15
    latent, adapter = video_latent(vae), random_adapter()
    windows = lambda m: ContextWindowsManualNode.execute(m, 2, 1, "standard_static", 1, False, "pyramid", 0).result[0]
    # 3 steps for 4 frames: ComfyUI 0.3.64's context windows compare the step's sigmas with the batch elementwise.
    run = lambda dq: sample(windows(apply(apply_adapter(model, adapter, latent), dq, states) if dq else
                                    apply_adapter(model, adapter, latent)), clip, latent, steps=3)
    plain = run(None)
    assert torch.equal(run(dqformer_file(tmp_path, states, trained=False)), plain)
    trained = run(dqformer_file(tmp_path, states))
    assert torch.equal(trained[0], latent["samples"][0])
    assert all((trained[i] - plain[i]).abs().max() > 1e-4 for i in range(1, FRAMES))


def test_another_latent_than_the_states_were_made_for_is_refused(sd15, states, tmp_path):
    model, clip, vae = sd15
    with pytest.raises(ValueError, match=f"state features are for a video of {FRAMES} frames .* the sampler got 6"):
        sample(apply(model, dqformer_file(tmp_path, states), states), clip, video_latent(vae, frames=6))


def test_a_dqformer_for_another_model_width_or_family_is_refused(sd15, states, tmp_path):
    from comfyui_i2v_adapter.tests.support.random_models import meta_sdxl_model
    model, _, _ = sd15
    with pytest.raises(ValueError, match="reads hidden states 96 wide .* tiny-vlm gives 64"):
        apply(model, dqformer_file(tmp_path, states, feature_dim=96), states)
    with pytest.raises(ValueError, match="is for SDXL but the MODEL is SD1.5"):
        apply(model, dqformer_file(tmp_path, states, family=SDXL), states)
    with pytest.raises(ValueError, match="is for SD1.5 but the MODEL is SDXL"):
        apply(meta_sdxl_model(), dqformer_file(tmp_path, states), states)


def test_a_vision_language_model_without_hidden_states_is_named(sd15, states, tmp_path):
    """Decompose Prompt into States still answers with such a model; Apply DQFormer says why it cannot use it."""
    from comfyui_i2v_adapter.nodes.vlm_answer import DecomposedStates

    without = DecomposedStates("some-vlm", None, states.weights)
    with pytest.raises(ValueError, match="Apply DQFormer: some-vlm returns no hidden states, which the DQFormer reads"):
        apply(sd15[0], dqformer_file(tmp_path, states), without)
