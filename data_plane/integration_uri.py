"""Turn an HTTP integration's URI template into the URL to call (pure functions).

The reconciler writes URIs such as ``https://${stageVariables.payments}/payments/{proxy}``:
a literal scheme, a stage variable holding ``host[:port][/base-path]``, then the
resource path with placeholders. Rendering takes three steps:

1. ``${stageVariables.NAME}`` is replaced by the stage variable; a variable the
   stage does not define is a configuration error (API Gateway answers 500).
2. ``{name}`` placeholders are filled from the integration's request parameters
   (``integration.request.path.NAME``), whose sources may be
   ``method.request.path.X``, ``method.request.querystring.X``,
   ``method.request.header.X``, ``stageVariables.X`` or a quoted static value.
   A placeholder without a mapping falls back to the method's path parameter of
   the same name. Values are percent-encoded again, except for ``/`` and the
   other characters allowed in a path segment, so ``a%2Fb`` arrives as ``a/b``.
3. The client's raw query string is appended unchanged (order and repeated
   keys kept), after any query the template carries.

The result must be an absolute ``http`` or ``https`` URL with a host, or it is
a configuration error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlsplit

from data_plane.headers import authority

_STAGE_VARIABLE = re.compile(r"\$\{stageVariables\.([A-Za-z0-9_]+)\}")
_PLACEHOLDER = re.compile(r"\{([^{}/]+)\}")
_PATH_TARGET = "integration.request.path."
_SAFE_IN_PATH = "/:@!$&'()*+,;="


class IntegrationUriError(ValueError):
    """The integration URI cannot be turned into a URL (API Gateway: 500)."""


@dataclass(frozen=True)
class UpstreamUrl:
    """A rendered integration URL and the parts the proxy needs from it."""

    url: str
    scheme: str
    host: str
    port: int | None

    @property
    def authority(self) -> str:
        """``host[:port]`` as the ``Host`` header carries it."""
        return authority(self.scheme, self.host, self.port)


def substitute_stage_variables(template: str, stage_variables: Mapping[str, str]) -> str:
    """Replace every ``${stageVariables.NAME}``; raise if the stage lacks one."""

    def value(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in stage_variables:
            raise IntegrationUriError(f"stage variable {name!r} is not defined")
        return stage_variables[name]

    return _STAGE_VARIABLE.sub(value, template)


def integration_path_parameters(
    request_parameters: Mapping[str, str],
    *,
    path_parameters: Mapping[str, str],
    query: Mapping[str, str],
    headers: Mapping[str, str],
    stage_variables: Mapping[str, str],
) -> dict[str, str]:
    """Values for the URI's ``{name}`` placeholders, mapped as the integration says.

    ``headers`` must look names up case-insensitively (as aiohttp's headers do).
    """
    values = dict(path_parameters)
    sources = {
        "method.request.path.": path_parameters,
        "method.request.querystring.": query,
        "stageVariables.": stage_variables,
    }
    for target, source in request_parameters.items():
        if not target.startswith(_PATH_TARGET):
            continue
        name = target[len(_PATH_TARGET) :]
        if len(source) >= 2 and source[0] == source[-1] == "'":
            values[name] = source[1:-1]
            continue
        if source.startswith("method.request.header."):
            found = headers.get(source[len("method.request.header.") :])
        else:
            found = next(
                (
                    table.get(source[len(prefix) :])
                    for prefix, table in sources.items()
                    if source.startswith(prefix)
                ),
                None,
            )
        if found is not None:
            values[name] = found
    return values


def substitute_path_parameters(uri: str, values: Mapping[str, str]) -> str:
    """Fill ``{name}`` placeholders, percent-encoding each value for a path."""

    def value(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in values:
            raise IntegrationUriError(f"no value for path parameter {{{name}}}")
        return quote(values[name], safe=_SAFE_IN_PATH)

    return _PLACEHOLDER.sub(value, uri)


def render_upstream_url(
    template: str,
    *,
    stage_variables: Mapping[str, str],
    path_parameters: Mapping[str, str],
    request_parameters: Mapping[str, str],
    raw_query: str,
    headers: Mapping[str, str],
) -> UpstreamUrl:
    """The URL to call for one request (see the module docstring)."""
    with_stage = substitute_stage_variables(template, stage_variables)
    wants_query = any(s.startswith("method.request.querystring.") for s in request_parameters.values())
    values = integration_path_parameters(
        request_parameters,
        path_parameters=path_parameters,
        query=dict(parse_qsl(raw_query, keep_blank_values=True)) if wants_query else {},
        headers=headers,
        stage_variables=stage_variables,
    )
    url = substitute_path_parameters(with_stage, values)
    if raw_query:
        url = f"{url}{'&' if '?' in url else '?'}{raw_query}"
    return parse_upstream_url(url)


def parse_upstream_url(url: str) -> UpstreamUrl:
    """Check that ``url`` is an absolute http(s) URL with a host and split it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise IntegrationUriError(f"invalid integration URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise IntegrationUriError(f"integration URL scheme {parts.scheme!r} is not http(s)")
    if not parts.hostname:
        raise IntegrationUriError("integration URL has no host")
    if parts.username is not None or parts.password is not None:
        raise IntegrationUriError("integration URL must not carry credentials")
    return UpstreamUrl(url=url, scheme=scheme, host=parts.hostname, port=port)
