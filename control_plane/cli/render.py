"""How commands print: verdict lines, plain tables, JSON and YAML."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from decimal import Decimal

import yaml

from control_plane.cli.verdicts import Verdict

EMPTY = "-"


def verdict_lines(verdict: Verdict) -> list[str]:
    """``ok   <file>: <route>``, or one ``<file>: <route>: <field>: <reason> (<message>)``
    line per problem (``(file)`` as the field when the whole file is at fault)."""
    where = f"{verdict.file}: {verdict.label}"
    if verdict.ok:
        return [f"ok   {where}"]
    fallback = "(file)" if verdict.index is None else "(route)"
    return [
        f"{where}: {problem.field or fallback}: {problem.reason} ({problem.message})"
        for problem in verdict.problems
    ]


def verdict_json(verdict: Verdict) -> dict:
    return {
        "file": verdict.file,
        "index": verdict.index,
        "route_id": verdict.route_id,
        "valid": verdict.ok,
        "problems": [
            {"field": p.field, "reason": p.reason, "message": p.message}
            for p in verdict.problems
        ],
    }


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain left-aligned table; empty cells show as ``-``."""
    cells = [[cell(value) for value in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = [headers, *cells]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def to_json(value: object) -> str:
    return json.dumps(value, indent=2, default=_plain)


def to_yaml(value: object) -> str:
    return yaml.safe_dump(
        json.loads(json.dumps(value, default=_plain)), sort_keys=False, allow_unicode=True,
    )


def cell(value: object) -> str:
    """One table cell: lists joined with commas, whitespace folded, empty as ``-``."""
    if value is None or value == "" or value == []:
        return EMPTY
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return " ".join(str(value).split())


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
