"""A handler's dependencies are built once per environment, also under concurrent cold starts."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from control_plane.handlers.warm import Warm


def test_concurrent_first_calls_build_once_and_share_the_result():
    builds = []

    def build() -> object:
        time.sleep(0.05)  # long enough for every caller to arrive while it builds
        builds.append(threading.get_ident())
        return object()

    warm = Warm(build, key=lambda: "same")
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: warm.get(), range(8)))
    assert len(builds) == 1
    assert all(r is results[0] for r in results)


def test_a_changed_environment_builds_afresh_and_a_restored_one_again():
    key = ["a"]
    warm = Warm(lambda: {"built_for": key[0]}, key=lambda: key[0])
    first = warm.get()
    assert warm.get() is first
    key[0] = "b"
    assert warm.get() == {"built_for": "b"}
    key[0] = "a"
    again = warm.get()
    assert again == {"built_for": "a"} and again is not first
