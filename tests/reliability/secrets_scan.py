"""The secrets scenario: use the canary credential and API key every way a client or an
operator can, then look for their values in everything logged, published and returned.

:func:`exercise` drives the canaries (:class:`~tests.reliability.suite.Suite`): proxied calls
that carry the secret to the upstream, calls with the right, a wrong and no API key, the
upstreams killed one after the other (retry, then 502), route items that put the values where
they do not belong (credentials in a URL, the secret typed into ``format``), and the operator's
views (``turnout routes status``, ``turnout status``, ``turnout keys list``).

:func:`scan` then searches:

- logged: ``turnout up``'s stdout and stderr (the stack's functions log there) and every
  CloudWatch Logs group of the local AWS;
- published: every event turnout put on its bus (an SQS queue subscribed by a rule);
- returned: every response body and header set the suite read through the gateway, the raw
  bytes the smuggling attempts got back, and the output of the CLI commands above.

The positive control: the upstream did receive the secret, in the header the route names (and
never the value a client sent in that header).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from control_plane.model.item import to_item
from tests.reliability.hostile import write_items
from tests.reliability.hostile_corpus import Hostile, sound_route
from tests.reliability.suite import CANARY_AUTH_HEADER, Suite
from tests.system.harness import Turnout


@dataclass
class ScanReport:
    texts_by_source: dict[str, int] = field(default_factory=dict)
    bytes_by_source: dict[str, int] = field(default_factory=dict)
    hits: list[tuple[str, str]] = field(default_factory=list)
    """(source, which canary) for every place a canary value was found."""


def misplaced_items(suite: Suite) -> list[Hostile]:
    """Route items that put the canary values where no value should be (each is refused)."""
    secret, key = suite.canary_secret, suite.api_key

    def item(label: str, route_id: str, **changes) -> Hostile:
        doc = sound_route(route_id, mode="proxy")
        for name, value in changes.items():
            doc[name] = value
        return Hostile("secrets", label, to_item(doc))

    return [
        item("secret as URL credentials", "leak-url", upstreams=[
            {"name": "main", "url": f"https://user:{secret}@api.example.com", "priority": 0}]),
        item("API key as URL credentials", "leak-url-key", upstreams=[
            {"name": "main", "url": f"https://{key}@api.example.com", "priority": 0}]),
        item("secret typed into format", "leak-format", upstream_auth={
            "header": "Authorization", "secret_arn": suite.secret_arn,
            "format": f"Bearer {secret}"}),
        item("secret in the secret_arn", "leak-arn", upstream_auth={
            "header": "Authorization", "secret_arn": secret}),
        item("API key as a made-up field", "leak-field", api_key=key),
    ]


def _cli(suite: Suite, *args: str) -> str:
    done = suite.turnout.turnout(*args)
    text = done.stdout + done.stderr
    suite.keep(text.encode())
    return text


def exercise(suite: Suite, *, calls: int = 20) -> dict[str, int]:
    """Use the canaries every way (see the module docstring); counts of what was done."""
    counts = {"proxied": 0, "keyed": 0, "refused_keys": 0, "after_kill": 0, "misplaced": 0,
              "upstream_got_secret": 0, "upstream_got_client_value": 0}
    for i in range(calls):
        if suite.call("GET", f"/canary/use/{i}")[0] == 200:
            counts["proxied"] += 1
        if suite.call("GET", f"/keyed/use/{i}", headers={"x-api-key": suite.api_key})[0] == 200:
            counts["keyed"] += 1
    for headers in ({"x-api-key": suite.api_key[:-1] + "0"}, {}, {"x-api-key": ""}):
        if suite.call("GET", "/keyed/use", headers=headers)[0] == 403:
            counts["refused_keys"] += 1
    suite.call("GET", "/canary/use", headers={CANARY_AUTH_HEADER: "client-set"})
    received = [r["headers"].get(CANARY_AUTH_HEADER.lower())
                for r in suite.canary_a.seen()["recent"] + suite.canary_b.seen()["recent"]]
    counts["upstream_got_secret"] = received.count(f"Bearer {suite.canary_secret}")
    counts["upstream_got_client_value"] = received.count("client-set")
    suite.canary_a.kill()
    for i in range(5):
        counts["after_kill"] += suite.call("GET", f"/canary/retried/{i}")[0] == 200
    suite.canary_b.kill()
    for i in range(3):
        suite.call("GET", f"/canary/down/{i}")
    items = misplaced_items(suite)
    written = write_items(suite.turnout, items).written
    suite.turnout.wait_for(lambda: all(
        suite.turnout.statuses().get(i.route_id, {}).get("phase") == "REJECTED" for i in written),
        timeout=120, what="the misplaced items rejected")
    counts["misplaced"] = len(written)
    _cli(suite, "routes", "status", "--wide")
    _cli(suite, "routes", "status", "-o", "json")
    _cli(suite, "status")
    _cli(suite, "keys", "list", "--route", "keyed")
    return counts


def cloudwatch_logs(turnout: Turnout) -> list[str]:
    """Every log event of every log group of the local AWS."""
    texts = []
    groups = json.loads(turnout.aws("logs", "describe-log-groups")).get("logGroups", [])
    for group in groups:
        events = json.loads(turnout.aws("logs", "filter-log-events", "--log-group-name",
                                        group["logGroupName"])).get("events", [])
        texts.extend(e.get("message", "") for e in events)
    return texts


def scan(suite: Suite) -> ScanReport:
    """Look for the canary values everywhere (see the module docstring)."""
    suite.drain_events()
    sources: dict[str, list[str]] = {
        "turnout up output": ["".join(suite.turnout.output)],
        "CloudWatch Logs": cloudwatch_logs(suite.turnout),
        "events": list(suite.events),
        "returned to clients": [b.decode("utf-8", "replace") for b in suite.returned],
    }
    canaries = {"upstream secret": suite.canary_secret, "API key": suite.api_key}
    report = ScanReport()
    for source, texts in sources.items():
        report.texts_by_source[source] = len(texts)
        report.bytes_by_source[source] = sum(len(t) for t in texts)
        for name, value in canaries.items():
            if any(value in text for text in texts):
                report.hits.append((source, name))
    return report
