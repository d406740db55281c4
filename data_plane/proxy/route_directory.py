"""Which route serves a request, and its active upstream, read from DynamoDB and cached.

API Gateway tells the function the resource path it matched (``resource``) and the method. The
route serving them is the valid ``mode: proxy`` route item whose ``path`` is that resource and
whose ``methods`` include the method (or ``ANY``); two routes claiming the same path and method
are a conflict the control plane resolves, so the one its status calls ``READY`` wins.

- Routes: one filtered ``Scan`` of the routes table builds an index by path, reused for
  ``routes_ttl_seconds``. A resource missing from the index triggers an early rescan (at most
  one per ``min_rescan_seconds``), so a route just created serves at once.
- Status: the route's status item in the state table (``GetItem``) gives ``active_upstream``;
  kept for ``status_ttl_seconds``.
- When DynamoDB cannot be read, the last index and statuses keep serving (a data plane must not
  fail because its configuration store hiccups); only a cold function with nothing cached
  raises :class:`RouteLookupError`.

Items are validated with the control plane's own validator; an invalid item serves nothing.
The clock is injected; the directory is thread-safe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from control_plane.model.item import from_item
from control_plane.model.route import Route
from control_plane.model.status import STATUS_KIND
from control_plane.model.validation import check_route

LOG = logging.getLogger("turnout.data_plane.routes")
Clock = Callable[[], float]


class RouteLookupError(Exception):
    """Nothing is cached and the routes could not be read."""


@dataclass(frozen=True)
class ResolvedRoute:
    """The route serving a request and the upstream the control plane made active."""

    route: Route
    active_upstream: str | None


@dataclass(frozen=True)
class _Status:
    fetched_at: float
    active_upstream: str | None
    phase: str | None


class RouteDirectory:
    """Routes by resource path and their status, from the routes and state tables."""

    def __init__(
        self,
        client: Any,
        *,
        routes_table: str,
        state_table: str,
        allow_loopback: bool = False,
        clock: Clock = time.monotonic,
        routes_ttl_seconds: float = 5.0,
        status_ttl_seconds: float = 2.0,
        min_rescan_seconds: float = 1.0,
    ) -> None:
        self._client = client
        self._routes_table = routes_table
        self._state_table = state_table
        self._allow_loopback = allow_loopback
        self._clock = clock
        self._routes_ttl = routes_ttl_seconds
        self._status_ttl = status_ttl_seconds
        self._min_rescan = min_rescan_seconds
        self._index: dict[str, list[Route]] | None = None
        self._scanned_at = float("-inf")
        self._statuses: dict[str, _Status] = {}
        self._scan_lock = threading.Lock()
        self._status_lock = threading.Lock()
        self._refreshing: set[str] = set()

    def resolve(self, resource: str, method: str) -> ResolvedRoute | None:
        """The route serving ``method resource``, or None when no valid proxy route does."""
        candidates = [
            route
            for route in self._routes_at(resource)
            if method.upper() in route.methods or "ANY" in route.methods
        ]
        if not candidates:
            return None
        statuses = {route.route_id: self._status(route.route_id) for route in candidates}
        chosen = candidates[0]
        if len(candidates) > 1:
            ready = [r for r in candidates if (statuses[r.route_id] or _NO_STATUS).phase == "READY"]
            chosen = min(ready or candidates, key=lambda route: route.route_id)
        status = statuses[chosen.route_id]
        return ResolvedRoute(chosen, status.active_upstream if status else None)

    # ---- routes -------------------------------------------------------------------------

    def _routes_at(self, resource: str) -> list[Route]:
        now = self._clock()
        index = self._index
        age = now - self._scanned_at
        if index is None or age >= self._routes_ttl or (
            resource not in index and age >= self._min_rescan
        ):
            self._rescan(wait=index is None)
        if self._index is None:
            raise RouteLookupError("the routes table could not be read")
        return self._index.get(resource, [])

    def _rescan(self, *, wait: bool) -> None:
        if not self._scan_lock.acquire(blocking=wait):
            return  # another thread is rescanning; serve the current index meanwhile
        try:
            if self._index is not None and self._clock() - self._scanned_at < self._min_rescan:
                return
            try:
                self._index = self._scan()
            except Exception as exc:  # noqa: BLE001 - keep serving what is cached
                LOG.warning("reading the routes table failed; serving the cached routes: %s",
                            type(exc).__name__)
                if self._index is None:
                    raise RouteLookupError("the routes table could not be read") from exc
            self._scanned_at = self._clock()
        finally:
            self._scan_lock.release()

    def _scan(self) -> dict[str, list[Route]]:
        index: dict[str, list[Route]] = {}
        pages = self._client.get_paginator("scan").paginate(
            TableName=self._routes_table,
            FilterExpression="#mode = :proxy",
            ExpressionAttributeNames={"#mode": "mode"},
            ExpressionAttributeValues={":proxy": {"S": "proxy"}},
        )
        for page in pages:
            for item in page.get("Items", []):
                route, _ = check_route(from_item(item), allow_loopback=self._allow_loopback)
                if route is not None and route.mode == "proxy":
                    index.setdefault(route.path, []).append(route)
        return index

    # ---- status -------------------------------------------------------------------------

    def _status(self, route_id: str) -> _Status | None:
        now = self._clock()
        cached = self._statuses.get(route_id)
        if cached is not None and now - cached.fetched_at < self._status_ttl:
            return cached
        if cached is not None:  # stale: one caller refreshes it, the others serve it meanwhile
            with self._status_lock:
                if route_id in self._refreshing:
                    return cached
                self._refreshing.add(route_id)
        try:
            return self._fetch_status(route_id, now, cached)
        finally:
            if cached is not None:
                with self._status_lock:
                    self._refreshing.discard(route_id)

    def _fetch_status(self, route_id: str, now: float, cached: _Status | None) -> _Status | None:
        try:
            raw = self._client.get_item(
                TableName=self._state_table,
                Key={"route_id": {"S": route_id}, "kind": {"S": STATUS_KIND}},
                ProjectionExpression="#active, #phase",
                ExpressionAttributeNames={"#active": "active_upstream", "#phase": "phase"},
            )
        except Exception as exc:  # noqa: BLE001 - the last known status (or none) still serves
            LOG.warning("reading the status of %s failed: %s", route_id, type(exc).__name__)
            return cached
        item = from_item(raw.get("Item") or {})
        active = item.get("active_upstream")
        phase = item.get("phase")
        fresh = _Status(
            fetched_at=now,
            active_upstream=active if isinstance(active, str) else None,
            phase=phase if isinstance(phase, str) else None,
        )
        with self._status_lock:
            self._statuses[route_id] = fresh
        return fresh


_NO_STATUS = _Status(fetched_at=0.0, active_upstream=None, phase=None)
