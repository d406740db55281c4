"""One JSON line per request on the ``turnout.gateway.access`` logger.

Fields: ``time`` (UTC, ISO 8601, when the request arrived), ``request_id``,
``method``, ``path`` (without the query string, which may carry secrets),
``resource`` (the matched resource path, or null), ``status``, ``upstream_host``
(``host[:port]`` called, or null) and ``latency_ms`` (until the last byte was
sent). Headers and bodies are never logged.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

ACCESS_LOG = logging.getLogger("turnout.gateway.access")


@dataclass
class Exchange:
    """What is known about one request as it goes through the gateway.

    ``status`` is set once the response's status line is about to be sent.
    """

    request_id: str
    method: str
    path: str
    resource: str | None = None
    upstream_host: str | None = None
    status: int | None = None
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started: float = field(default_factory=time.monotonic)

    def log_line(self, status: int) -> str:
        """The access-log line for this request, answered with ``status``."""
        return json.dumps(
            {
                "time": self.received_at.isoformat(timespec="milliseconds"),
                "request_id": self.request_id,
                "method": self.method,
                "path": self.path,
                "resource": self.resource,
                "status": status,
                "upstream_host": self.upstream_host,
                "latency_ms": round((time.monotonic() - self.started) * 1000, 3),
            },
            separators=(",", ":"),
        )
