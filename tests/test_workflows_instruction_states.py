"""Tier 2: the shipped instruction-states and DQFormer workflows on a real ComfyUI server: a tiny Qwen2-VL in the
server's models/LLM answers the workflow's own question, and its states condition the KSampler frame by frame (and,
through a DQFormer, add condition tokens)."""
import pytest

from comfyui_i2v_adapter.evaluation.comfy_client import PromptRejected
from comfyui_i2v_adapter.evaluation.workflow_api import node_of_type
from comfyui_i2v_adapter.kernels.adapter_file import write_adapter
from comfyui_i2v_adapter.kernels.first_frame_attention import I2VAdapter
from comfyui_i2v_adapter.kernels.state_prompt import state_question
from comfyui_i2v_adapter.kernels.unet_layout import SD15
from comfyui_i2v_adapter.tests.support.images import astronaut
from comfyui_i2v_adapter.tests.support.prompt_travel import animatediff_evolved_parse, fizznodes_parse
from comfyui_i2v_adapter.tests.support.tiny_vlms import teach_answer, write_tiny_vlm
from comfyui_i2v_adapter.tests.support.workflows import TEST_FILES, run_workflow, workflow_prompt

pytestmark = pytest.mark.comfyui
WORKFLOW = "i2v_instruction_states.json"
DQFORMER_WORKFLOW = "i2v_dqformer.json"
STATES = ["The astronaut stands still, holding the flag pole.", "The astronaut lifts the flag above the helmet.",
          "The astronaut waves the flag from side to side.", "The astronaut lowers the flag and smiles."]


@pytest.fixture(scope="module")
def prompt(server):
    """The workflow in API form, with a tiny Qwen2-VL that answers its question (instruction, template, state
    count, reference picture as the node shows it) in numbered states, and an adapter file where it has none."""
    from transformers import AutoProcessor

    from comfyui_i2v_adapter.kernels.vlm_io import chat_inputs
    from comfyui_i2v_adapter.nodes.vlm_answer import pictures

    prompt = workflow_prompt(server, WORKFLOW)
    asked = prompt[node_of_type(prompt, "I2V_DecomposePromptIntoStates")]["inputs"]
    folder = write_tiny_vlm(server.base / "models/LLM" / TEST_FILES["model_folder"])
    question = state_question(asked["template"], asked["instruction"], asked["states"])
    inputs = chat_inputs(AutoProcessor.from_pretrained(folder, local_files_only=True),
                         pictures(astronaut(), asked["max_image_side"]), question)
    teach_answer(folder, inputs, "\n".join(f"{i}. {s}" for i, s in enumerate(STATES, 1)))
    adapter = server.base / "models/i2v_adapter" / TEST_FILES["adapter_name"]
    if not adapter.exists():
        write_adapter(adapter, I2VAdapter(SD15).state_dict(), SD15)
    return prompt


def preview_of(prompt: dict, outputs: dict, source_slot: int) -> str:
    decompose = node_of_type(prompt, "I2V_DecomposePromptIntoStates")
    (node,) = [k for k, v in prompt.items() if v["class_type"] == "PreviewAny"
               and v["inputs"]["source"] == [decompose, source_slot]]
    return outputs[node]["text"][0]


def test_instruction_states_workflow_makes_a_video_conditioned_on_the_models_states(server, prompt):
    result = run_workflow(server, prompt)
    assert result.video_frames == 16 and result.video_size == (64, 64)
    assert (result.sampled[0] == result.video_latent[0]).all()
    assert preview_of(prompt, result.outputs, 1) == "\n".join(f"{i}. {s}" for i, s in enumerate(STATES, 1))
    schedule = preview_of(prompt, result.outputs, 2)
    assert fizznodes_parse(schedule) == animatediff_evolved_parse(schedule) == dict(zip([0, 4, 8, 12], STATES))


def test_a_missing_model_folder_is_refused_naming_the_folders_searched(server, prompt):
    prompt = workflow_prompt(server, WORKFLOW)  # every output depends on the model: nothing may run
    prompt[node_of_type(prompt, "I2V_LoadVisionLanguageModel")]["inputs"]["model_folder"] = "Qwen3-VL-2B-Instruct"
    with pytest.raises(PromptRejected, match=r"'Qwen3-VL-2B-Instruct' was not found in models/LLM \(searched: "):
        server.run(prompt)


def test_the_dqformer_workflow_adds_tokens_from_the_models_states(server, prompt):
    """i2v_dqformer.json asks the same question as the instruction-states graph (so the taught model answers it),
    and Apply DQFormer's tokens change the frames it generates; at weight 0 it samples what the graph without it
    samples."""
    import json

    import torch

    from comfyui_i2v_adapter.kernels.dqformer import DQFormer, DQFormerShape
    from comfyui_i2v_adapter.kernels.dqformer_file import write_dqformer

    graph = workflow_prompt(server, DQFORMER_WORKFLOW)
    decompose = lambda p: {k: v for k, v in p[node_of_type(p, "I2V_DecomposePromptIntoStates")]["inputs"].items()
                           if not isinstance(v, list)}
    assert decompose(graph) == decompose(prompt)
    folder = server.base / "models/LLM" / TEST_FILES["model_folder"]
    hidden = json.loads((folder / "config.json").read_text())
    hidden = hidden.get("text_config", hidden)["hidden_size"]
    torch.manual_seed(0)
    model = DQFormer(DQFormerShape(hidden, SD15.context_dim, width=64, layers=2, heads=4, queries=8))
    torch.nn.init.normal_(model.proj_out.weight, std=0.5)  # as if trained: not zero
    name = graph[node_of_type(graph, "I2V_LoadDQFormer")]["inputs"]["dqformer_name"]
    (server.base / "models/dqformer").mkdir(exist_ok=True)
    write_dqformer(server.base / "models/dqformer" / name, model, SD15, folder.name)

    with_tokens = run_workflow(server, graph)
    assert with_tokens.video_frames == 16 and torch.equal(with_tokens.sampled[0], with_tokens.video_latent[0])
    graph[node_of_type(graph, "I2V_ApplyDQFormer")]["inputs"]["weight"] = 0.0
    without = run_workflow(server, graph)
    assert all((with_tokens.sampled[i] - without.sampled[i]).abs().max() > 1e-3 for i in range(1, 16))
    assert torch.equal(without.sampled, run_workflow(server, prompt).sampled)
