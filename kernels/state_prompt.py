"""The question put to a vision-language model: AID's state-decomposition prompt, with the user's instruction and
the number of states filled in."""

INSTRUCTION = "{instruction}"
STATES = "{states}"

# AID (supplementary, MLLM prompt) word for word, with "[video prompt]" and "four" as placeholders; the image is
# attached to the chat message, so "<image>" reads "image".
AID_TEMPLATE = (
    'I have a prompt "{instruction}" for video generation. This prompt guides the process of generating a video from '
    "the given image. Can you describe this process in separate states? Each state should be described in only one "
    "sentence, and please ensure the descriptions between states are coherent. Be straightforward and avoid a "
    "narrative style. Additionally, can you align the description with the provided image? There should be "
    "{states} states in total.")

_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                 "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty")


def number_word(n: int) -> str:
    """"four" as in AID's prompt; digits past twenty."""
    return _NUMBER_WORDS[n] if 0 <= n < len(_NUMBER_WORDS) else str(n)


def state_question(template: str, instruction: str, states: int) -> str:
    """The template with {instruction} and {states} replaced (plain replacement: other braces stay as written)."""
    instruction = " ".join(instruction.split())
    if not instruction:
        raise ValueError("instruction is empty: write what should happen in the video, e.g. "
                         "'tearing paper into two pieces'.")
    if INSTRUCTION not in template:
        raise ValueError(f"template has no {INSTRUCTION} placeholder, so the model would never see the instruction; "
                         f"put {INSTRUCTION} where it belongs (and {STATES} where the number of states goes).")
    return template.replace(INSTRUCTION, instruction).replace(STATES, number_word(states))
