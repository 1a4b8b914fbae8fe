"""The thinking reward model client: ``from sophiavl.rewards.thinking import ThinkingJudge, parse_score``.

The pieces live in small modules: ``thinking_client`` (HTTP, retries, counters), ``thinking_parse`` (reading the
score) and ``thinking_prompt`` (template, image encoding, messages); the error codes of a
:class:`Judgement` are in ``judge_codes``.
"""

from sophiavl.rewards.thinking_client import (
    Judgement,
    JudgeStats,
    ThinkingJudge,
    chat_completions_url,
)
from sophiavl.rewards.thinking_parse import parse_score
from sophiavl.rewards.thinking_prompt import SCORE_REGEX, PromptTemplate, load_template

__all__ = [
    "SCORE_REGEX",
    "Judgement",
    "JudgeStats",
    "PromptTemplate",
    "ThinkingJudge",
    "chat_completions_url",
    "load_template",
    "parse_score",
]
