"""Tiny vision-language models with the real architectures transformers ships (Qwen2-VL, Qwen2.5-VL, Qwen3-VL,
SmolVLM), written as Hugging Face folders laid out like a download, plus folders that are no such model.

Random weights answer noise; `teach_answer` trains a tiny model for a few seconds until, asked exactly what the
node asks, it answers a given text greedily, so the nodes meet real generated answers.
"""
import json
from pathlib import Path

import torch
import transformers as T
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from ...kernels.state_prompt import AID_TEMPLATE

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>"]
# Qwen's chat format: string content, or a list of image and text parts.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
# Merges learnt from the text the tests use keep their token sequences short.
CORPUS = [AID_TEMPLATE, "user assistant", "1. 2. 3. 4. State 1: Sure! Here are the four states:",
          "A hand holds a sheet of paper. The hands pull the paper apart. The paper tears in two pieces.",
          "The astronaut stands still, raises the arm, waves and smiles."]
TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            max_position_embeddings=2048)
QWEN_FAMILIES = {
    "qwen2_vl": (T.Qwen2VLConfig, T.Qwen2VLForConditionalGeneration, T.Qwen2VLProcessor,
                 dict(min_pixels=56 * 56, max_pixels=112 * 112, patch_size=14),
                 dict(depth=2, embed_dim=32, hidden_size=64, num_heads=4, mlp_ratio=2, patch_size=14,
                      spatial_merge_size=2, temporal_patch_size=2),
                 dict(rope_scaling={"type": "mrope", "mrope_section": [4, 2, 2]})),
    "qwen2_5_vl": (T.Qwen2_5_VLConfig, T.Qwen2_5_VLForConditionalGeneration, T.Qwen2_5_VLProcessor,
                   dict(min_pixels=56 * 56, max_pixels=112 * 112, patch_size=14),
                   dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=4, out_hidden_size=64,
                        patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=56,
                        fullatt_block_indexes=[1]),
                   dict(rope_scaling={"type": "mrope", "mrope_section": [4, 2, 2]})),
    "qwen3_vl": (T.Qwen3VLConfig, T.Qwen3VLForConditionalGeneration, T.Qwen3VLProcessor,
                 dict(min_pixels=64 * 64, max_pixels=128 * 128, patch_size=16),
                 dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=4, out_hidden_size=64, patch_size=16,
                      spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=64,
                      deepstack_visual_indexes=[1]),
                 dict(head_dim=16, rope_scaling={"rope_type": "default", "mrope_section": [4, 2, 2],
                                                 "mrope_interleaved": True})),
}
FAMILIES = [*QWEN_FAMILIES, "smolvlm"]


def _bpe(special_tokens: list[str]) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(CORPUS * 4, trainers.BpeTrainer(
        vocab_size=700, special_tokens=special_tokens, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return tokenizer


def _tokenizer() -> T.PreTrainedTokenizerFast:
    # Qwen's own tokenizer class, as the downloads have: transformers before 5 checks a processor's tokenizer class.
    return T.Qwen2TokenizerFast(tokenizer_object=_bpe(SPECIAL_TOKENS), eos_token="<|im_end|>",
                                     pad_token="<|endoftext|>")


def write_tiny_vlm(folder: Path, family: str = "qwen2_vl", seed: int = 0) -> Path:
    """A random-weight model of `family` with its processor, tokenizer and chat template, as a download has them."""
    if family == "smolvlm":
        return _write_smolvlm(folder, seed)
    config_class, model_class, processor_class, image, vision, text = QWEN_FAMILIES[family]
    tokenizer = _tokenizer()
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    video_processor = (T.Qwen3VLVideoProcessor if family == "qwen3_vl" else T.Qwen2VLVideoProcessor)()
    processor = processor_class(image_processor=T.Qwen2VLImageProcessor(**image), tokenizer=tokenizer,
                                video_processor=video_processor, chat_template=CHAT_TEMPLATE)
    config = config_class(
        text_config=dict(TEXT, vocab_size=len(tokenizer), bos_token_id=None, eos_token_id=ids["<|im_end|>"],
                         pad_token_id=ids["<|endoftext|>"], **text),
        vision_config=vision, image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    torch.manual_seed(seed)
    model = model_class(config).eval()
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


# SmolVLM (Idefics3 vision tower, Llama text model): its own special tokens and "User:/Assistant:" chat format.
SMOLVLM_TOKENS = ["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<image>", "<fake_token_around_image>",
                  "<global-img>"] + [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]
SMOLVLM_TEMPLATE = (
    "<|im_start|>{% for m in messages %}{{ m['role'] | capitalize }}:{% if m['content'] is string %} "
    "{{ m['content'] }}{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>{% else %} "
    "{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}")


def _write_smolvlm(folder: Path, seed: int) -> Path:
    tokenizer = T.PreTrainedTokenizerFast(
        tokenizer_object=_bpe(SMOLVLM_TOKENS), eos_token="<end_of_utterance>", pad_token="<|endoftext|>",
        bos_token="<|im_start|>", extra_special_tokens={
            "image_token": "<image>", "fake_image_token": "<fake_token_around_image>",
            "global_image_token": "<global-img>", "end_of_utterance_token": "<end_of_utterance>"})
    ids = tokenizer.convert_tokens_to_ids
    image_processor = T.SmolVLMImageProcessor(do_image_splitting=False, size={"longest_edge": 64},
                                              max_image_size={"longest_edge": 32})
    processor = T.SmolVLMProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                   video_processor=T.SmolVLMVideoProcessor(), image_seq_len=16,
                                   chat_template=SMOLVLM_TEMPLATE)
    config = T.SmolVLMConfig(
        text_config=dict(TEXT, model_type="llama", vocab_size=len(tokenizer), pad_token_id=ids("<|endoftext|>"),
                         bos_token_id=ids("<|im_start|>"), eos_token_id=ids("<end_of_utterance>")),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                           image_size=32, patch_size=8),
        image_token_id=ids("<image>"), scale_factor=1)
    torch.manual_seed(seed)
    model = T.SmolVLMForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = ids("<end_of_utterance>")
    model.generation_config.pad_token_id = ids("<|endoftext|>")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def teach_answer(folder: Path, inputs, answer: str, steps: int = 400) -> None:
    """Train the model in `folder` until greedy decoding of `inputs` (the processor's tensors for the node's
    question, from kernels.vlm_io.chat_inputs) gives `answer`, each token ahead of the next best by a logit margin
    that survives another process's arithmetic, then save it in place. One thread: a model this small gains nothing
    from more, and on a busy 2-core machine their spin-waits made training up to 40 times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _teach(folder, inputs, answer, steps)
    finally:
        torch.set_num_threads(threads)


def _teach(folder: Path, inputs, answer: str, steps: int, margin: float = 2.0) -> None:
    processor = T.AutoProcessor.from_pretrained(folder, local_files_only=True)
    model = T.AutoModelForImageTextToText.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
    prompt_length = inputs["input_ids"].shape[1]
    answer_ids = processor.tokenizer(answer, add_special_tokens=False, return_tensors="pt")["input_ids"]
    answer_ids = torch.cat([answer_ids, torch.tensor([[model.generation_config.eos_token_id]])], dim=1)
    batch = dict(inputs)
    batch["input_ids"] = torch.cat([inputs["input_ids"], answer_ids], dim=1)
    for key, fill in (("attention_mask", 1), ("mm_token_type_ids", 0)):
        if key in batch:
            batch[key] = torch.cat([inputs[key], torch.full_like(answer_ids, fill)], dim=1)
    labels = batch["input_ids"].clone()
    labels[:, :prompt_length] = -100
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    for _ in range(steps):
        model.train()
        output = model(**batch, labels=labels)
        if _smallest_margin(output.logits[0, prompt_length - 1:-1], answer_ids[0]) > margin and \
                _greedy_answer(model, processor, inputs, answer_ids.shape[1] + 4) == answer:
            model.save_pretrained(folder)
            return
        optimizer.zero_grad()
        output.loss.backward()
        optimizer.step()
    raise RuntimeError(f"the tiny model did not learn the answer in {steps} steps (loss {output.loss.item():.4f})")


def _smallest_margin(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """How far each answer token's logit is ahead of the best other token, at the closest position."""
    logits = logits.detach()
    target = logits.gather(1, targets[:, None])[:, 0]
    others = logits.scatter(1, targets[:, None], float("-inf")).max(1).values
    return (target - others).min().item()


def _greedy_answer(model, processor, inputs, max_new_tokens: int) -> str:
    model.eval()
    with torch.no_grad():
        tokens = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return processor.decode(tokens[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def write_text_only_model(folder: Path) -> Path:
    """A language model that cannot see images (Qwen2 causal LM), saved like a download."""
    config = T.Qwen2Config(vocab_size=64, **TEXT)
    T.Qwen2ForCausalLM(config).save_pretrained(folder)
    return folder


def write_remote_code_model(folder: Path) -> Path:
    """A folder whose model_type transformers does not know and whose config.json points at its own code."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({
        "model_type": "tiny_custom_vlm", "architectures": ["TinyCustomVLM"],
        "auto_map": {"AutoConfig": "configuration_tiny.TinyConfig",
                     "AutoModelForImageTextToText": "modeling_tiny.TinyCustomVLM"}}))
    (folder / "modeling_tiny.py").write_text("raise RuntimeError('remote code ran')\n")
    return folder
