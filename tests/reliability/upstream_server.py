"""An HTTP upstream for the reliability suite, in its own process: ``python -m
tests.reliability.upstream_server NAME [PORT]`` prints the port it listens on (127.0.0.1).

Built on aiohttp's server, so it speaks HTTP/1.1 properly (chunked request bodies, keep-alive,
pipelining) and keeps up with the load scenario. Every request is answered 200 with
``{"upstream": NAME, "path": ...}`` and an ``X-Upstream: NAME`` header; the body is read in full
first. Nothing it received is echoed back (so a credential the gateway injects never returns to
the client); what it received is kept for the tests instead and served, on the same port, at
``GET /__upstream/seen`` (``{"count": N, "recent": [{"method", "path", "headers", "body_bytes"}]}``,
probes of ``/health`` excluded from both).
"""

from __future__ import annotations

import asyncio
import collections
import json
import sys

from aiohttp import web

HEALTH_PATH = "/health"
SEEN_PATH = "/__upstream/seen"
RECENT = 2000


def make_app(name: str) -> web.Application:
    recent: collections.deque[dict] = collections.deque(maxlen=RECENT)
    totals = {"count": 0}
    answer_headers = {"X-Upstream": name, "Content-Type": "application/json"}

    async def handle(request: web.Request) -> web.Response:
        path = request.rel_url.raw_path
        if path == SEEN_PATH:
            return web.json_response({"count": totals["count"], "recent": list(recent)})
        body = await request.read()
        if path != HEALTH_PATH:
            totals["count"] += 1
            recent.append({"method": request.method, "path": request.path_qs,
                           "headers": {k.lower(): v for k, v in request.headers.items()},
                           "body_bytes": len(body)})
        payload = json.dumps({"upstream": name, "path": path}).encode()
        return web.Response(body=payload, headers=answer_headers)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def serve(name: str, port: int) -> None:
    runner = web.AppRunner(make_app(name), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True, backlog=1024)
    await site.start()
    bound = runner.addresses[0][1]
    print(bound, flush=True)
    await asyncio.Event().wait()


def main() -> None:
    name = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    try:
        asyncio.run(serve(name, port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
