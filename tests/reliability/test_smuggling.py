"""Request smuggling through the local gateway, on raw sockets: every ambiguous framing is
refused (an error status, or the connection closed) and nothing reaches the upstream as two
requests; the upstream is a real HTTP/1.1 server on 127.0.0.1 that counts what it receives."""

from __future__ import annotations

import pytest

from tests.reliability import smuggling
from tests.reliability.suite import Suite, put_route

pytestmark = [pytest.mark.slow, pytest.mark.system, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def upstream(suite: Suite):
    counted = suite.upstream("smuggle")
    put_route(suite.turnout, smuggling.route_item(counted))
    suite.turnout.wait_for(lambda: suite.call("GET", "/smuggle/ready")[0] == 200,
                           what="the smuggling route serving")
    return counted


def test_smuggling_attempts_are_refused_and_never_reach_the_upstream_as_two_requests(suite, upstream):
    outcomes = smuggling.run_attempts(suite.turnout.gateway_port, upstream)
    for outcome in outcomes:
        suite.keep(outcome.received)

    wrong = [(o.attempt.name, o.statuses, o.reached_upstream) for o in outcomes if not o.as_expected]
    assert wrong == []
    attempts = [o for o in outcomes if not o.attempt.passes]
    assert len(attempts) >= 30
    refused = [o for o in attempts if o.statuses]
    assert {o.statuses[0] for o in refused} <= {400, 413, 431, 501, 505}
    # the controls went through: the counting sees what the gateway passes on
    assert sum(o.reached_upstream for o in outcomes if o.attempt.passes) == 3
    hidden = [r for r in upstream.seen()["recent"] if r["path"] == "/smuggle/hidden"]
    assert len(hidden) == 1  # only the pipelined control's second request
    assert suite.call("GET", "/smuggle/after")[0] == 200
