"""The reliability and security suite (every test here is ``slow``; CI runs ``pytest -m slow``).

One ``turnout up`` (:class:`~tests.reliability.suite.Suite`) serves the hostile-input, smuggling
and secrets scenarios; the secrets scan runs last, so it sees everything the suite logged,
published and returned before it, and the load scenario runs before that ``turnout up`` starts.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reliability.suite import Suite


@pytest.fixture(scope="session")
def suite() -> Iterator[Suite]:
    shared = Suite()
    yield shared
    shared.stop()


RUN_ORDER = ("test_load.py", "test_faults.py", "test_hostile_input.py", "test_smuggling.py",
             "test_secrets.py")
"""The load scenario first (no other ``turnout up`` of the suite running beside it), the
secrets scan last."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order this folder's tests by :data:`RUN_ORDER`, in the places they were collected in."""
    prefix = "tests/reliability/"
    slots = [n for n, item in enumerate(items) if item.nodeid.startswith(prefix)]

    def rank(item: pytest.Item) -> int:
        name = item.nodeid[len(prefix):].split("::")[0]
        return RUN_ORDER.index(name) if name in RUN_ORDER else len(RUN_ORDER)

    ordered = sorted((items[n] for n in slots), key=rank)
    for slot, item in zip(slots, ordered, strict=True):
        items[slot] = item
