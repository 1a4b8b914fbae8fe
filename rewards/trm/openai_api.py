"""What every client of an OpenAI-compatible ``/v1/chat/completions`` server here shares: the URL and header
conventions, the served-model lookup, and the retry loop with exponential backoff, jitter and ``Retry-After``.

Used by the judge (:class:`sophiavl.rewards.trm.client.ThinkingJudge`) and by the evaluation's answer-extraction
client (:class:`sophiavl.eval.extract.client.ExtractClient`).
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

import aiohttp

T = TypeVar("T")


def chat_completions_url(base_url: str) -> str:
    """The full chat-completions URL for ``base_url``.

    ``http://h:8000/v1/chat/completions`` stays as is; ``http://h:8000/v1`` and ``http://h:8000`` get the missing
    path appended; a trailing ``/`` is ignored. A ``host:port`` without scheme gets ``http://``.
    """
    url = base_url.strip().rstrip("/")
    if not url:
        raise ValueError("the thinking RM base_url is empty")
    if "://" not in url:
        url = "http://" + url
    if url.endswith("/chat/completions"):
        return url
    if url.endswith("/v1"):
        return url + "/chat/completions"
    return url + "/v1/chat/completions"


def bearer_headers(api_key_env: str | None) -> dict[str, str]:
    """``{"Authorization": "Bearer <key>"}`` with the key read from environment variable ``api_key_env``; ``{}`` when
    ``api_key_env`` is ``None`` or the variable is unset or empty. The key is never logged."""
    key = os.environ.get(api_key_env, "") if api_key_env else ""
    return {"Authorization": f"Bearer {key}"} if key else {}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); ``None`` if absent or bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


async def served_model(session: aiohttp.ClientSession, chat_url: str, headers: dict[str, str], timeout_s: float) -> str:
    """The first model the server lists at ``GET .../v1/models`` (``chat_url`` is the chat-completions URL).

    Raises ``aiohttp.ClientResponseError`` for a non-2xx status, ``aiohttp.ClientError`` / ``asyncio.TimeoutError``
    for transport trouble and ``ValueError`` / ``KeyError`` / ``IndexError`` / ``TypeError`` for a malformed reply.
    """
    models_url = chat_url[: -len("/chat/completions")] + "/models"
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with session.get(models_url, headers=headers, timeout=timeout) as resp:
        resp.raise_for_status()
        data = await resp.json(content_type=None)
    return str(data["data"][0]["id"])


@dataclass(frozen=True)
class Backoff:
    """The wait before retry k (1-based): ``min(max_s, base_s * 2**(k-1))`` seconds times a random factor in
    [0.5, 1]; a server's ``Retry-After`` replaces it, capped at ``max_retry_after_s``. All in seconds, >= 0."""

    base_s: float
    max_s: float
    max_retry_after_s: float = math.inf

    def delay(self, k: int, retry_after: float | None) -> float:
        """Seconds to wait before retry ``k`` (>= 1) after a failure that said ``retry_after`` (or ``None``)."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after_s)
        return min(self.max_s, self.base_s * 2 ** (k - 1)) * random.uniform(0.5, 1.0)


async def with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    max_retries: int,
    backoff: Backoff,
    retry: Callable[[T], tuple[bool, float | None]],
    on_retry: Callable[[T], None] | None = None,
) -> tuple[T, int]:
    """Calls ``attempt()`` until ``retry(result)`` says not to, at most ``1 + max_retries`` times, waiting
    ``backoff.delay(k, retry_after)`` before retry k.

    ``retry(result)`` returns ``(retryable, retry_after_s)``: ``retryable`` False ends the loop (a success, or a
    failure that a new attempt would not change). ``on_retry(result)`` runs before each retry (counters, logs).
    Returns the last result and the number of attempts made (>= 1).
    """
    result = await attempt()
    attempts = 1
    for k in range(1, max_retries + 1):
        retryable, retry_after = retry(result)
        if not retryable:
            break
        if on_retry is not None:
            on_retry(result)
        await asyncio.sleep(backoff.delay(k, retry_after))
        result = await attempt()
        attempts += 1
    return result, attempts
