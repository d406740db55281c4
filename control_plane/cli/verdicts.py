"""Checking route files: one verdict per route, plus one per file that could not be read.

Pure apart from reading the files: no AWS. ``routes validate`` prints the verdicts and
``routes apply`` writes only when every verdict is ok.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from control_plane.cli.route_files import read_route_files
from control_plane.errors import InvalidRouteError, Problem
from control_plane.model.egress import Resolver
from control_plane.model.route import Route
from control_plane.model.validation import route_id_of, validate_route

_LABEL = re.compile(r"[\w.-]{1,128}", re.ASCII)


@dataclass(frozen=True)
class Verdict:
    """What is wrong with one route of a file (``index`` is None for the file itself)."""

    file: str
    index: int | None
    route_id: str | None
    problems: tuple[Problem, ...] = ()
    route: Route | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def label(self) -> str:
        """The route id, else ``#<index>`` (its position in the file), else ``-``."""
        if self.route_id:
            return self.route_id
        return "-" if self.index is None else f"#{self.index}"

    def with_problem(self, problem: Problem) -> Verdict:
        return Verdict(self.file, self.index, self.route_id, (*self.problems, problem), self.route)


def check_files(
    paths: Iterable[str], *, allow_loopback: bool = False, resolver: Resolver | None = None
) -> list[Verdict]:
    """Read and validate every route in ``paths`` (files, directories of route files, ``-``);
    a route_id given twice is a problem.

    ``resolver`` looks up upstream host names for the egress policy (None: no DNS lookups;
    literal addresses and names such as ``localhost`` are still checked).
    """
    verdicts: list[Verdict] = []
    for route_file in read_route_files(list(paths)):
        if route_file.problems:
            verdicts.append(Verdict(route_file.name, None, None, tuple(route_file.problems)))
            continue
        for index, document in enumerate(route_file.documents):
            verdicts.append(_check(route_file.name, index, document, allow_loopback, resolver))
    return _flag_duplicates(verdicts)


def _check(
    file: str, index: int, document: object, allow_loopback: bool, resolver: Resolver | None
) -> Verdict:
    try:
        route = validate_route(document, resolver=resolver, allow_loopback=allow_loopback)
    except InvalidRouteError as exc:
        route_id = _label(route_id_of(document)) or _label(exc.route_id)
        problems = tuple(exc.problems) or (Problem("", exc.reason, str(exc)),)
        return Verdict(file, index, route_id, problems)
    return Verdict(file, index, route.route_id, route=route)


def _label(route_id: object) -> str | None:
    """``route_id`` when it can label an output line; None for a missing or odd one."""
    if isinstance(route_id, str) and _LABEL.fullmatch(route_id):
        return route_id
    return None


def _flag_duplicates(verdicts: list[Verdict]) -> list[Verdict]:
    first_seen: dict[str, Verdict] = {}
    result: list[Verdict] = []
    for verdict in verdicts:
        owner = first_seen.get(verdict.route_id) if verdict.route_id else None
        if owner is not None:
            verdict = verdict.with_problem(Problem(
                "route_id", "DuplicateRouteId",
                f"route_id {verdict.route_id!r} is also defined in {owner.file} "
                f"(route #{owner.index})",
            ))
        elif verdict.route_id:
            first_seen[verdict.route_id] = verdict
        result.append(verdict)
    return result
