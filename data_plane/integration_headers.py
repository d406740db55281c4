"""Request headers an integration sets from its request parameters (pure functions).

API Gateway fills ``integration.request.header.NAME`` from a quoted static value
(``'orders'``), ``method.request.header.X``, ``method.request.querystring.X``,
``method.request.path.X`` or ``stageVariables.X``; a source without a value sets nothing. A
mapped header replaces every header of that name the client sent, so a client cannot choose
the value (turnout's ``X-Turnout-Route``, which picks the ALB rule, relies on this).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from data_plane.headers import Header

_HEADER_TARGET = "integration.request.header."


def mapped_headers(
    request_parameters: Mapping[str, str],
    *,
    headers: Mapping[str, str],
    path_parameters: Mapping[str, str],
    query: Mapping[str, str],
    stage_variables: Mapping[str, str],
) -> list[Header]:
    """The ``(name, value)`` headers the integration sets, in a stable order.

    ``headers`` must look names up case-insensitively (as aiohttp's headers do).
    """
    sources: dict[str, Mapping[str, str]] = {
        "method.request.header.": headers,
        "method.request.querystring.": query,
        "method.request.path.": path_parameters,
        "stageVariables.": stage_variables,
    }
    out: list[Header] = []
    for target, source in sorted(request_parameters.items()):
        if not target.startswith(_HEADER_TARGET) or len(target) == len(_HEADER_TARGET):
            continue
        name = target[len(_HEADER_TARGET):]
        if len(source) >= 2 and source[0] == source[-1] == "'":
            out.append((name, source[1:-1]))
            continue
        for prefix, table in sources.items():
            if source.startswith(prefix):
                value = table.get(source[len(prefix):])
                if value is not None:
                    out.append((name, value))
                break
    return out


def with_mapped_headers(headers: Sequence[Header], mapped: Sequence[Header]) -> list[Header]:
    """``headers`` with every header named in ``mapped`` replaced by the mapped value."""
    replaced = {name.lower() for name, _ in mapped}
    return [(n, v) for n, v in headers if n.lower() not in replaced] + list(mapped)
