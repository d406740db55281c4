"""Serve an aiohttp application from its own event loop in a daemon thread.

The local cloud is synchronous code (moto, boto3, threads); the gateway is
asyncio. :class:`ServerThread` bridges them: :meth:`ServerThread.start` returns
once the socket listens (or raises the bind error), :meth:`ServerThread.stop`
closes the site, runs the application's cleanup and ends the loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from aiohttp import web


class ServerThread:
    """One aiohttp application listening on ``host:port`` (port 0: a free one)."""

    def __init__(
        self,
        make_app: Callable[[], web.Application],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "turnout-http",
        shutdown_timeout_seconds: float = 2.0,
    ) -> None:
        self._make_app = make_app
        self._host = host
        self._port = port
        self._name = name
        self._shutdown_timeout_seconds = shutdown_timeout_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    @property
    def host(self) -> str:
        """The address listened on."""
        return self._host

    @property
    def port(self) -> int:
        """The port listened on (the chosen one once started with port 0)."""
        return self._port

    def start(self, timeout_seconds: float = 10.0) -> None:
        """Start serving; return once listening."""
        if self._thread is not None:
            return
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_seconds):
            raise TimeoutError(f"{self._name} did not start within {timeout_seconds} s")
        if self._startup_error is not None:
            self._thread.join(timeout_seconds)
            self._thread = None
            raise self._startup_error

    def stop(self, timeout_seconds: float = 10.0) -> None:
        """Stop serving and wait for the thread to end."""
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout_seconds)
        self._thread = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        runner: web.AppRunner | None = None
        try:
            runner = loop.run_until_complete(self._open())
        except BaseException as exc:  # noqa: BLE001 - handed to the thread that called start()
            self._startup_error = exc
        self._ready.set()
        try:
            if runner is not None:
                loop.run_forever()
                loop.run_until_complete(runner.cleanup())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._loop = None

    async def _open(self) -> web.AppRunner:
        runner = web.AppRunner(
            self._make_app(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=self._shutdown_timeout_seconds,
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._port = runner.addresses[0][1]
        return runner
