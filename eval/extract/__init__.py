"""Answer extraction: ``answer`` (the rules: ``<answer>``, ``\\boxed{}``, the text without ``<think>``) and the
model-based extraction of the paper's protocol (``model``, with its ``prompts`` and OpenAI ``client``)."""
