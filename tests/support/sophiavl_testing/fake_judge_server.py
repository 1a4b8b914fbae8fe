"""A real HTTP server on 127.0.0.1 speaking OpenAI ``/v1/chat/completions``, with injectable faults.

Not a test module: ``conftest.py`` imports it (``sophiavl_testing.fake_judge_server``) for the ``fake_judge``
fixture, and the judge benchmark runs it as a subprocess (``python fake_judge_server.py --latency 0.05`` prints the
port).

Faults are queued with :meth:`FakeJudgeServer.push`; each request takes the next queued behaviour, or the default
one when the queue is empty:

- ``("reply", text)``: 200 with ``text`` as the assistant message;
- ``("status", code, headers)``: that HTTP status (e.g. 500, or 429 with ``{"Retry-After": "0.2"}``);
- ``("delay", seconds, text)``: waits, then replies ``text`` (a client with a shorter timeout sees a timeout);
- ``("drop",)``: closes the connection without answering;
- ``("raw", body)``: 200 with ``body`` bytes as the JSON body (malformed JSON, wrong shapes);
- ``("script", fn)``: ``fn(payload)`` (called with the request's JSON) returns one of the behaviours above, so a
  reply (or a fault) can be scripted from what was asked, whatever order concurrent requests arrive in.

A request that carries a top-level field named in :attr:`FakeJudgeServer.reject_fields` (e.g. ``structured_outputs``)
is answered 400 before any behaviour is taken, as a server that does not support that field would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from collections import deque
from typing import Any

from aiohttp import web


class FakeJudgeServer:
    """The server, run on its own event loop in a daemon thread (usable from any test's event loop)."""

    def __init__(self, default: tuple = ("reply", "<answer>0.7</answer>"), latency_s: float = 0.0) -> None:
        self.default = default
        self.latency_s = latency_s
        self.queue: deque[tuple] = deque()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.models = ["fake-thinking-rm"]
        self.reject_fields: set[str] = set()
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- control

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def push(self, *behaviours: tuple) -> None:
        """Queues behaviours for the next requests, in order."""
        with self._lock:
            self.queue.extend(behaviours)

    def reset(self) -> None:
        """Forgets queued behaviours and recorded requests."""
        with self._lock:
            self.queue.clear()
            self.requests.clear()
            self.headers.clear()
            self.reject_fields = set()

    def _next(self) -> tuple:
        with self._lock:
            return self.queue.popleft() if self.queue else self.default

    # ---------------------------------------------------------------- handlers

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": m, "object": "model"} for m in self.models]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        payload = await request.json()
        with self._lock:
            self.requests.append(payload)
            self.headers.append(dict(request.headers))
        rejected = sorted(self.reject_fields & set(payload))
        if rejected:
            return web.json_response({"error": {"message": f"unsupported field(s) {rejected}"}}, status=400)
        behaviour = self._next()
        if behaviour[0] == "script":
            behaviour = behaviour[1](payload)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        kind = behaviour[0]
        n = int(payload.get("n") or 1)
        if kind == "reply":
            return web.json_response(_completion(payload, *[behaviour[1]] * n))
        if kind == "choices":
            return web.json_response(_completion(payload, *behaviour[1]))
        if kind == "delay":
            await asyncio.sleep(behaviour[1])
            return web.json_response(_completion(payload, *[behaviour[2]] * n))
        if kind == "status":
            headers = behaviour[2] if len(behaviour) > 2 else {}
            return web.json_response({"error": {"message": "injected"}}, status=behaviour[1], headers=headers)
        if kind == "raw":
            return web.Response(body=behaviour[1], content_type="application/json")
        if kind == "drop":
            assert request.transport is not None
            request.transport.close()  # the client sees the connection drop before any response
            return web.Response(status=204)
        raise ValueError(f"unknown behaviour {behaviour!r}")

    # ---------------------------------------------------------------- lifecycle

    async def _start(self, port: int) -> None:
        app = web.Application(client_max_size=64 << 20)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, backlog=1024)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def start(self, port: int = 0) -> FakeJudgeServer:
        """Starts the server in a daemon thread and returns once it listens."""
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._start(port))
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-judge-server", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake judge server did not start")
        return self

    def stop(self) -> None:
        """Stops the server and its thread."""
        if self._loop is None:
            return
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(10)
        self._loop = None


def _completion(payload: dict, *texts: str | None) -> dict:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": payload.get("model"),
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            for i, text in enumerate(texts)
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="fixed seconds before every reply")
    args = parser.parse_args()
    server = FakeJudgeServer(latency_s=args.latency).start(args.port)
    print(json.dumps({"port": server.port}), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
