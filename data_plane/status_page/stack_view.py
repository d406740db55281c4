"""The status view of the stack whose REST API the local gateway serves.

The gateway knows only its API; the stack that outputs that ``RestApiId`` names the tables
(:func:`control_plane.status_view.source_for_rest_api`, found on the first read and kept).
Clients come from the process's environment: under ``turnout up`` the local cloud points
``AWS_ENDPOINT_URL`` at its endpoint. This is the one place the gateway reads the control
plane's state, and it only reads.
"""

from __future__ import annotations

from typing import Any, Protocol

from botocore.config import Config

_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=5,
                        retries={"mode": "standard", "max_attempts": 2})


class _ServedApi(Protocol):
    @property
    def current(self) -> Any:
        """A snapshot with the served ``rest_api_id``."""
        ...


class StackStatusView:
    """``view()``: the status view of the served API's stack."""

    def __init__(self, served: _ServedApi, *, session: Any | None = None) -> None:
        self._served = served
        self._session = session
        self._source: Any | None = None

    def __call__(self) -> dict:
        from control_plane.status_view import read_view, source_for_rest_api

        if self._source is None:
            self._source = source_for_rest_api(self._served.current.rest_api_id,
                                               session=self._session, config=_CLIENT_CONFIG)
        return read_view(self._source)
