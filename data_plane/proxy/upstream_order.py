"""Which upstreams one request tries, in which order (pure; randomness injected).

Upstreams are grouped by ``priority``. The group of the active upstream (the one the control
plane last switched traffic to; the primary when it never did) comes first, then the groups
after it by ascending priority, then the groups before it (the ones traffic failed away from).
Within a group, upstreams share traffic by ``weight``: the order is a weighted random shuffle.
Ejected upstreams (see :mod:`data_plane.proxy.outlier`) keep their relative order but move
behind every other one, so they are tried only when everything else failed.

A request makes ``1 + retries.attempts`` tries, one per upstream in this order, going round
again when it has more tries than there are upstreams.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from itertools import groupby
from typing import TypeVar

from control_plane.model.route import Upstream

U = TypeVar("U", bound=Upstream)


def upstream_order(
    upstreams: Sequence[U],
    *,
    active: str | None,
    is_ejected: Callable[[U], bool],
    rng: random.Random,
) -> list[U]:
    """Every upstream, in the order a request should try them."""
    ranked = sorted(upstreams, key=lambda upstream: upstream.priority)
    groups = [list(group) for _, group in groupby(ranked, key=lambda upstream: upstream.priority)]
    start = next(
        (index for index, group in enumerate(groups) if any(u.name == active for u in group)), 0
    )
    rotated = groups[start:] + groups[:start]
    ordered = [upstream for group in rotated for upstream in _weighted_shuffle(group, rng)]
    ejected = [is_ejected(upstream) for upstream in ordered]
    admitted = [upstream for upstream, out in zip(ordered, ejected, strict=True) if not out]
    return admitted + [upstream for upstream, out in zip(ordered, ejected, strict=True) if out]


def tries(order: Sequence[U], attempts: int) -> list[U]:
    """The upstream of each of the ``1 + attempts`` tries, going round ``order`` as needed."""
    if not order:
        return []
    return [order[index % len(order)] for index in range(1 + max(0, attempts))]


def _weighted_shuffle(group: list[U], rng: random.Random) -> list[U]:
    if len(group) < 2:
        return group
    # Efraimidis-Spirakis: sorting by u ** (1 / weight) draws without replacement by weight.
    keyed = [(rng.random() ** (1.0 / upstream.weight), index) for index, upstream in enumerate(group)]
    keyed.sort(reverse=True)
    return [group[index] for _, index in keyed]
