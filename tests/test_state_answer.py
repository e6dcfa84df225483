"""Tier 1: reading states out of what vision-language models really write, and the question they are asked."""
import pytest

from comfyui_i2v_adapter.kernels.state_answer import answer_states, parse_answer, states_text
from comfyui_i2v_adapter.kernels.state_prompt import AID_TEMPLATE, state_question
from comfyui_i2v_adapter.kernels.state_schedule import schedule_string

PAPER = ["Two hands hold a white sheet of paper at its top corners.",
         "The hands pull apart and a tear starts at the top edge.",
         "The tear runs down the middle of the sheet.",
         "The paper is split into two pieces, one in each hand."]

# Answers in the forms instruction-tuned VLMs (Qwen2.5-VL, Qwen3-VL, SmolVLM, LLaVA) give to AID's question.
WELL_FORMED = {
    "numbered": "\n".join(f"{i}. {s}" for i, s in enumerate(PAPER, 1)),
    "numbered with parentheses": "\n".join(f"{i}) {s}" for i, s in enumerate(PAPER, 1)),
    "State k:": "\n".join(f"State {i}: {s}" for i, s in enumerate(PAPER, 1)),
    "bold State k with blank lines": "\n\n".join(f"**State {i}:** {s}" for i, s in enumerate(PAPER, 1)),
    "chatty, titled markdown": ("Sure! Here are the four states:\n\n"
                                + "\n".join(f"{i}. **{t}:** {s}" for i, (t, s) in enumerate(
                                    zip(["Initial state", "Tearing begins", "Tearing continues", "Final state"],
                                        PAPER), 1))
                                + "\n\nI hope this helps! Let me know if you need more detail."),
    "headings with the sentence below": "\n\n".join(f"### State {i}\n{s}" for i, s in enumerate(PAPER, 1)),
    "heading with a title, sentence below": "\n\n".join(f"**State {i}: Step**\n{s}" for i, s in enumerate(PAPER, 1)),
    "bullets": "Here is the process:\n" + "\n".join(f"- {s}" for s in PAPER),
    "star bullets": "\n".join(f"* {s}" for s in PAPER),
    "all on one line": " ".join(f"{i}. {s}" for i, s in enumerate(PAPER, 1)),
    "State k: on one line": " ".join(f"State {i}: {s}" for i, s in enumerate(PAPER, 1)),
    "prose": "Here are the states: " + " ".join(PAPER) + " I hope this helps!",
    "thinking first": "<think>The user wants 4 states. 1. maybe hands. 2. tear.</think>\n\n"
                      + "\n".join(f"{i}. {s}" for i, s in enumerate(PAPER, 1)),
    "wrapped lines": "\n".join(f"{i}. {s[:20]}\n{s[20:].strip()}" if s[20] == " " else f"{i}. {s}"
                               for i, s in enumerate(PAPER, 1)),
    "quoted": "\n".join(f'{i}. "{s}"' for i, s in enumerate(PAPER, 1)),
}


@pytest.mark.parametrize("answer", WELL_FORMED.values(), ids=WELL_FORMED.keys())
def test_well_formed_answers_give_the_four_states(answer):
    result = parse_answer(answer, 4, "tearing paper into two pieces")
    assert result.states == PAPER and result.found == 4 and result.notes == []


def test_a_wrapped_line_continues_its_state():
    assert answer_states("1. The hand grips\nthe paper firmly.\n2. The paper tears.") == [
        "The hand grips the paper firmly.", "The paper tears."]


def test_a_closing_remark_right_below_the_last_state_is_not_part_of_it():
    assert answer_states("1. The hand grips the paper.\n2. The paper tears.\nThat is the whole process.") == [
        "The hand grips the paper.", "The paper tears."]


# A colon inside a state is part of the sentence, even after a short clause or a word such as "steps" or "stage".
CLAUSES = ["The cat rises: its back arches slowly.",
           "The cat steps off the mat: its paws spread.",
           "A dancer walks onto the stage: the lights dim.",
           "It stops: the tail stays up."]
CLAUSE_ANSWERS = {
    "numbered": "\n".join(f"{i}. {s}" for i, s in enumerate(CLAUSES, 1)),
    "bullets": "\n".join(f"- {s}" for s in CLAUSES),
    "State k:": "\n".join(f"State {i}: {s}" for i, s in enumerate(CLAUSES, 1)),
    "bold titles": "\n".join(f"{i}. **Moment {i}:** {s}" for i, s in enumerate(CLAUSES, 1)),
    "prose": " ".join(CLAUSES),
    "prose after an intro": "The video unfolds in four stages: " + " ".join(CLAUSES),
}


@pytest.mark.parametrize("answer", CLAUSE_ANSWERS.values(), ids=CLAUSE_ANSWERS.keys())
def test_a_clause_before_a_colon_is_part_of_the_state(answer):
    result = parse_answer(answer, 4, "a cat wakes up")
    assert result.states == CLAUSES and result.notes == []
    assert states_text(result).startswith("1. The cat rises: its back arches slowly.\n")
    assert schedule_string(result.states, 16).startswith('"0": "The cat rises: its back arches slowly.",\n')


@pytest.mark.parametrize("item, state", [
    ("State 1: Gripping the paper.", "Gripping the paper."),
    ("- **Start**: the cat sits.", "the cat sits."),
    ("1. Beginning: the cat sits.", "the cat sits."),
    ("2. Middle stage: the cat stands.", "the cat stands."),
    ("4. The end: the cat sleeps.", "the cat sleeps."),
    ("- Initial state: the cat sleeps.", "the cat sleeps."),
    ("3. Final Position: the cat lies down.", "the cat lies down."),
    ("1. **The paper starts to tear:** a split opens.", "a split opens."),
    ("1. __Frames 0-3__: the cat sits.", "the cat sits."),
])
def test_a_title_before_a_colon_is_not_part_of_the_state(item, state):
    assert answer_states(item) == [state]


def test_too_many_states_are_cut_and_the_text_says_so():
    answer = "\n".join(f"Step {i}: Event number {i} happens." for i in range(1, 8))
    result = parse_answer(answer, 4, "x")
    assert result.states == [f"Event number {i} happens." for i in range(1, 5)] and result.found == 7
    assert states_text(result).endswith("\n\nNote: The model gave 7 states for 4: the first 4 are used.")


def test_too_few_states_are_repeated_in_order_and_the_text_says_so():
    result = parse_answer("1. The dog sits.\n2. The dog stands up.\n3. The dog runs.", 4, "a dog runs")
    assert result.states == ["The dog sits.", "The dog sits.", "The dog stands up.", "The dog runs."]
    assert "Note: The model gave 3 states for 4: each is repeated to fill 4 states in order." in states_text(result)
    one = parse_answer("The dog runs across the lawn.", 3, "a dog runs")
    assert one.states == ["The dog runs across the lawn."] * 3 and one.notes == [
        "The model gave 1 state for 3: each is repeated to fill 3 states in order."]


@pytest.mark.parametrize("answer", ["", "   \n\n", "...\n---\n12345", "<think>only thinking, cut off",
                                    "Sure! Here are the states:", "1.\n2.\n3."])
def test_an_answer_with_no_usable_state_falls_back_to_the_instruction(answer):
    result = parse_answer(answer, 4, "  tearing paper\ninto two pieces ")
    assert result.states == ["tearing paper into two pieces"] * 4 and result.found == 0
    assert states_text(result) == (
        "1. tearing paper into two pieces\n2. tearing paper into two pieces\n3. tearing paper into two pieces\n"
        "4. tearing paper into two pieces\n\nNote: No usable states in the model's answer: the instruction itself "
        "is used for all 4 states.")


def test_states_text_numbers_the_states_one_a_line():
    assert states_text(parse_answer(WELL_FORMED["numbered"], 4, "x")) == WELL_FORMED["numbered"]


def test_the_question_is_aids_prompt_with_instruction_and_count():
    question = state_question(AID_TEMPLATE, "  tearing paper\n into two pieces ", 4)
    assert question.startswith('I have a prompt "tearing paper into two pieces" for video generation. This prompt '
                               "guides the process of generating a video from the given image. Can you describe")
    assert question.endswith("There should be four states in total.")
    assert state_question(AID_TEMPLATE, "x", 25).endswith("There should be 25 states in total.")
    assert state_question("{instruction} in {states} {steps}", "jump", 3) == "jump in three {steps}"


def test_an_empty_instruction_is_refused():
    with pytest.raises(ValueError, match="instruction is empty: write what should happen in the video"):
        state_question(AID_TEMPLATE, " \n ", 4)


def test_a_template_without_the_instruction_is_refused():
    with pytest.raises(ValueError, match=r"template has no \{instruction\} placeholder"):
        state_question("Describe {states} states.", "jump", 4)
