"""A tiny byte-level BPE tokenizer built in memory (no hub), for tests that hand the reward manager real token ids."""

from __future__ import annotations


def byte_bpe_tokenizer(texts: list[str], vocab_size: int = 300):
    """A ``PreTrainedTokenizerFast`` trained on ``texts`` over the 256 byte symbols, so it encodes and decodes any text
    exactly; ``<|endoftext|>`` is its eos and pad token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
