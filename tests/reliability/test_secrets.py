"""No upstream secret and no API key value in anything turnout logged, published or returned
while the suite ran (this test runs after the others of the suite; see conftest)."""

from __future__ import annotations

import pytest

from tests.reliability.secrets_scan import exercise, scan
from tests.reliability.suite import Suite

pytestmark = [pytest.mark.slow, pytest.mark.system, pytest.mark.timeout(600)]


def test_no_secret_or_api_key_value_is_logged_published_or_returned(suite: Suite):
    done = exercise(suite)

    # the canaries were really in play: the secret reached the upstream, the key opened the route
    assert done["proxied"] == 20 and done["keyed"] == 20 and done["refused_keys"] == 3
    assert done["upstream_got_secret"] >= 20
    assert done["upstream_got_client_value"] == 0, "a client overrode the injected credential"
    assert done["after_kill"] == 5, "the proxy route's retry on the backup failed"
    assert done["misplaced"] == 5

    report = scan(suite)

    assert report.hits == []
    assert report.texts_by_source["events"] > 0
    assert report.bytes_by_source["turnout up output"] > 0
    assert report.texts_by_source["returned to clients"] > 50
