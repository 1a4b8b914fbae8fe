"""A small async client for the answer-extraction model behind any OpenAI-compatible ``/v1/chat/completions``.

Used by :mod:`sophiavl.eval.extract.model` (``--extract-url``): a local vLLM serving an instruct model or an API.
Concurrency is bounded by a semaphore; each request has a timeout; connection errors, timeouts, 429 (its
``Retry-After`` honoured) and 5xx are retried with exponential backoff; anything else, or the last failure, is
returned as a failed :class:`Reply` (``text`` ``None``), never raised and never replaced by a guess.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from sophiavl.rewards.trm import openai_api

#: Longest wait between two attempts, seconds (a server's ``Retry-After`` is honoured uncapped).
MAX_BACKOFF_S = 10.0


@dataclass(frozen=True)
class Reply:
    """One request's outcome: ``text`` the assistant message (``None`` when the request failed), ``error`` what went
    wrong (``""`` on success), ``attempts`` HTTP attempts made (>= 1)."""

    text: str | None
    error: str
    attempts: int


@dataclass
class ClientStats:
    """Counters: ``requests`` asked, ``attempts`` HTTP attempts, ``retries`` (attempts after a retryable failure),
    ``failures`` requests that ended without a reply."""

    requests: int = 0
    attempts: int = 0
    retries: int = 0
    failures: int = 0
    errors: list[str] = field(default_factory=list)


class ExtractClient:
    """Chat completions for answer extraction.

    Args:
        base_url: ``http://host:port``, ``.../v1`` or the full ``.../v1/chat/completions`` URL.
        model: the served model's name; ``None`` asks the server once (``GET .../v1/models``, first entry).
        api_key_env: environment variable holding the API key (sent as ``Authorization: Bearer``); unset or empty:
            no header. The key is never logged.
        max_concurrency: most requests in flight (>= 1).
        timeout_s: limit for one HTTP attempt, seconds (> 0).
        max_retries: extra attempts after a retryable failure (>= 0).
        backoff_s: the wait before retry k is ``min(10, backoff_s * 2**(k-1))`` times a random factor in [0.5, 1];
            a 429's ``Retry-After`` replaces it (:class:`~sophiavl.rewards.trm.openai_api.Backoff`).
        max_tokens: bound on the reply length, tokens (>= 1).
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key_env: str | None = "OPENAI_API_KEY",
        max_concurrency: int = 16,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        max_tokens: int = 128,
    ) -> None:
        if max_concurrency < 1 or not timeout_s > 0 or max_retries < 0 or max_tokens < 1:
            raise ValueError(
                "need max_concurrency >= 1, timeout_s > 0, max_retries >= 0, max_tokens >= 1; got "
                f"{max_concurrency}, {timeout_s}, {max_retries}, {max_tokens}"
            )
        self.url = openai_api.chat_completions_url(base_url)
        self.model = model
        self.max_concurrency = int(max_concurrency)
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.max_tokens = int(max_tokens)
        self.backoff = openai_api.Backoff(self.backoff_s, MAX_BACKOFF_S)
        self._headers = openai_api.bearer_headers(api_key_env)
        self.stats = ClientStats()
        self._session: aiohttp.ClientSession | None = None
        self._semaphore: asyncio.Semaphore | None = None

    async def __aenter__(self) -> ExtractClient:
        connector = aiohttp.TCPConnector(limit=self.max_concurrency)
        self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        self._semaphore = asyncio.Semaphore(self.max_concurrency)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = None

    async def resolve_model(self) -> str:
        """The model name to send: the one given, else the server's first ``/v1/models`` entry. Raises
        ``RuntimeError`` when the server cannot say."""
        if self.model:
            return self.model
        assert self._session is not None, "use the client as 'async with ExtractClient(...)'"
        try:
            self.model = await openai_api.served_model(self._session, self.url, self._headers, self.timeout_s)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError, IndexError, TypeError) as e:
            models_url = self.url[: -len("/chat/completions")] + "/models"
            raise RuntimeError(f"cannot ask {models_url} for the model name ({e!r}); pass --extract-model") from None
        return self.model

    async def complete(self, prompt: str, temperature: float = 0.0) -> Reply:
        """The reply to one user message ``prompt`` at ``temperature`` (>= 0), with retries (class docstring)."""
        assert self._session is not None and self._semaphore is not None, "use 'async with ExtractClient(...)'"
        model = await self.resolve_model()
        payload: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": float(temperature),
            "max_tokens": self.max_tokens,
        }
        self.stats.requests += 1

        def counted(_result: tuple) -> None:
            self.stats.retries += 1

        (text, error, _, _), attempts = await openai_api.with_retries(
            lambda: self._attempt(payload),
            max_retries=self.max_retries,
            backoff=self.backoff,
            retry=lambda r: (r[0] is None and r[3], r[2]),
            on_retry=counted,
        )
        if text is not None:
            return Reply(text, "", attempts)
        self.stats.failures += 1
        self.stats.errors.append(error)
        return Reply(None, error, attempts)

    async def _attempt(self, payload: dict[str, Any]) -> tuple[str | None, str, float | None, bool]:
        """One HTTP attempt: ``(text, error, retry_after_s, retryable)``."""
        assert self._session is not None and self._semaphore is not None
        async with self._semaphore:
            self.stats.attempts += 1
            try:
                timeout = aiohttp.ClientTimeout(total=self.timeout_s)
                async with self._session.post(self.url, json=payload, headers=self._headers, timeout=timeout) as r:
                    body = await r.read()
                    status = r.status
                    retry_after = openai_api.parse_retry_after(r.headers.get("Retry-After")) if status == 429 else None
            except asyncio.TimeoutError:
                return None, f"timed out after {self.timeout_s:g} s", None, True
            except (aiohttp.ClientError, OSError) as e:
                return None, f"connection error: {e!r}", None, True
        if status != 200:
            detail = body[:200].decode("utf-8", "replace")
            return None, f"HTTP {status}: {detail}", retry_after, status == 429 or status >= 500
        try:
            text = json.loads(body)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            return None, f"malformed response ({e!r}): {body[:120]!r}", None, False
        if not isinstance(text, str):
            return None, "reply content is not text", None, False
        return text, "", None, False
