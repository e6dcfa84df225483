"""Tier 2: Load Vision-Language Model and Decompose Prompt into States inside a real ComfyUI, with tiny
Qwen2-VL / Qwen2.5-VL / Qwen3-VL folders built here, the random SD1.5 checkpoint's CLIP, and real answers."""
import pytest
import torch

from comfyui_i2v_adapter.kernels.state_prompt import AID_TEMPLATE, state_question
from comfyui_i2v_adapter.kernels.state_schedule import schedule_string
from comfyui_i2v_adapter.tests.support.images import astronaut
from comfyui_i2v_adapter.tests.support.prompt_travel import animatediff_evolved_parse, fizznodes_parse
from comfyui_i2v_adapter.tests.support.tiny_vlms import (FAMILIES, teach_answer, write_remote_code_model,
                                                          write_text_only_model, write_tiny_vlm)

pytestmark = pytest.mark.comfyui
INSTRUCTION = "the astronaut raises the flag and waves"
ASTRONAUT = ["The astronaut stands still, holding the flag pole.", "The astronaut lifts the flag above the helmet.",
             "The astronaut waves the flag from side to side.", "The astronaut lowers the flag and smiles."]
CHATTY = ("Sure! Here are the four states:\n\n" + "\n".join(f"{i}. **Step {i}:** {s}" for i, s in enumerate(ASTRONAUT, 1))
          + "\n\nI hope this helps!")
MAX_TOKENS = 256
DEFAULTS = dict(instruction=INSTRUCTION, states=4, blend_frames=2.0, template=AID_TEMPLATE,
                max_new_tokens=MAX_TOKENS, temperature=0.0, max_image_side=768)


@pytest.fixture(scope="module")
def llm(tmp_path_factory, comfyui):
    """A models/LLM folder registered the way extra_model_paths.yaml adds one."""
    import folder_paths

    root = tmp_path_factory.mktemp("LLM")
    folder_paths.add_model_folder_path("LLM", str(root))
    return root


def node_inputs(folder, images, question):
    import transformers

    from comfyui_i2v_adapter.kernels.vlm_io import chat_inputs
    from comfyui_i2v_adapter.nodes.vlm_answer import pictures
    processor = transformers.AutoProcessor.from_pretrained(folder, local_files_only=True)
    return chat_inputs(processor, pictures(images, DEFAULTS["max_image_side"]), question)


def taught_model(llm, name, answer, images=None, instruction=INSTRUCTION):
    """A tiny Qwen2-VL that answers `answer` to the question the node asks about `images` (the astronaut)."""
    images = astronaut() if images is None else images
    folder = write_tiny_vlm(llm / name)
    teach_answer(folder, node_inputs(folder, images, state_question(AID_TEMPLATE, instruction, 4)), answer)
    return name


@pytest.fixture(scope="module")
def chatty_model(llm):
    return taught_model(llm, "taught-chatty", CHATTY)


def load(name, **options):
    from comfyui_i2v_adapter.nodes.state_decomposition_nodes import LoadVisionLanguageModel
    options = dict(dict(device="default", dtype="auto", keep_loaded=False, trust_remote_code=False), **options)
    return LoadVisionLanguageModel.execute(name, **options).result[0]


def forget_answers():
    """The node keeps the model's recent answers; forgetting them makes the next call ask the model."""
    from comfyui_i2v_adapter.nodes import state_decomposition_nodes
    state_decomposition_nodes._RECENT.clear()


@pytest.fixture(autouse=True)
def fresh_answers():
    forget_answers()


def decompose(vlm, clip, images=None, frames=16, seed=0, **inputs):
    """The node on a video latent of `frames` frames (the conditioning gets one row per frame): positive, states,
    schedule, answer and the state features."""
    from comfyui_i2v_adapter.nodes.state_decomposition_nodes import DecomposePromptIntoStates
    images = astronaut() if images is None else images
    latent = {"samples": torch.zeros(frames, 4, 8, 8)}
    return DecomposePromptIntoStates.execute(vlm, clip, images, **dict(DEFAULTS, latent=latent, sampling_seed=seed,
                                                                         **inputs)).result


def encoded(clip, text):
    import nodes
    cond, extras = nodes.CLIPTextEncode().encode(clip, text)[0][0]
    return cond[0], extras["pooled_output"][0]


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_loads_from_local_files_and_answers_greedily_through_the_node(llm, sd15, family):
    import transformers

    folder = write_tiny_vlm(llm / f"random-{family}")
    vlm = load(folder.name)
    positive, states, schedule, answer, _ = decompose(vlm, sd15[1], frames=8, max_new_tokens=12)
    model = transformers.AutoModelForImageTextToText.from_pretrained(folder, local_files_only=True)
    inputs = node_inputs(folder, astronaut(), state_question(AID_TEMPLATE, INSTRUCTION, 4))
    tokens = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    assert answer == vlm.processor.decode(tokens[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()
    assert type(vlm.model).__name__ == type(model).__name__ and vlm.model.dtype == torch.float32
    assert [line[:3] for line in states.splitlines()[:4]] == ["1. ", "2. ", "3. ", "4. "]
    assert list(fizznodes_parse(schedule)) == [0, 2, 4, 6]
    cond, extras = positive[0]
    assert cond.shape == (8, 77, 768) and extras["pooled_output"].shape == (8, 768)


def test_a_real_answer_becomes_the_states_the_schedule_and_the_frames_conditioning(chatty_model, sd15):
    clip = sd15[1]
    positive, states, schedule, answer, _ = decompose(load(chatty_model), clip)
    assert answer == CHATTY
    assert states == "\n".join(f"{i}. {s}" for i, s in enumerate(ASTRONAUT, 1))
    assert schedule == schedule_string(ASTRONAUT, 16)
    assert fizznodes_parse(schedule) == animatediff_evolved_parse(schedule) == dict(zip([0, 4, 8, 12], ASTRONAUT))
    cond, extras = positive[0]
    assert cond.shape == (16, 77, 768) and extras["pooled_output"].shape == (16, 768)
    state = [encoded(clip, s) for s in ASTRONAUT]
    for k, (first, last) in enumerate([(0, 2), (5, 6), (9, 10), (13, 15)]):  # frames away from any boundary
        for f in range(first, last + 1):
            assert torch.allclose(cond[f], state[k][0], atol=1e-5)
            assert torch.allclose(extras["pooled_output"][f], state[k][1], atol=1e-5)
    for b, k in ((4, 1), (8, 2), (12, 3)):  # blend width 2: a quarter of the next state before it starts
        assert torch.allclose(cond[b - 1], 0.75 * state[k - 1][0] + 0.25 * state[k][0], atol=1e-5)
        assert torch.allclose(cond[b], 0.25 * state[k - 1][0] + 0.75 * state[k][0], atol=1e-5)


def test_several_reference_images_reach_the_model_in_order(llm, sd15):
    pair = torch.cat([astronaut(), astronaut().flip(2)])
    name = taught_model(llm, "taught-two-images", "\n".join(f"State {i}: {s}" for i, s in enumerate(ASTRONAUT, 1)),
                        images=pair)
    folder = llm / name
    assert node_inputs(folder, pair, "q")["image_grid_thw"].shape[0] == 2
    _, states, _, _, _ = decompose(load(name), sd15[1], images=pair)
    assert states.splitlines() == [f"{i}. {s}" for i, s in enumerate(ASTRONAUT, 1)]


def test_progress_counts_new_tokens_and_an_interrupt_stops_generation(chatty_model, sd15):
    import comfy.model_management
    import comfy.utils

    updates = []
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: updates.append((value, total)))
    try:
        vlm = load(chatty_model)
        decompose(vlm, sd15[1])
        tokens = len(vlm.processor.tokenizer(CHATTY)["input_ids"]) + 1  # and the end-of-turn token
        assert updates == [(i, MAX_TOKENS) for i in range(1, tokens + 1)] + [(MAX_TOKENS, MAX_TOKENS)]
        updates.clear()
        forget_answers()  # the same question again
        comfy.model_management.interrupt_current_processing(True)
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            decompose(vlm, sd15[1])
        assert updates == [(1, MAX_TOKENS)] and not comfy.model_management.processing_interrupted()
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
        comfy.model_management.interrupt_current_processing(False)


def test_sampling_is_repeatable_with_its_seed_and_greedy_ignores_it(llm, sd15):
    vlm = load(write_tiny_vlm(llm / "random-for-sampling", seed=1).name)
    answer = {seed: decompose(vlm, sd15[1], temperature=1.0, seed=seed, max_new_tokens=16)[3] for seed in (1, 2)}
    assert decompose(vlm, sd15[1], temperature=1.0, seed=1, max_new_tokens=16)[3] == answer[1] != answer[2]
    assert decompose(vlm, sd15[1], seed=1, max_new_tokens=16)[3] == decompose(vlm, sd15[1], seed=2,
                                                                              max_new_tokens=16)[3]


def test_the_model_is_loaded_through_comfyui_once_per_run_and_kept_only_when_asked(chatty_model, sd15):
    import comfy.model_management
    from comfy.patcher_extension import CallbacksMP

    for keep_loaded in (False, True):
        forget_answers()
        vlm = load(chatty_model, keep_loaded=keep_loaded)
        trips = []
        vlm.patcher.add_callback(CallbacksMP.ON_LOAD, lambda *_: trips.append("load"))
        vlm.patcher.add_callback(CallbacksMP.ON_DETACH, lambda *_: trips.append("detach"))
        assert vlm.patcher.loaded_size() == 0
        decompose(vlm, sd15[1])
        assert trips == ["load"] if keep_loaded else ["load", "detach"]  # the answer and its features, one trip
        if keep_loaded:  # registered with ComfyUI, which unloads it when another model needs the memory
            assert vlm.patcher.loaded_size() == vlm.patcher.model_size()
            assert any(m is vlm.patcher for m in comfy.model_management.loaded_models())
            assert all(p.device == vlm.patcher.load_device for p in vlm.model.parameters())
        else:
            assert vlm.patcher.loaded_size() == 0
            assert all(p.device == vlm.patcher.offload_device for p in vlm.model.parameters())


def test_an_answer_with_no_usable_state_falls_back_to_the_instruction(llm, sd15):
    clip = sd15[1]
    positive, states, schedule, answer, _ = decompose(load(taught_model(llm, "taught-silent", "")), clip)
    assert answer == ""
    assert states.endswith("Note: No usable states in the model's answer: the instruction itself is used for all 4 "
                           "states.")
    assert fizznodes_parse(schedule) == dict.fromkeys([0, 4, 8, 12], INSTRUCTION)
    assert torch.allclose(positive[0][0], encoded(clip, INSTRUCTION)[0].expand(16, -1, -1), atol=1e-5)


def test_a_folder_without_a_model_says_what_it_found(llm):
    (llm / "not-a-model").mkdir()
    (llm / "not-a-model" / "qwen2.5-vl-3b-q4.gguf").write_bytes(b"GGUF")
    with pytest.raises(ValueError, match=r"'not-a-model' is not a Hugging Face model folder: it has no config\.json "
                                         r"\(found: qwen2\.5-vl-3b-q4\.gguf\)\. Put a vision-language model's whole "
                                         r"folder in models/LLM"):
        load("not-a-model")


def test_a_language_model_that_cannot_see_is_refused_naming_it(llm):
    write_text_only_model(llm / "text-only")
    with pytest.raises(ValueError, match=r"'text-only' holds a 'qwen2' model \(Qwen2ForCausalLM\), which is not a "
                                         r"vision-language model: it cannot look at the reference image\. Use an "
                                         r"image-text-to-text model such as Qwen2\.5-VL-3B-Instruct"):
        load("text-only")


def test_a_model_needing_its_own_code_is_refused_while_remote_code_is_off(llm):
    write_remote_code_model(llm / "custom-code")
    with pytest.raises(ValueError, match=r"'custom-code' needs its own Python code \(model_type 'tiny_custom_vlm' "
                                         r"has no class in transformers; .*switch trust_remote_code on in Load "
                                         r"Vision-Language Model"):
        load("custom-code")


def test_a_missing_folder_names_the_folders_searched(llm):
    from comfyui_i2v_adapter.nodes.state_decomposition_nodes import LoadVisionLanguageModel

    message = LoadVisionLanguageModel.validate_inputs("Qwen2.5-VL-3B-Instruct")
    assert message.startswith("'Qwen2.5-VL-3B-Instruct' was not found in models/LLM (searched: ")
    assert str(llm) in message


def test_models_grouped_one_level_down_are_listed(llm):
    from comfyui_i2v_adapter.nodes.vlm_model import model_folder_names

    write_text_only_model(llm / "Qwen-VL" / "inner-model")
    names = model_folder_names()
    assert "Qwen-VL/inner-model" in names and "Qwen-VL" not in names


def test_an_empty_instruction_is_refused_before_the_model_runs(chatty_model, sd15):
    with pytest.raises(ValueError, match="Decompose Prompt into States: instruction is empty: write what should "
                                         "happen in the video"):
        decompose(load(chatty_model), sd15[1], instruction="  ")


def test_more_states_than_frames_is_refused(chatty_model, sd15):
    with pytest.raises(ValueError, match=r"Decompose Prompt into States: states \(4\) is more than frames \(3\): "
                                         r"every state needs at least one frame"):
        decompose(load(chatty_model), sd15[1], frames=3)


def test_state_features_are_the_models_hidden_states_of_the_input_and_of_each_state(llm, chatty_model, sd15):
    """The instruction features are the last layer over the image and the question, as a forward pass over the
    question alone gives them (the model is causal); each state's rows are its sentence's tokens."""
    import transformers

    *_, decomposed = decompose(load(chatty_model), sd15[1], frames=8)
    features = decomposed.features
    model = transformers.AutoModelForImageTextToText.from_pretrained(llm / chatty_model, local_files_only=True)
    inputs = node_inputs(llm / chatty_model, astronaut(), state_question(AID_TEMPLATE, INSTRUCTION, 4))
    with torch.no_grad():
        alone = model(**inputs, output_hidden_states=True).hidden_states[-1][0]
    assert torch.allclose(features.instruction[0], alone, atol=1e-5) and features.instruction_mask.all()
    tokenizer = transformers.AutoProcessor.from_pretrained(llm / chatty_model, local_files_only=True).tokenizer
    lengths = [len(tokenizer(f"{i}. {s}\n", add_special_tokens=False)["input_ids"]) for i, s in enumerate(ASTRONAUT, 1)]
    assert features.states_mask.sum(dim=1).tolist() == lengths and features.model == chatty_model
    assert decomposed.weights.shape == (8, 4) and torch.allclose(decomposed.weights.sum(dim=1), torch.ones(8))


def test_a_requeue_with_other_settings_downstream_does_not_run_the_model_again(chatty_model, sd15):
    import comfy.utils

    vlm, updates = load(chatty_model), []
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: updates.append(value))
    try:
        first = decompose(vlm, sd15[1], frames=16)
        generated = len(updates)
        again = decompose(vlm, sd15[1], frames=8, blend_frames=0.0)
        assert generated > 0 and len(updates) == generated and again[3] == first[3]
        decompose(vlm, sd15[1], instruction="tearing paper slowly")
        assert len(updates) > generated  # another question: the model runs
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
