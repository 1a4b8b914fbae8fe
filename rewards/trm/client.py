"""Async client for the thinking reward model behind an OpenAI-compatible ``/v1/chat/completions`` (vLLM).

One :class:`ThinkingJudge` per process and event loop: concurrency bounded by a semaphore, a timeout per HTTP attempt,
retries with exponential backoff and jitter on connection errors, timeouts, 429 (``Retry-After`` honoured) and 5xx,
and counters a caller can read (:meth:`ThinkingJudge.stats`). A judgement that fails is ``None``, never 0.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp

from sophiavl.rewards.trm.codes import (
    ERROR_BAD_INPUT,
    ERROR_CONNECTION,
    ERROR_MALFORMED,
    ERROR_NONE,
    ERROR_TIMEOUT,
    ERROR_UNPARSEABLE,
)
from sophiavl.rewards.trm.config import ThinkingRMConfig, renamed_errors
from sophiavl.rewards.trm.openai_api import (
    Backoff,
    bearer_headers,
    chat_completions_url,
    parse_retry_after,
    served_model,
    with_retries,
)
from sophiavl.rewards.trm.parse import parse_score
from sophiavl.rewards.trm.prompt import SCORE_REGEX, build_messages, load_template

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Judgement:
    """The result of one judgement (``samples`` = K replies asked for one response).

    Attributes:
        score: the score in [0, 1]: with K = 1 the reply's score; with K > 1 the mean of the usable sample scores.
            ``None`` when no sample gave a usable score (request failed, or no reply had a readable score).
        error: 0 when ``score`` is set; else the HTTP status, or one of -1 timeout, -2 connection error,
            -3 unparseable reply, -4 malformed response, -5 unusable input (for example a corrupt image).
        latency_s: wall seconds of the whole judgement, retries and backoff included.
        attempts: HTTP attempts made (0 for unusable input).
        detail: short description of the last error ("" when every sample has a score).
        reply: the (first) reply text, when one was received.
        scores: the K sample scores in reply order, one per sample: a float in [0, 1], or ``None`` for a sample
            that failed (its code is in ``sample_errors``). With K = 1, ``scores == (score,)``.
        sample_errors: the K per-sample error codes (0 for a usable sample; codes as for ``error``).
        replies: the K reply texts (``None`` where no reply was received).
    """

    score: float | None
    error: int
    latency_s: float
    attempts: int
    detail: str = ""
    reply: str | None = None
    scores: tuple[float | None, ...] = ()
    sample_errors: tuple[int, ...] = ()
    replies: tuple[str | None, ...] = ()

    @property
    def usable_scores(self) -> list[float]:
        """The sample scores that are not ``None``, in reply order."""
        return [s for s in self.scores if s is not None]


@dataclass
class _Attempt:
    texts: list = field(default_factory=list)  # one entry per returned choice: reply text, or None if malformed
    error: int = ERROR_NONE
    retryable: bool = False
    retry_after: float | None = None
    detail: str = ""


@dataclass
class JudgeStats:
    """Counters of one judge. ``requests`` counts judgements, ``attempts`` HTTP calls, ``retries`` repeated calls,
    ``failures`` judgements that got no usable reply, ``parse_failures`` judgements whose replies had no readable
    score, ``samples`` replies asked for (K per judgement), ``sample_failures`` samples without a usable score."""

    requests: int = 0
    attempts: int = 0
    retries: int = 0
    successes: int = 0
    failures: int = 0
    parse_failures: int = 0
    samples: int = 0
    sample_failures: int = 0
    in_flight: int = 0
    last_error: str = ""
    latencies_s: deque = field(default_factory=lambda: deque(maxlen=65536))

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100, nearest rank) of judgement latencies in seconds; NaN before any."""
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        rank = min(len(ordered) - 1, max(0, round(q / 100.0 * (len(ordered) - 1))))
        return ordered[rank]


class ThinkingJudge:
    """Grades the reasoning of a response with the thinking reward model.

    Args:
        base_url: the server, as ``http://host:port``, ``.../v1`` or the full ``.../v1/chat/completions`` URL.
        model: the served model name; ``None`` asks the server (``GET .../v1/models``, first entry) once.
        config: the judge's settings (:class:`~sophiavl.rewards.trm.config.ThinkingRMConfig`: concurrency, timeout,
            retries and backoff, sampling, structured output, prompt template); ``None``: the defaults. Its
            ``base_url`` and ``model`` are replaced by the two arguments above.
        max_retry_after_s: the longest wait a 429's ``Retry-After`` may ask for, seconds.
        max_body_bytes: a response body larger than this is treated as malformed.
        settings: any other field of ``ThinkingRMConfig`` (``timeout_s=5``, ``samples=3`` ...), overriding
            ``config``'s; validated there (a ``ValueError`` names the setting).

    The API key is read from the environment variable ``api_key_env`` and sent as ``Authorization: Bearer``; unset or
    empty: no header. The key is never logged or exposed. With ``samples`` = K > 1 the K replies are asked in one
    request (OpenAI ``n``); a server that returns fewer choices is asked again for the rest; with a ``seed``, vLLM
    seeds the k-th choice with ``seed + k``.
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        config: ThinkingRMConfig | None = None,
        max_retry_after_s: float = 60.0,
        max_body_bytes: int = 8 << 20,
        **settings: Any,
    ) -> None:
        with renamed_errors(str):
            cfg = replace(config or ThinkingRMConfig(), base_url=base_url, model=model, **settings)
        self.config = cfg
        self.url = chat_completions_url(base_url)
        self.model = model
        self.max_concurrency = int(cfg.max_concurrency)
        self.timeout_s = float(cfg.timeout_s)
        self.max_retries = int(cfg.max_retries)
        self.backoff_s = float(cfg.backoff_s)
        self.backoff_max_s = float(cfg.backoff_max_s)
        self.max_retry_after_s = float(max_retry_after_s)
        self.max_tokens = int(cfg.max_tokens)
        self.temperature = float(cfg.temperature)
        self.samples = int(cfg.samples)
        self.seed = None if cfg.seed is None else int(cfg.seed)
        self.constrain_output = bool(cfg.constrain_output)
        self.constrain_style = cfg.constrain_style
        self.max_body_bytes = int(max_body_bytes)
        self.backoff = Backoff(self.backoff_s, self.backoff_max_s, self.max_retry_after_s)
        self.template = load_template(cfg.prompt_template)
        self.stats = JudgeStats()
        self._headers = bearer_headers(cfg.api_key_env)
        self._session: aiohttp.ClientSession | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._model_lock: asyncio.Lock | None = None

    @classmethod
    def from_config(cls, config: ThinkingRMConfig, **overrides: Any) -> ThinkingJudge:
        """The judge ``config`` describes; ``overrides`` replace fields (``base_url=``, ``max_concurrency=`` ...).

        Raises ``ValueError`` when no ``base_url`` is known or a value is out of range.
        """
        base_url = overrides.pop("base_url", config.base_url)
        if not base_url:
            raise ValueError("the thinking RM base_url is empty")
        return cls(base_url, overrides.pop("model", config.model), config=config, **overrides)

    def __repr__(self) -> str:
        return (
            f"ThinkingJudge(url={self.url!r}, model={self.model!r}, max_concurrency={self.max_concurrency}, "
            f"samples={self.samples}, temperature={self.temperature:g})"
        )

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> ThinkingJudge:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the HTTP session (safe to call twice; the judge reopens one if used again)."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def _bind_loop(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            # a session, semaphore and lock belong to one event loop
            self._loop = loop
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
            self._model_lock = asyncio.Lock()
            connector = aiohttp.TCPConnector(limit=self.max_concurrency, limit_per_host=self.max_concurrency)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        return self._session

    # ------------------------------------------------------------------ public API

    def snapshot(self) -> dict[str, Any]:
        """Counters and latency percentiles (seconds) as a flat dict of numbers, plus ``endpoint`` and
        ``last_error`` strings."""
        s = self.stats
        return {
            "endpoint": self.url,
            "requests": s.requests,
            "attempts": s.attempts,
            "retries": s.retries,
            "successes": s.successes,
            "failures": s.failures,
            "parse_failures": s.parse_failures,
            "samples": s.samples,
            "sample_failures": s.sample_failures,
            "latency_p50_s": s.percentile(50),
            "latency_p90_s": s.percentile(90),
            "latency_p99_s": s.percentile(99),
            "latency_max_s": max(s.latencies_s) if s.latencies_s else float("nan"),
            "last_error": s.last_error,
        }

    async def score(self, question: str, response: str, image: bytes | str | None = None) -> float | None:
        """The reasoning score in [0, 1] of ``response`` to ``question`` (with ``image``: encoded PNG/JPEG/... bytes
        or an http(s)/data URL), or ``None`` when the judgement failed. See :meth:`judge` for the details."""
        return (await self.judge(question, response, image)).score

    async def judge(self, question: str, response: str, image: bytes | str | None = None) -> Judgement:
        """One judgement (K = ``samples`` replies) with retries; never raises for server or network trouble.

        The K replies are asked in one request (``n`` = K); when the server returns fewer choices, the rest are
        asked again (``seed`` advanced by the number already received), at most K requests in all. Each reply is
        parsed on its own: a sample without a readable score is ``None`` in :attr:`Judgement.scores` and the others
        still count. See :class:`Judgement`.
        """
        start = time.monotonic()
        try:
            messages = build_messages(self.template, question, response, image)
        except ValueError as exc:
            return self.reject_input(f"unusable input: {exc}", start)
        self.stats.requests += 1
        self.stats.samples += self.samples
        session = self._bind_loop()
        texts: list[str | None] = []
        codes: list[int] = []
        attempts = 0
        detail = ""
        for _ in range(self.samples):  # at most K requests: each one returns at least one choice or ends the loop
            want = self.samples - len(texts)
            seed = None if self.seed is None else self.seed + len(texts)
            attempt, made = await self._request(session, messages, want, seed)
            attempts += made
            if attempt.error != ERROR_NONE:
                detail = attempt.detail
                texts.extend([None] * want)
                codes.extend([attempt.error] * want)
                break
            for text in attempt.texts[:want]:
                texts.append(text)
                codes.append(ERROR_NONE if isinstance(text, str) else ERROR_MALFORMED)
            if len(texts) >= self.samples:
                break
        if len(texts) < self.samples:  # pragma: no cover - the loop always fills or breaks with an error
            codes.extend([ERROR_MALFORMED] * (self.samples - len(texts)))
            texts.extend([None] * (self.samples - len(texts)))
        scores: list[float | None] = []
        for k, text in enumerate(texts):
            value = parse_score(text) if isinstance(text, str) else None
            if isinstance(text, str) and value is None:
                codes[k] = ERROR_UNPARSEABLE
                snippet = text[-120:].replace("\n", " ")
                detail = f"no score in reply: ...{snippet!r}"
            elif codes[k] == ERROR_MALFORMED and not detail:
                detail = "a reply choice has no text content"
            scores.append(value)
        return self._finish(start, scores, codes, attempts, detail, texts)

    async def _request(
        self, session: aiohttp.ClientSession, messages: list[dict], n: int, seed: int | None
    ) -> tuple[_Attempt, int]:
        """One request for ``n`` replies with retries; returns the last attempt and the number of attempts."""

        def failed(attempt: _Attempt) -> None:
            self.stats.retries += 1
            logger.debug("thinking RM %s: attempt failed: %s", self.url, attempt.detail)

        return await with_retries(
            lambda: self._attempt(session, messages, n, seed),
            max_retries=self.max_retries,
            backoff=self.backoff,
            retry=lambda a: (a.error != ERROR_NONE and a.retryable, a.retry_after),
            on_retry=failed,
        )

    def reject_input(self, detail: str, start: float | None = None) -> Judgement:
        """Records a judgement that could not be asked because its input is unusable (for example a corrupt image):
        counted as a request and a failure, error -5, no HTTP call. ``start`` is the ``time.monotonic()`` at which
        the judgement began (default: now)."""
        self.stats.requests += 1
        self.stats.samples += self.samples
        k = self.samples
        return self._finish(
            time.monotonic() if start is None else start, [None] * k, [ERROR_BAD_INPUT] * k, 0, detail, [None] * k
        )

    # ------------------------------------------------------------------ internals

    def _finish(
        self,
        start: float,
        scores: list[float | None],
        codes: list[int],
        attempts: int,
        detail: str,
        replies: list[str | None],
    ) -> Judgement:
        latency = time.monotonic() - start
        self.stats.latencies_s.append(latency)
        usable = [s for s in scores if s is not None]
        self.stats.sample_failures += len(scores) - len(usable)
        if usable:
            value: float | None = usable[0] if len(usable) == 1 else sum(usable) / len(usable)
            error = ERROR_NONE
            self.stats.successes += 1
            if len(usable) < len(scores):
                logger.debug(
                    "thinking RM %s: %d of %d samples failed: %s",
                    self.url,
                    len(scores) - len(usable),
                    len(scores),
                    detail,
                )
            else:
                detail = ""
        else:
            value = None
            # a reply without a score is the more specific diagnosis when some choices came back
            error = ERROR_UNPARSEABLE if ERROR_UNPARSEABLE in codes else codes[0]
            if error == ERROR_UNPARSEABLE:
                self.stats.parse_failures += 1
            else:
                self.stats.failures += 1
            self.stats.last_error = detail
            logger.warning("thinking RM %s: judgement failed after %d attempt(s): %s", self.url, attempts, detail)
        return Judgement(
            value, error, latency, attempts, detail, replies[0], tuple(scores), tuple(codes), tuple(replies)
        )

    def _payload(self, messages: list[dict], n: int = 1, seed: int | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if n > 1:
            payload["n"] = n
        if seed is not None:
            payload["seed"] = seed
        if self.constrain_output:
            if self.constrain_style == "structured_outputs":
                payload["structured_outputs"] = {"regex": SCORE_REGEX}
            else:
                payload["guided_regex"] = SCORE_REGEX
        return payload

    async def _read_body(self, resp: aiohttp.ClientResponse) -> bytes | None:
        body = bytearray()
        async for chunk in resp.content.iter_chunked(1 << 16):
            body += chunk
            if len(body) > self.max_body_bytes:
                return None
        return bytes(body)

    async def _discover_model(self, session: aiohttp.ClientSession) -> None:
        assert self._model_lock is not None
        async with self._model_lock:
            if self.model is not None:
                return
            self.model = await served_model(session, self.url, self._headers, self.timeout_s)
            logger.info("thinking RM %s: using served model %r", self.url, self.model)

    async def _attempt(
        self, session: aiohttp.ClientSession, messages: list[dict], n: int = 1, seed: int | None = None
    ) -> _Attempt:
        assert self._semaphore is not None
        async with self._semaphore:
            self.stats.attempts += 1
            self.stats.in_flight += 1
            try:
                if self.model is None:
                    await self._discover_model(session)
                timeout = aiohttp.ClientTimeout(total=self.timeout_s)
                async with session.post(
                    self.url, json=self._payload(messages, n, seed), headers=self._headers, timeout=timeout
                ) as resp:
                    if resp.status != 200:
                        text = (await resp.content.read(300)).decode("utf-8", "replace")
                        return _Attempt(
                            error=resp.status,
                            retryable=resp.status == 429 or resp.status >= 500,
                            retry_after=parse_retry_after(resp.headers.get("Retry-After"))
                            if resp.status == 429
                            else None,
                            detail=f"HTTP {resp.status}: {text[:200]}",
                        )
                    body = await self._read_body(resp)
            except asyncio.TimeoutError:
                return _Attempt(error=ERROR_TIMEOUT, retryable=True, detail=f"timed out after {self.timeout_s:g} s")
            except aiohttp.ClientResponseError as exc:  # from model discovery
                retry = exc.status == 429 or exc.status >= 500
                return _Attempt(error=exc.status, retryable=retry, detail=f"HTTP {exc.status} from /models")
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError) as exc:
                return _Attempt(error=ERROR_CONNECTION, retryable=True, detail=f"connection error: {exc!r}")
            except (ValueError, KeyError, IndexError, TypeError) as exc:  # from model discovery
                return _Attempt(error=ERROR_MALFORMED, detail=f"malformed /models response: {exc!r}")
            finally:
                self.stats.in_flight -= 1
        if body is None:
            return _Attempt(error=ERROR_MALFORMED, detail=f"response body larger than {self.max_body_bytes} bytes")
        try:
            choices = json.loads(body)["choices"]
            if not isinstance(choices, list) or not choices:
                raise ValueError("no choices")
            ordered = sorted(choices, key=lambda c: int(c.get("index", 0)) if isinstance(c, dict) else 0)
            texts = [_choice_text(choice) for choice in ordered]
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            return _Attempt(error=ERROR_MALFORMED, detail=f"malformed response ({exc!r}): {body[:120]!r}")
        if n == 1 and texts[0] is None:
            return _Attempt(error=ERROR_MALFORMED, detail="reply content is not text")
        return _Attempt(texts=texts)


def _choice_text(choice: Any) -> str | None:
    """The assistant text of one choice, or ``None`` when the choice has no text content."""
    try:
        text = choice["message"]["content"]
    except (KeyError, TypeError):
        return None
    return text if isinstance(text, str) else None
