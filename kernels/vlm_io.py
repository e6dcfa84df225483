"""A vision-language model asked about images, with transformers alone (the nodes add ComfyUI's model management,
the trainer runs it as is): the chat inputs of one question, and what a DQFormer reads of the answer.

The DQFormer reads the last-layer hidden states over the model's input (the images and the question) and over each
state's sentence. One forward pass over the input followed by the states as they were parsed, written as a numbered
list, so that the tokens of every state are known exactly."""
from dataclasses import dataclass

import torch
from PIL import Image

_PER_TOKEN = {"attention_mask": 1, "mm_token_type_ids": 0}  # inputs with one entry per token, and their fill


def chat_inputs(processor, images: list[Image.Image], question: str):
    """The processor's tensors for one user turn: the images in order, then the question."""
    content = [{"type": "image", "image": picture} for picture in images] + [{"type": "text", "text": question}]
    return processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True,
                                         tokenize=True, return_dict=True, return_tensors="pt")


@dataclass
class StateFeatures:
    model: str                       # the vision-language model's name
    instruction: torch.Tensor        # [1, T, hidden]: over the images and the question
    instruction_mask: torch.Tensor   # [1, T] bool
    states: torch.Tensor             # [states, T', hidden], padded
    states_mask: torch.Tensor        # [states, T'] bool

    @property
    def hidden_size(self) -> int:
        return self.instruction.shape[-1]


def stack_padded(tensors: list[torch.Tensor], dim: int) -> torch.Tensor:
    """Tensors of different lengths along `dim` (tokens; negative), zero-padded to the longest and stacked."""
    length = max(t.shape[dim] for t in tensors)
    return torch.stack([torch.nn.functional.pad(t, [0, 0] * (-dim - 1) + [0, length - t.shape[dim]]) for t in tensors])


def padded(pieces: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """[n, longest, C] and its [n, longest] mask from n tensors [length_i, C]."""
    masks = [torch.ones(piece.shape[0], dtype=torch.bool) for piece in pieces]
    return stack_padded(pieces, -2), stack_padded(masks, -1)


@torch.no_grad()
def state_features(model, processor, inputs, states: list[str], name: str) -> StateFeatures | None:
    """`inputs`: chat_inputs of the question, on the model's device. Features on the CPU in fp32; None from a model
    that returns no hidden states (the caller that needs them says so)."""
    prompt = inputs["input_ids"].shape[1]
    tokenizer = getattr(processor, "tokenizer", processor)
    pieces = [tokenizer(f"{i}. {state}\n", add_special_tokens=False, return_tensors="pt")["input_ids"]
              for i, state in enumerate(states, 1)]
    answer = torch.cat(pieces, dim=1).to(inputs["input_ids"].device)
    batch = dict(inputs)
    batch["input_ids"] = torch.cat([inputs["input_ids"], answer], dim=1)
    for key, fill in _PER_TOKEN.items():
        if key in batch:
            batch[key] = torch.cat([inputs[key], torch.full_like(answer, fill)], dim=1)
    hidden = getattr(model(**batch, output_hidden_states=True), "hidden_states", None)
    if not hidden:
        return None
    hidden = hidden[-1][0].float().cpu()
    spans, start = [], prompt
    for piece in pieces:
        spans.append(hidden[start:start + piece.shape[1]])
        start += piece.shape[1]
    state_hidden, state_mask = padded(spans)
    return StateFeatures(name, hidden[None, :prompt], torch.ones(1, prompt, dtype=torch.bool), state_hidden,
                         state_mask)


def no_hidden_states(name: str, needed_by: str) -> ValueError:
    return ValueError(f"{needed_by}: {name} returns no hidden states, which the DQFormer reads; use a vision-language "
                      "model transformers loads with AutoModelForImageTextToText (e.g. Qwen2.5-VL, Qwen3-VL, SmolVLM).")
