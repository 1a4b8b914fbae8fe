"""A loopback HTTP proxy in front of the judge server that goes down at a given request: the judge outage of the
fault test (tests/e2e/test_e2e_resume.py, `demo.py --fault-after-step K`).

    python examples/cpu/judge_proxy.py --upstream http://127.0.0.1:JUDGE_PORT --port PORT [--serve N] [--log FILE]

Forwards every request (method, path, body, content type) to the upstream server and its answer back, unchanged.
With --serve N it answers exactly N chat requests (POST .../chat/completions); when request N + 1 arrives the process
exits at once with status 3, without answering: that connection drops and every later one is refused, as when a judge
server is killed. The demo computes N = K * train_batch_size * rollout.n, the judge calls of K training steps (each
training response is judged once), so the outage starts exactly with the first judge call of step K + 1, whatever the
timing. Without --serve it forwards forever (the judge is back). A real process on a real port: nothing in the
training run is patched. Prints one line `listening on PORT` once it accepts connections.

With --log FILE it appends one JSON line per chat request as it arrives, the one that trips the outage included:
``{"n": 1-based count, "text": the user message's text, "image": sha1 of its image URL or null}``, so a test can tell
which prompts each training step asked about.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
from pathlib import Path

import aiohttp
from aiohttp import web

TRIPPED = 3  # exit status when request N + 1 arrives


def request_record(n: int, body: bytes) -> dict:
    """The log line of chat request ``n``: the text and a digest of the image of its last user message."""
    text, image = None, None
    try:
        messages = json.loads(body)["messages"]
        content = [m for m in messages if m.get("role") == "user"][-1]["content"]
        parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
        text = "".join(p.get("text", "") for p in parts if p.get("type") == "text")
        urls = [p["image_url"]["url"] for p in parts if p.get("type") == "image_url"]
        image = hashlib.sha1(urls[0].encode()).hexdigest() if urls else None
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        pass  # not an OpenAI chat body: logged with nulls, forwarded as is
    return {"n": n, "text": text, "image": image}


def make_app(upstream: str, serve: int | None, log: Path | None = None) -> web.Application:
    """The proxy's aiohttp application; ``serve`` = chat requests answered before the outage (None: no outage);
    ``log``: the JSON-lines file of chat requests (None: none)."""
    served = 0

    async def forward(request: web.Request) -> web.StreamResponse:
        nonlocal served
        is_chat = request.method == "POST" and request.path.endswith("/chat/completions")
        body = await request.read()
        if is_chat:
            if log is not None:
                with open(log, "a") as f:
                    f.write(json.dumps(request_record(served + 1, body)) + "\n")
            if serve is not None and served >= serve:
                print(f"judge proxy: request {served + 1} arrived after {serve} served: going down", flush=True)
                os._exit(TRIPPED)
            served += 1
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "authorization")}
        session: aiohttp.ClientSession = request.app["session"]
        async with session.request(request.method, upstream + request.path_qs, data=body, headers=headers) as resp:
            payload = await resp.read()
            return web.Response(status=resp.status, body=payload, content_type=resp.content_type)

    async def on_startup(app: web.Application) -> None:
        app["session"] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600), trust_env=False)

    async def on_cleanup(app: web.Application) -> None:
        await app["session"].close()

    app = web.Application(client_max_size=64 << 20)
    app.router.add_route("*", "/{tail:.*}", forward)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


async def _serve(upstream: str, port: int, serve: int | None, log: Path | None) -> None:
    runner = web.AppRunner(make_app(upstream.rstrip("/"), serve, log), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
    print(f"listening on {port}", flush=True)
    await asyncio.Event().wait()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="the judge server, http://host:port")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--serve", type=int, help="chat requests answered before going down (default: all)")
    parser.add_argument("--log", type=Path, help="append one JSON line per chat request to this file")
    args = parser.parse_args(argv)
    if args.serve is not None and args.serve < 0:
        parser.error("--serve must be >= 0")
    asyncio.run(_serve(args.upstream, args.port, args.serve, args.log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
