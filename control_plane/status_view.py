"""The status view: one document of every route's state, for ``turnout status`` and the status
page the local gateway serves at ``/__turnout/``.

Read from what the control plane keeps, never written:

- the routes table: each route's path, methods, mode and upstreams by priority;
- the state table (one paginated ``Scan``, or one ``Query`` for one route): the status item
  (phase, reason, active upstream), the prober's ``health#<upstream>`` items, the failover
  record and the audit items of every switch (:mod:`control_plane.model.failover`);
- CloudWatch: the state of each upstream's alarm (``turnout-<route>.<upstream>``), through
  :class:`~control_plane.adapters.cloudwatch.CloudWatchAlarms`. Optional: when it cannot be
  read the view says so in ``problems`` and shows the prober's verdicts alone.

The document (JSON-ready)::

    generated_at  ISO 8601 UTC time of the read; every age on the page is measured from it
    summary       {"routes", "phases": {PHASE: n}, "upstreams", "health": {WORD: n}}
    routes        one route view each, by route_id (see :func:`route_view`)
    timeline      {"start", "end", "events": [...]}: every switch (failover, failback, manual)
                  of the last day and each route's current all-upstreams-down mark, oldest first
    problems      what could not be read, for people

An upstream's ``health`` is the prober's verdict (``healthy`` / ``unhealthy``, after its
thresholds), else its alarm's (``ALARM`` -> unhealthy, ``OK`` -> healthy), else ``unknown``.

Nothing secret is in it: upstream URLs keep only scheme, host, port and path (a route item that
was rejected may still carry ``user:password@`` or a query), and nothing is read from Secrets
Manager, usage plans or API keys.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from control_plane.adapters.failover_store import RouteState, route_state_of
from control_plane.model.failover import UNKNOWN, iso, parse_time
from control_plane.model.health_signals import ALARM_PREFIX, parse_alarm_name
from control_plane.model.item import from_item
from control_plane.model.status import Phase

NOT_OBSERVED = "the control plane has not reported on this route yet"
HEALTHY, UNHEALTHY, UNKNOWN_HEALTH = "healthy", "unhealthy", "unknown"
ALL_DOWN = "all-down"
TIMELINE_DAYS = 1
TIMELINE_MIN_SECONDS = 120
TIMELINE_MAX_EVENTS = 500

REST_API_OUTPUT = "RestApiId"
ROUTES_TABLE_OUTPUT = "RoutesTableName"
STATE_TABLE_OUTPUT = "StateTableName"

Guard = Callable[[str], AbstractContextManager[None]]


def _unguarded(_table: str) -> AbstractContextManager[None]:
    return nullcontext()


@dataclass(frozen=True)
class StatusSource:
    """Where the view is read: a stack's two tables, and its alarms when ``cloudwatch`` is set.

    Reads raise botocore's exceptions as they are, so each caller words them its own way.
    """

    dynamodb: Any
    routes_table: str
    state_table: str
    cloudwatch: Any | None = None

    def route_documents(self, route_id: str | None = None) -> dict[str, dict | None]:
        """Route items as plain documents (``{route_id: None}`` when that one is absent)."""
        if route_id is not None:
            item = self.dynamodb.get_item(TableName=self.routes_table, ConsistentRead=True,
                                          Key={"route_id": {"S": route_id}}).get("Item")
            return {route_id: None if item is None else from_item(item)}
        documents = (from_item(i) for i in _pages(self.dynamodb, "scan",
                                                   TableName=self.routes_table))
        return {str(d.get("route_id")): d for d in documents}

    def state_items(self, route_id: str | None = None) -> dict[str, list[dict]]:
        """Every state-table item (plain values), grouped by route_id."""
        if route_id is not None:
            raw = _pages(self.dynamodb, "query", TableName=self.state_table,
                         ConsistentRead=True, KeyConditionExpression="route_id = :r",
                         ExpressionAttributeValues={":r": {"S": route_id}})
        else:
            raw = _pages(self.dynamodb, "scan", TableName=self.state_table)
        grouped: dict[str, list[dict]] = defaultdict(list)
        for item in raw:
            plain = from_item(item)
            grouped[str(plain.get("route_id"))].append(plain)
        return dict(grouped)

    def alarm_states(self) -> dict[tuple[str, str], str]:
        """``{(route_id, upstream): StateValue}`` of every turnout upstream alarm.

        Raises :class:`~control_plane.errors.GatewayError` when CloudWatch cannot be read.
        """
        from control_plane.adapters.cloudwatch import CloudWatchAlarms

        if self.cloudwatch is None:
            return {}
        states: dict[tuple[str, str], str] = {}
        for alarm in CloudWatchAlarms(self.cloudwatch).describe(ALARM_PREFIX):
            parsed = parse_alarm_name(str(alarm.get("AlarmName", "")))
            if parsed is not None and alarm.get("StateValue"):
                states[parsed] = str(alarm["StateValue"])
        return states


def read_view(source: StatusSource, *, route_id: str | None = None,
              now: datetime | None = None, guard: Guard = _unguarded) -> dict:
    """Read the stack's state and build the view (only ``route_id``'s route when given).

    ``guard("routes")`` / ``guard("state")`` wrap the reads of each table, so a caller can
    word a missing table by name; an unreadable alarm list becomes a ``problems`` entry.
    """
    from control_plane.errors import GatewayError

    with guard("routes"):
        documents = source.route_documents(route_id)
    with guard("state"):
        items = source.state_items(route_id)
    problems: list[str] = []
    try:
        alarms = source.alarm_states()
    except GatewayError as exc:
        alarms = {}
        problems.append(f"alarm states could not be read ({exc.reason}); "
                        "health shows the prober's verdicts only")
    return build_view(documents, items, alarms, now=now or datetime.now(UTC),
                      problems=problems)


def build_view(documents: Mapping[str, dict | None], items: Mapping[str, list[dict]],
               alarms: Mapping[tuple[str, str], str], *, now: datetime,
               problems: list[str] | None = None) -> dict:
    """The view of these routes (pure): see the module docstring for its shape.

    A route with an item and no status yet shows as PENDING; a route whose item is gone but
    whose status remains (e.g. DELETED) still shows.
    """
    ids = sorted({i for i, d in documents.items() if d is not None} | set(items))
    states = {i: route_state_of(items.get(i, [])) for i in ids}
    routes = [route_view(i, documents.get(i), states[i], alarms, now=now) for i in ids]
    return {
        "generated_at": iso(now),
        "summary": _summary(routes),
        "routes": routes,
        "timeline": timeline(states, now=now),
        "problems": list(problems or []),
    }


def route_view(route_id: str, document: dict | None, state: RouteState,
               alarms: Mapping[tuple[str, str], str] | None = None, *,
               now: datetime | None = None) -> dict:
    """One route as ``turnout status`` and the page show it.

    ``switch_in_progress`` is the execution holding the route's failover lock, while the lock
    has not expired at ``now`` (an expired lock is taken over by the next execution).
    """
    alarms = alarms or {}
    status = state.status
    doc = document if isinstance(document, dict) else {}
    active = status.active_upstream if status else None
    upstreams = []
    for name, declared in _upstreams(doc, state):
        health = state.health.get(name, UNKNOWN)
        alarm = alarms.get((route_id, name))
        upstreams.append({
            "name": name,
            "priority": declared.get("priority"),
            "url": safe_url(declared.get("url")),
            "targets": len(declared["targets"]) if isinstance(declared.get("targets"), list)
            else None,
            "active": name == active,
            "health": health_word(health.healthy, alarm),
            "alarm": alarm,
            **health.to_json(),
        })
    record = state.record_item
    last = state.last_switch
    methods = doc.get("methods")
    return {
        "route_id": route_id,
        "phase": status.phase.value if status else Phase.PENDING.value,
        "reason": status.reason if status else None,
        "message": status.message if status else NOT_OBSERVED,
        "mode": _text(doc.get("mode")) or ("direct" if doc else None),
        "path": _text(doc.get("path")),
        "methods": [str(m) for m in methods] if isinstance(methods, list) else [],
        "active_upstream": active,
        "active_url": safe_url(status.active_url) if status else None,
        "upstreams": upstreams,
        "last_failover": last.to_json() if last else None,
        "switch_in_progress": _live_lock(record, now or datetime.now(UTC)),
        "all_unhealthy_since": _text(record.get("all_unhealthy_since")),
        "manual_choice": _text(record.get("manual_choice")),
        "last_transition_time": status.last_transition_time if status else None,
    }


def timeline(states: Mapping[str, RouteState], *, now: datetime) -> dict:
    """Switches of the last day (at most the latest 500) and current all-down marks.

    ``start`` is the earliest event shown, or two minutes before ``now`` if that is earlier.
    """
    since = now - timedelta(days=TIMELINE_DAYS)
    events: list[tuple[datetime, dict]] = []
    for route_id, state in states.items():
        for entry in state.audit:
            at = parse_time(entry.time)
            if at is not None and since <= at <= now + timedelta(minutes=1):
                events.append((at, {"route_id": route_id, "time": iso(at), "kind": entry.kind,
                                    "from_upstream": entry.from_upstream,
                                    "to_upstream": entry.to_upstream, "why": entry.why,
                                    "who": entry.who, "execution_arn": entry.execution_arn}))
        down = parse_time(state.record_item.get("all_unhealthy_since"))
        if down is not None and down >= since:
            active = state.status.active_upstream if state.status else None
            events.append((down, {"route_id": route_id, "time": iso(down), "kind": ALL_DOWN,
                                  "from_upstream": active, "to_upstream": active,
                                  "why": "every upstream is unhealthy; traffic stays put",
                                  "who": None, "execution_arn": None}))
    events.sort(key=lambda pair: (pair[0], pair[1]["route_id"]))
    shown = events[-TIMELINE_MAX_EVENTS:]
    start = now - timedelta(seconds=TIMELINE_MIN_SECONDS)
    if shown and shown[0][0] < start:
        start = shown[0][0]
    return {"start": iso(start), "end": iso(now), "events": [event for _, event in shown]}


def health_word(healthy: bool | None, alarm: str | None) -> str:
    """The prober's verdict, else the alarm's, else ``unknown``."""
    if healthy is not None:
        return HEALTHY if healthy else UNHEALTHY
    if alarm == "ALARM":
        return UNHEALTHY
    if alarm == "OK":
        return HEALTHY
    return UNKNOWN_HEALTH


def safe_url(value: object) -> str | None:
    """``scheme://host[:port]/path`` of a URL: no user info, query or fragment."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def source_for_rest_api(rest_api_id: str, *, session: Any | None = None,
                        config: Any | None = None) -> StatusSource:
    """The source of the stack whose output ``RestApiId`` is ``rest_api_id``.

    The local gateway knows the API it serves; its stack's outputs name the tables. Clients
    come from ``session`` (a default boto3 session: ``AWS_ENDPOINT_URL``, the region and the
    credentials of the environment). Raises ``LookupError`` when no stack serves that API.
    """
    import boto3

    session = session or boto3.session.Session()
    cloudformation = session.client("cloudformation", config=config)
    for stack in _stacks(cloudformation):
        outputs = {o.get("OutputKey"): o.get("OutputValue") for o in stack.get("Outputs") or []}
        if outputs.get(REST_API_OUTPUT) != rest_api_id:
            continue
        routes, state = outputs.get(ROUTES_TABLE_OUTPUT), outputs.get(STATE_TABLE_OUTPUT)
        if routes and state:
            return StatusSource(dynamodb=session.client("dynamodb", config=config),
                                cloudwatch=session.client("cloudwatch", config=config),
                                routes_table=routes, state_table=state)
    raise LookupError(f"no CloudFormation stack has output {REST_API_OUTPUT} = {rest_api_id} "
                      f"with {ROUTES_TABLE_OUTPUT} and {STATE_TABLE_OUTPUT}")


def _stacks(cloudformation) -> Iterator[dict]:
    for page in cloudformation.get_paginator("describe_stacks").paginate():
        yield from page.get("Stacks", [])


def _upstreams(doc: dict, state: RouteState) -> list[tuple[str, dict]]:
    """Declared upstreams by priority, then names only the state table knows."""
    declared = [u for u in doc.get("upstreams") or [] if isinstance(u, dict) and u.get("name")]
    pairs = [(str(u["name"]), u) for u in declared]
    known = {name for name, _ in pairs}
    pairs += [(name, {}) for name in sorted(state.health) if name not in known]

    def order(pair: tuple[str, dict]) -> tuple:
        priority = pair[1].get("priority")
        number = priority if isinstance(priority, int | float) and not isinstance(
            priority, bool) else None
        return (number is None, number or 0, pair[0])

    return sorted(pairs, key=order)


def _summary(routes: list[dict]) -> dict:
    phases = Counter(r["phase"] for r in routes)
    health = Counter(u["health"] for r in routes for u in r["upstreams"])
    return {"routes": len(routes), "phases": dict(sorted(phases.items())),
            "upstreams": sum(health.values()), "health": dict(sorted(health.items()))}


def _live_lock(record: Mapping[str, Any], now: datetime) -> str | None:
    owner = _text(record.get("lock_owner"))
    expires = record.get("lock_expires_at")
    if owner and isinstance(expires, int | float) and not isinstance(expires, bool) and (
            expires <= now.timestamp()):
        return None
    return owner


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


def _pages(client, operation: str, **kwargs: object) -> list[dict]:
    items: list[dict] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        items.extend(page.get("Items", []))
    return items
