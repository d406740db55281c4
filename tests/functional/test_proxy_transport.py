"""The local gateway's one upstream transport (``HTTP_PROXY`` integrations) against a raw
HTTP/1.1 server on 127.0.0.1: interim 1xx answers are read past, chunked bodies de-chunked."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest

from data_plane.transport import Transport, UpstreamRequest

FINAL = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"3\r\nfin\r\n2\r\nal\r\n0\r\n\r\n")


@pytest.fixture
def raw_upstream() -> Iterator[str]:
    """Answers one request with two interim answers, then a chunked final one."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
                         b"HTTP/1.1 102 Processing\r\n\r\n" + FINAL)

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def exchange(url: str) -> tuple[int, list[tuple[str, str]], bytes]:
    async def run() -> tuple[int, list[tuple[str, str]], bytes]:
        transport = Transport()
        await transport.start()
        try:
            request = UpstreamRequest("GET", url + "/x", [("Host", "upstream")], None, 5000)
            async with transport.exchange(request) as response:
                body = b"".join([chunk async for chunk in response.iter_chunks()])
                return response.status, response.headers, body
        finally:
            await transport.close()

    return asyncio.run(run())


def test_interim_answers_are_read_past_and_the_chunked_final_answer_arrives_whole(raw_upstream):
    status, headers, body = exchange(raw_upstream)
    assert status == 200
    assert body == b"final"
    assert ("Link", "</style.css>; rel=preload") not in headers
