"""A loopback HTTP proxy in front of the judge server that goes down at a given request: the judge outage of the
fault test (tests/e2e/test_e2e_resume.py, `demo.py --fault-after-step K`).

    python tests/e2e/judge_proxy.py --upstream http://127.0.0.1:JUDGE_PORT --port PORT [--serve N]

Forwards every request (method, path, body, content type) to the upstream server and its answer back, unchanged.
With --serve N it answers exactly N chat requests (POST .../chat/completions); when request N + 1 arrives the process
exits at once with status 3, without answering: that connection drops and every later one is refused, as when a judge
server is killed. The demo computes N = K * train_batch_size * rollout.n, the judge calls of K training steps (each
training response is judged once), so the outage starts exactly with the first judge call of step K + 1, whatever the
timing. Without --serve it forwards forever (the judge is back). A real process on a real port: nothing in the
training run is patched. Prints one line `listening on PORT` once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import aiohttp
from aiohttp import web

TRIPPED = 3  # exit status when request N + 1 arrives


def make_app(upstream: str, serve: int | None) -> web.Application:
    """The proxy's aiohttp application; ``serve`` = chat requests answered before the outage (None: no outage)."""
    served = 0

    async def forward(request: web.Request) -> web.StreamResponse:
        nonlocal served
        is_chat = request.method == "POST" and request.path.endswith("/chat/completions")
        if is_chat:
            if serve is not None and served >= serve:
                print(f"judge proxy: request {served + 1} arrived after {serve} served: going down", flush=True)
                os._exit(TRIPPED)
            served += 1
        body = await request.read()
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


async def _serve(upstream: str, port: int, serve: int | None) -> None:
    runner = web.AppRunner(make_app(upstream.rstrip("/"), serve), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
    print(f"listening on {port}", flush=True)
    await asyncio.Event().wait()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="the judge server, http://host:port")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--serve", type=int, help="chat requests answered before going down (default: all)")
    args = parser.parse_args(argv)
    if args.serve is not None and args.serve < 0:
        parser.error("--serve must be >= 0")
    asyncio.run(_serve(args.upstream, args.port, args.serve))
    return 0


if __name__ == "__main__":
    sys.exit(main())
