"""Builds the tiny, randomly initialised models of the CPU end-to-end run, offline (no model hub here).

    python examples/cpu/build_tiny_models.py OUT_DIR [--text-only] [--warmup-rows TRAIN_PARQUET] [--warmup-greedy]
        [--judge-init-std S]

writes OUT_DIR/policy and OUT_DIR/judge: each a Qwen2.5-VL (Qwen2_5_VLForConditionalGeneration: a 1-block vision
tower and a 2-layer language model, hidden 64, head_dim 32) with its processor, or with --text-only a
Qwen2ForCausalLM of the same text size. The tokenizer is a byte-level BPE trained in memory, wrapped as
Qwen2TokenizerFast with the Qwen chat template and special tokens. Policy and judge differ only by their random
seed, and by the judge's initial weight scale (--judge-init-std, default transformers' 0.02; the Trust-GRPO demo
passes its JUDGE_INIT_STD, see demo.py). With --warmup-rows the policy gets a few seconds of format warm-up (see
format_warmup); --warmup-greedy (used by demo_eval.py only) makes that warm-up one that greedy decoding also finishes.
Takes a few seconds.
The Qwen2.5-VL processor needs torchvision (the e2e venv makes it importable).

vLLM on CPU needs head_dim >= 32; verl and vLLM need the tokenizer's ids below the model's vocab_size.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]  # vLLM's Qwen2.5-VL processing looks the video token up even for images

# The Qwen2 chat template, reduced: also accepts OpenAI-style content lists (text parts are concatenated).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% elif part['type'] in ['image', 'image_url'] %}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# A little text so that the BPE learns the tags and words the run produces; the weights are random anyway.
CORPUS = [
    "<think> First compute the sum, then check the result. </think> <answer> 42 </answer>",
    "<think> The area of a circle is pi r squared. </think> <answer> 3.14 </answer>",
    "Question: What is 3 + 5? Answer with the final number in <answer> </answer> tags.",
    "Which option is correct? A. 2 B. 4 C. 6 D. 8. Think step by step.",
    "You are a careful grader. Rate the reasoning process between 0 and 1.",
    "logical soundness, correct reasoning, error identification, language consistency, redundancy",
    "The image shows a triangle with sides 3, 4 and 5. Read the text in the image.",
    "0 0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9 1.0 1 2 3 4 5 6 7 8 9 10 100",
    "the a an of to in is are was were be this that with for on as by at from and or not yes no",
]


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(CORPUS * 20, trainer=trainer)
    tok = Qwen2TokenizerFast(
        tokenizer_object=bpe,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=SPECIAL_TOKENS[1:],
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def text_config(tokenizer) -> dict:
    """The language model's size and special ids, the same for Qwen2 and Qwen2.5-VL's text part. vocab_size is the
    tokenizer's length rounded up to a multiple of 64 (every token id must be below it)."""
    ids = {name: tokenizer.convert_tokens_to_ids(tok) for name, tok in
           (("bos", "<|endoftext|>"), ("eos", "<|im_end|>"), ("pad", "<|endoftext|>"))}  # fmt: skip
    return dict(
        vocab_size=((len(tokenizer) + 63) // 64) * 64, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=2,  # head_dim 32: vLLM's CPU attention needs >= 32
        num_key_value_heads=1, max_position_embeddings=4096,
        **{k + "_token_id": v for k, v in ids.items()},
    )  # fmt: skip


def build_model(tokenizer, seed: int, init_std: float = 0.02):
    """A tiny Qwen2ForCausalLM (text-only); ``init_std`` is the initializer_range of its weights."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    config = Qwen2Config(
        **text_config(tokenizer), tie_word_embeddings=True, torch_dtype="float32", initializer_range=init_std
    )
    model = Qwen2ForCausalLM(config).to(torch.float32)
    model.generation_config = GenerationConfig(
        eos_token_id=[config.eos_token_id, config.pad_token_id], pad_token_id=config.pad_token_id
    )
    return model


def build_vl_model(tokenizer, seed: int, init_std: float = 0.02):
    """A tiny Qwen2_5_VLForConditionalGeneration; ``init_std`` is the initializer_range of its language model."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(seed)
    text = text_config(tokenizer)
    text["rope_scaling"] = {"type": "mrope", "mrope_section": [4, 6, 6]}  # sums to head_dim / 2
    vision = dict(depth=1, hidden_size=64, intermediate_size=128, num_heads=2, out_hidden_size=64,
                  fullatt_block_indexes=[0], window_size=112, dtype="float32")  # fmt: skip
    text["dtype"] = "float32"  # both sub-configs say fp32, as from_pretrained(dtype="float32") would write
    text["initializer_range"] = init_std
    config = Qwen2_5_VLConfig(
        text_config=text, vision_config=vision, tie_word_embeddings=True,
        image_token_id=tokenizer.convert_tokens_to_ids("<|image_pad|>"),
        video_token_id=tokenizer.convert_tokens_to_ids("<|video_pad|>"),
        vision_start_token_id=tokenizer.convert_tokens_to_ids("<|vision_start|>"),
        vision_end_token_id=tokenizer.convert_tokens_to_ids("<|vision_end|>"),
        **{k: text[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id")},
    )  # fmt: skip
    return Qwen2_5_VLForConditionalGeneration(config).to(torch.float32)


def save(model, tokenizer, path: Path, text_only: bool) -> None:
    """Writes the model with its tokenizer (text-only) or its processor (small images: at most 16 image tokens),
    which saves the tokenizer too."""
    path.mkdir(parents=True, exist_ok=True)
    if text_only:
        tokenizer.save_pretrained(path)
    else:
        from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

        image_processor = Qwen2VLImageProcessor(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 16)
        processor = Qwen2_5_VLProcessor(
            image_processor=image_processor, tokenizer=tokenizer, video_processor=Qwen2VLVideoProcessor(),
            chat_template=CHAT_TEMPLATE,
        )  # fmt: skip
        processor.save_pretrained(path)
    model.save_pretrained(path, safe_serialization=True)


def format_warmup(model, tokenizer, rows_parquet: Path, steps: int = 200, seed: int = 0, greedy: bool = False) -> None:
    """A few seconds of supervised steps so that the policy answers `<think> check ... </think><answer>X</answer>`
    with X drawn from the rows' ground truths (whatever the question). Random weights never pass the format gate
    (every Ro = 0); after this warm-up some sampled answers are right and some wrong. On the demo's multiple-choice
    rows (few distinct answers, mostly C) most groups then mix right and wrong answers, so Trust-GRPO sees both
    sides."""
    import random

    import pyarrow.parquet as pq
    import torch

    rng = random.Random(seed)
    torch.manual_seed(seed)
    prompts, answers = [], []
    for row in pq.read_table(rows_parquet).to_pylist():
        answers.append(str(row["reward_model"]["ground_truth"])[:20])
        messages = [dict(m) for m in row["prompt"]]
        for m in messages:
            m["content"] = m["content"].replace("<image>", "<|vision_start|><|image_pad|><|vision_end|>")
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        prompts.append(tokenizer(text).input_ids)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        batch = []
        for _ in range(4):
            if greedy:
                k = rng.randrange(len(prompts))
                answer = f"<think> check check </think><answer>{answers[k]}</answer><|im_end|>"
                batch.append((prompts[k], tokenizer(answer).input_ids))
                continue
            # a reasoning part of random length: verl 0.9.1 mis-slices Qwen2.5-VL position ids when every sequence
            # of a micro-batch has the same length (docs/cpu.md); varied lengths keep clear of it
            think = " check" * rng.randint(1, 8)
            answer = f"<think>{think} </think><answer>{rng.choice(answers)}</answer><|im_end|>"
            batch.append((rng.choice(prompts), tokenizer(answer).input_ids))
        length = max(len(p) + len(r) for p, r in batch)
        ids = torch.full((len(batch), length), tokenizer.pad_token_id)
        labels = torch.full((len(batch), length), -100)
        mask = torch.zeros((len(batch), length), dtype=torch.long)
        for i, (p, r) in enumerate(batch):
            ids[i, : len(p) + len(r)] = torch.tensor(p + r)
            labels[i, len(p) : len(p) + len(r)] = torch.tensor(r)  # loss on the answer only
            mask[i, : len(p) + len(r)] = 1
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--text-only", action="store_true", help="Qwen2ForCausalLM instead of Qwen2.5-VL")
    parser.add_argument(
        "--judge-init-std", type=float, default=0.02, help="the judge's initializer_range (demo.py: JUDGE_INIT_STD)"
    )
    parser.add_argument(
        "--warmup-rows",
        type=Path,
        help="parquet whose prompts and answers the policy's format warm-up uses (format_warmup)",
    )
    parser.add_argument(
        "--warmup-greedy",
        action="store_true",
        help="warm-up that greedy decoding also finishes: each prompt with its own answer (format_warmup)",
    )
    args = parser.parse_args(argv)
    tokenizer = build_tokenizer()
    for name, seed in (("policy", 1), ("judge", 2)):  # fixed seeds: the same models on every build
        path = args.out_dir / name
        init_std = args.judge_init_std if name == "judge" else 0.02
        model = (build_model if args.text_only else build_vl_model)(tokenizer, seed, init_std)
        if name == "policy" and args.warmup_rows:
            format_warmup(model, tokenizer, args.warmup_rows, greedy=args.warmup_greedy)
        save(model, tokenizer, path, args.text_only)
        arch = type(model).__name__
        print(json.dumps({"model": name, "arch": arch, "path": str(path), "vocab": len(tokenizer)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
