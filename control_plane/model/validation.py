"""Route validation: the one validator used by the CLI and by the reconciler.

:func:`validate_route` reads a document in two passes. The structure (types, required and
unknown fields, ranges, lengths, patterns) is checked by the pydantic model
:class:`~control_plane.model.route.Route`, which is what ``schemas/route.schema.json`` is
generated from; every structural problem is reported at once. A structurally sound route is
then checked against the rules below, and every broken rule is reported at once. Each problem is
a :class:`~control_plane.errors.Problem` whose ``field`` is a path such as
``upstreams[0].url`` (empty for the document as a whole).

Reason codes for the structure:

- ``MissingField``: a required field is absent (an upstream needs one of ``url``/``targets``).
- ``UnknownField``: a field the contract does not define (often a typo).
- ``WrongType``: a value of the wrong JSON type, or ``null``.
- ``InvalidChoice``: a value outside the listed choices (``mode``, ``methods``, ``retries.on``).
- ``OutOfRange``: a number below its minimum or above its maximum.
- ``TooLong`` / ``TooShort``: a string or list outside its length bounds.
- ``PatternMismatch``: a string that does not match its pattern.
- ``DuplicateItem``: a list that must hold unique items holds one twice.
- ``ConflictingFields``: an upstream with both ``url`` and ``targets``.
- ``InvalidValue``: any other structural problem.
- ``UnreadableDocument``: the input could not be read at all.
- ``TooManyProblems``: the last entry when more problems were found than are listed
  (at most 50 are).

Reason codes for the rules:

- ``InvalidPath``: ``path`` is not ``/`` or ``/segment/...`` where a segment is
  ``[A-Za-z0-9._~-]+`` (not ``.`` or ``..``) or ``{name}``; a greedy ``{name+}`` may only be the
  last segment; no empty segments, no trailing slash, no parameter twice.
- ``AnyMethodNotAlone``: ``ANY`` listed together with other methods.
- ``DuplicateUpstreamName``: two upstreams share a name.
- ``NoPrimaryUpstream``: no upstream has priority 0.
- ``MixedUpstreamKinds``: some upstreams have ``url`` and others ``targets``.
- ``MixedUpstreamSchemes``: in ``direct`` mode, url upstreams with different schemes (the
  integration's scheme is fixed; failover switches only the stage variable behind it).
- ``SharedPriorityNotSupported``: in ``direct`` mode, two url upstreams with the same priority
  (API Gateway forwards to one URL at a time; use ``proxy`` mode or ``targets`` to share
  traffic by weight).
- ``UpstreamUrlInvalid``: a url that is not ``scheme://host[:port][/base-path]``, or carries
  credentials, a query, a fragment or characters a stage variable cannot hold.
- ``UpstreamSchemeNotAllowed``: not ``https`` (``http`` needs ``allow_insecure: true``).
- ``UpstreamAddressNotAllowed``: a url host that is, or resolves to, a loopback, link-local,
  private, shared, multicast, unspecified or reserved address, or a ``localhost`` name.
- ``TargetAddressInvalid``: a target ``ip`` that is not an IP address.
- ``TargetAddressNotPrivate``: a target ``ip`` outside the private ranges an ALB accepts.
- ``DuplicateTarget``: the same ip and port twice in one upstream.
- ``HealthCheckOutOfRange``: ``timeout_ms`` not below the interval, or, for ``targets``
  upstreams, outside the ALB's ranges (interval 5-300 s, timeout 2-120 whole seconds,
  thresholds 2-10).
- ``InvalidStatusCode``: an expected status the prober or the ALB cannot match (200-599 for url
  upstreams, 200-499 for targets).
- ``InvalidCidr``: an ``allowed_cidrs`` entry that is not a network in CIDR notation.
- ``UpstreamAuthRequiresProxyMode``: ``upstream_auth`` on a ``direct`` route.
- ``UpstreamAuthFormatInvalid``: ``format`` without exactly one ``{secret}``.
- ``UpstreamAuthHeaderNotAllowed``: a header turnout or HTTP itself controls (``Host``,
  ``Content-Length``, hop-by-hop headers...).

Validation never raises anything but :class:`~control_plane.errors.InvalidRouteError`,
whatever the input.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import typing
from collections.abc import Iterator, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from control_plane.errors import InvalidRouteError, Problem
from control_plane.model import egress
from control_plane.model.route import NAME_PATTERN, Route, Upstream

REASONS: dict[str, str] = {
    "MissingField": "A required field is absent.",
    "UnknownField": "A field the contract does not define (often a typo).",
    "WrongType": "A value of the wrong JSON type, or null.",
    "InvalidChoice": "A value outside the listed choices.",
    "OutOfRange": "A number below its minimum or above its maximum.",
    "TooLong": "A string or list longer than allowed.",
    "TooShort": "A string or list shorter than allowed.",
    "PatternMismatch": "A string that does not match its pattern.",
    "DuplicateItem": "A list of unique items holds one twice.",
    "ConflictingFields": "An upstream with both url and targets.",
    "InvalidValue": "Any other structural problem.",
    "UnreadableDocument": "The input could not be read at all.",
    "TooManyProblems": "More problems were found than are listed (at most 50 are).",
    "InvalidPath": "The path is not an API Gateway resource path.",
    "AnyMethodNotAlone": "ANY listed together with other methods.",
    "DuplicateUpstreamName": "Two upstreams share a name.",
    "NoPrimaryUpstream": "No upstream has priority 0.",
    "MixedUpstreamKinds": "Some upstreams have url and others targets.",
    "MixedUpstreamSchemes": "In direct mode, url upstreams with different schemes.",
    "SharedPriorityNotSupported": "In direct mode, two url upstreams with the same priority.",
    "UpstreamUrlInvalid": "Not scheme://host[:port][/base-path], or credentials, a query, "
    "a fragment or characters a stage variable cannot hold.",
    "UpstreamSchemeNotAllowed": "Not https (http needs allow_insecure: true).",
    "UpstreamAddressNotAllowed": "The host is, or resolves to, an address turnout must not "
    "call (loopback, link-local, private, shared, multicast, reserved) or a localhost name.",
    "TargetAddressInvalid": "A target ip that is not an IP address.",
    "TargetAddressNotPrivate": "A target ip outside the private ranges an ALB accepts.",
    "DuplicateTarget": "The same ip and port twice in one upstream.",
    "HealthCheckOutOfRange": "Timeout not below the interval, or outside the ALB's ranges "
    "for targets upstreams.",
    "InvalidStatusCode": "An expected status the prober or the ALB cannot match.",
    "InvalidCidr": "An allowed_cidrs entry that is not a CIDR network.",
    "UpstreamAuthRequiresProxyMode": "upstream_auth on a direct route.",
    "UpstreamAuthFormatInvalid": "format without exactly one {secret}.",
    "UpstreamAuthHeaderNotAllowed": "A header turnout or HTTP itself controls.",
}

MESSAGE_LIMIT = 500
MAX_PROBLEMS = 50
_NAME = re.compile(NAME_PATTERN)
_SIMPLE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
_LITERAL_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")
_PARAMETER_SEGMENT = re.compile(r"\{([A-Za-z0-9._-]{1,64})(\+?)\}")
_SECRET_PLACEHOLDER = "{secret}"  # noqa: S105 - a placeholder, not a password
_RESERVED_HEADERS = frozenset({
    "host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade",
    "te", "trailer", "proxy-connection", "x-forwarded-for",
})
_ALB_INTERVAL_SECONDS = (5, 300)
_ALB_TIMEOUT_SECONDS = (2, 120)
_ALB_THRESHOLD = (2, 10)

_REASON_BY_ERROR_TYPE = {
    "missing": "MissingField",
    "url_or_targets_missing": "MissingField",
    "extra_forbidden": "UnknownField",
    "literal_error": "InvalidChoice",
    "enum": "InvalidChoice",
    "greater_than": "OutOfRange",
    "greater_than_equal": "OutOfRange",
    "less_than": "OutOfRange",
    "less_than_equal": "OutOfRange",
    "finite_number": "OutOfRange",
    "string_too_long": "TooLong",
    "too_long": "TooLong",
    "string_too_short": "TooShort",
    "too_short": "TooShort",
    "string_pattern_mismatch": "PatternMismatch",
    "unique_items": "DuplicateItem",
    "url_and_targets": "ConflictingFields",
    "null_not_allowed": "WrongType",
    "string_unicode": "WrongType",
    "int_from_float": "WrongType",
}
_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "list_type": "a list",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "dict_type": "an object",
    "string_unicode": "a string of valid Unicode text",
}
_PATTERN_HINTS = {
    "route_id": "lower-case letters, digits and '-', starting with a letter or digit, "
    "at most 63 characters",
    "name": "lower-case letters, digits and '-', starting with a letter or digit, "
    "at most 63 characters",
    "header": "an HTTP header name (letters, digits and !#$%&'*+.^_`|~-)",
    "secret_arn": "a Secrets Manager secret ARN "
    "(arn:aws:secretsmanager:<region>:<account>:secret:<name>)",
    "path": "a path starting with '/' made of URL path characters",
    "format": "printable ASCII text on one line",
}


def validate_route(
    doc: object,
    *,
    resolver: egress.Resolver | None = None,
    allow_loopback: bool = False,
) -> Route:
    """The route ``doc`` describes, or :class:`InvalidRouteError` with every problem found.

    ``resolver`` resolves url hosts for the egress policy (None: no DNS lookups, literal
    addresses and names are still checked). ``allow_loopback`` permits loopback upstreams
    for local demos.
    """
    route, problems = check_route(doc, resolver=resolver, allow_loopback=allow_loopback)
    if route is None:
        raise InvalidRouteError(problems, route_id=route_id_of(doc))
    return route


def check_route(
    doc: object,
    *,
    resolver: egress.Resolver | None = None,
    allow_loopback: bool = False,
) -> tuple[Route | None, list[Problem]]:
    """``(route, [])`` for a valid document, else ``(None, problems)`` (never empty)."""
    try:
        problems = []
        try:
            route = Route.model_validate(doc)
        except ValidationError as exc:
            problems = structural_problems(exc)
        else:
            problems = semantic_problems(route, resolver=resolver, allow_loopback=allow_loopback)
        if problems:
            return None, _unique_problems(problems)
        return route, []
    except Exception:  # noqa: BLE001 - any input must end as a rejection, never a crash
        return None, [Problem("", "UnreadableDocument", "the route document could not be read")]


def route_id_of(doc: object) -> str | None:
    """The document's ``route_id`` when it is a well-formed one, for messages; else None."""
    try:
        if isinstance(doc, dict):
            value = doc.get("route_id")
            if isinstance(value, str) and len(value) <= 63 and _NAME.search(value):
                return value
    except Exception:  # noqa: BLE001 - best effort only
        return None
    return None


# ---- structure ------------------------------------------------------------------------------


def structural_problems(exc: ValidationError) -> list[Problem]:
    """The problems a pydantic validation error of :class:`Route` stands for."""
    problems = []
    for error in exc.errors(include_url=False, include_context=True):
        loc = tuple(error.get("loc", ()))
        kind = str(error.get("type", ""))
        if kind == "literal_error" and not isinstance(error.get("input"), str):
            kind = "string_type"
        reason = _REASON_BY_ERROR_TYPE.get(kind)
        if reason is None:
            reason = "WrongType" if kind.endswith("_type") else "InvalidValue"
        problems.append(Problem(field_path(loc), reason, _message(kind, loc, error)))
    return problems


def field_path(loc: Sequence[object]) -> str:
    """``('upstreams', 0, 'url')`` -> ``upstreams[0].url``."""
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        elif isinstance(part, str) and _SIMPLE_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{_shorten(json.dumps(str(part)), 66)}]"
    return out


def _message(kind: str, loc: tuple[object, ...], error: Any) -> str:
    context = error.get("ctx") or {}
    if kind == "missing":
        return "this field is required"
    if kind == "extra_forbidden":
        return _unknown_field_message(loc)
    if kind == "model_type" and not loc:
        return "a route must be a JSON object"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}"
    if kind == "string_pattern_mismatch":
        name = loc[-1] if loc else ""
        hint = _PATTERN_HINTS.get(name) if isinstance(name, str) else None
        return f"expected {hint}" if hint else "does not match the required pattern"
    if kind.endswith("_type"):
        return "wrong type for this field"
    unit = "character" if kind.startswith("string_") else "item"
    if kind in ("string_too_long", "too_long") and "max_length" in context:
        return f"at most {_count(context['max_length'], unit)} allowed"
    if kind in ("string_too_short", "too_short") and "min_length" in context:
        return f"at least {_count(context['min_length'], unit)} needed"
    bounds = {"ge": "at least", "gt": "more than", "le": "at most", "lt": "less than"}
    for key, words in bounds.items():
        if key in context:
            return f"must be {words} {context[key]}"
    if kind == "literal_error" and "expected" in context:
        return f"expected {context['expected']}"
    return _shorten(str(error.get("msg") or "invalid value"), MESSAGE_LIMIT)


def _count(number: object, unit: str) -> str:
    return f"{number} {unit}" if number == 1 else f"{number} {unit}s"


def _unknown_field_message(loc: tuple[object, ...]) -> str:
    model = _model_at(loc[:-1])
    key = loc[-1] if loc else None
    if model is None or not isinstance(key, str):
        return "unknown field"
    known = list(model.model_fields)
    close = difflib.get_close_matches(key[:64], known, n=1, cutoff=0.6)
    if close:
        return f"unknown field; did you mean '{close[0]}'?"
    return "unknown field; known fields: " + ", ".join(known)


def _model_at(loc: Sequence[object]) -> type[BaseModel] | None:
    model: type[BaseModel] = Route
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if isinstance(part, str) else None
        nested = _nested_model(field.annotation) if field is not None else None
        if nested is None:
            return None
        model = nested
    return model


def _nested_model(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


# ---- rules ----------------------------------------------------------------------------------


def semantic_problems(
    route: Route,
    *,
    resolver: egress.Resolver | None = None,
    allow_loopback: bool = False,
) -> list[Problem]:
    """Every rule a structurally valid route breaks."""
    problems: list[Problem] = []
    problems.extend(_path_problems(route.path))
    problems.extend(_method_problems(route))
    problems.extend(_upstream_set_problems(route))
    for index, upstream in enumerate(route.upstreams):
        problems.extend(_upstream_problems(index, upstream, resolver, allow_loopback))
    problems.extend(_health_check_problems(route))
    problems.extend(_security_problems(route))
    problems.extend(_upstream_auth_problems(route))
    return problems


def _path_problems(path: str) -> Iterator[Problem]:
    why = path_problem(path)
    if why is not None:
        yield Problem("path", "InvalidPath", why)


def path_problem(path: str) -> str | None:
    """Why ``path`` is not an API Gateway resource path turnout accepts (None: it is)."""
    if path == "/":
        return None
    if not path.startswith("/"):
        return "a path starts with '/'"
    if path.endswith("/"):
        return "a path does not end with '/' (except '/' itself)"
    segments = path[1:].split("/")
    seen: set[str] = set()
    for position, segment in enumerate(segments):
        if segment == "":
            return "a path has no empty segments ('//')"
        if segment in (".", ".."):
            return "a path has no '.' or '..' segments"
        parameter = _PARAMETER_SEGMENT.fullmatch(segment)
        if parameter is not None:
            name, greedy = parameter.groups()
            if greedy and position != len(segments) - 1:
                return f"the greedy parameter {{{name}+}} can only be the last segment"
            if name in seen:
                return f"the parameter {{{name}}} appears twice"
            seen.add(name)
        elif not _LITERAL_SEGMENT.fullmatch(segment):
            return (f"segment {_shorten(repr(segment), 40)} is neither a name of "
                    "[A-Za-z0-9._~-] nor a {parameter}")
    return None


def _method_problems(route: Route) -> Iterator[Problem]:
    if "ANY" in route.methods and len(route.methods) > 1:
        yield Problem("methods", "AnyMethodNotAlone",
                      "ANY already serves every method; list ANY alone or name the methods")


def _upstream_set_problems(route: Route) -> Iterator[Problem]:
    upstreams = route.upstreams
    seen_names: set[str] = set()
    for index, upstream in enumerate(upstreams):
        if upstream.name in seen_names:
            yield Problem(f"upstreams[{index}].name", "DuplicateUpstreamName",
                          f"another upstream is already named '{upstream.name}'")
        seen_names.add(upstream.name)
    if all(upstream.priority != 0 for upstream in upstreams):
        yield Problem("upstreams", "NoPrimaryUpstream",
                      "one upstream must have priority 0 (the primary)")
    first_kind = upstreams[0].kind
    for index, upstream in enumerate(upstreams[1:], start=1):
        if upstream.kind != first_kind:
            yield Problem(f"upstreams[{index}]", "MixedUpstreamKinds",
                          f"this upstream has {upstream.kind} but upstreams[0] has "
                          f"{first_kind}; a route's upstreams are all url or all targets")
    if route.mode != "direct":
        return
    url_upstreams = [(i, u) for i, u in enumerate(upstreams) if u.url is not None]
    schemes = [(i, _scheme_of(u.url or "")) for i, u in url_upstreams]
    known = [(i, s) for i, s in schemes if s is not None]
    if known:
        first_index, first_scheme = known[0]
        for index, scheme in known[1:]:
            if scheme != first_scheme:
                yield Problem(
                    f"upstreams[{index}].url", "MixedUpstreamSchemes",
                    f"in direct mode every url upstream uses one scheme; this one is {scheme}, "
                    f"upstreams[{first_index}] is {first_scheme}",
                )
    priorities: dict[int, int] = {}
    for index, upstream in url_upstreams:
        if upstream.priority in priorities:
            yield Problem(
                f"upstreams[{index}].priority", "SharedPriorityNotSupported",
                f"upstreams[{priorities[upstream.priority]}] already has priority "
                f"{upstream.priority}; in direct mode API Gateway forwards to one URL at a time, "
                "so use distinct priorities, or proxy mode to share traffic by weight",
            )
        else:
            priorities[upstream.priority] = index


def _scheme_of(url: str) -> str | None:
    scheme, separator, _ = url.partition("://")
    lowered = scheme.lower()
    return lowered if separator and lowered in ("http", "https") else None


def _upstream_problems(
    index: int, upstream: Upstream, resolver: egress.Resolver | None, allow_loopback: bool
) -> Iterator[Problem]:
    if upstream.url is not None:
        for refusal in egress.check_upstream_url(
            upstream.url, allow_insecure=upstream.allow_insecure,
            allow_loopback=allow_loopback, resolver=resolver,
        ):
            yield Problem(f"upstreams[{index}].url", refusal.reason, refusal.message)
    seen: set[tuple[str, int]] = set()
    for position, target in enumerate(upstream.targets or []):
        field = f"upstreams[{index}].targets[{position}]"
        if not (allow_loopback and egress.is_loopback(target.ip)):
            refusal = egress.target_refusal(target.ip)
            if refusal is not None:
                yield Problem(f"{field}.ip", refusal.reason, refusal.message)
        address = egress.parse_ip(target.ip)
        key = (str(address) if address is not None else target.ip, target.port)
        if key in seen:
            yield Problem(field, "DuplicateTarget", "this ip and port are already listed")
        seen.add(key)


def _health_check_problems(route: Route) -> Iterator[Problem]:
    check = route.health_check
    if check.timeout_ms >= check.interval_seconds * 1000:
        yield Problem("health_check.timeout_ms", "HealthCheckOutOfRange",
                      f"the probe timeout must be below the interval "
                      f"({check.interval_seconds * 1000} ms)")
    has_targets = any(upstream.targets is not None for upstream in route.upstreams)
    if has_targets:
        yield from _alb_health_check_problems(route)
    low, high = (200, 499) if has_targets else (200, 599)
    for index, status in enumerate(check.expected_statuses):
        if not low <= status <= high:
            where = "the ALB matches" if has_targets else "a probe can see"
            yield Problem(f"health_check.expected_statuses[{index}]", "InvalidStatusCode",
                          f"{status} is not a final status {where} ({low}-{high})")


def _alb_health_check_problems(route: Route) -> Iterator[Problem]:
    check = route.health_check
    low, high = _ALB_INTERVAL_SECONDS
    if not low <= check.interval_seconds <= high:
        yield Problem("health_check.interval_seconds", "HealthCheckOutOfRange",
                      f"for targets upstreams the ALB needs an interval of {low}-{high} s")
    low, high = _ALB_TIMEOUT_SECONDS
    if check.timeout_ms % 1000 or not low * 1000 <= check.timeout_ms <= high * 1000:
        yield Problem("health_check.timeout_ms", "HealthCheckOutOfRange",
                      f"for targets upstreams the ALB needs a timeout of whole seconds, "
                      f"{low * 1000}-{high * 1000} ms")
    low, high = _ALB_THRESHOLD
    for name in ("unhealthy_threshold", "healthy_threshold"):
        if not low <= getattr(check, name) <= high:
            yield Problem(f"health_check.{name}", "HealthCheckOutOfRange",
                          f"for targets upstreams the ALB needs a threshold of {low}-{high}")


def _security_problems(route: Route) -> Iterator[Problem]:
    for index, text in enumerate(route.security.allowed_cidrs):
        why = cidr_problem(text)
        if why is not None:
            yield Problem(f"security.allowed_cidrs[{index}]", "InvalidCidr", why)


def cidr_problem(text: str) -> str | None:
    """Why ``text`` is not a network in CIDR notation (None: it is)."""
    if "/" not in text:
        return "expected a network in CIDR notation such as 203.0.113.0/24"
    try:
        ipaddress.ip_network(text, strict=True)
    except ValueError:
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return "expected a network in CIDR notation such as 203.0.113.0/24"
        return f"host bits are set; the network is {network}"
    return None


def _upstream_auth_problems(route: Route) -> Iterator[Problem]:
    auth = route.upstream_auth
    if auth is None:
        return
    if route.mode != "proxy":
        yield Problem("upstream_auth", "UpstreamAuthRequiresProxyMode",
                      "credentials are added by the data-plane function; set mode: proxy")
    count = auth.format.count(_SECRET_PLACEHOLDER)
    if count != 1:
        yield Problem("upstream_auth.format", "UpstreamAuthFormatInvalid",
                      f"format must contain {_SECRET_PLACEHOLDER} exactly once (found {count})")
    if auth.header.lower() in _RESERVED_HEADERS:
        yield Problem("upstream_auth.header", "UpstreamAuthHeaderNotAllowed",
                      f"{auth.header} is controlled by HTTP or by turnout; pick another header")


# ---- helpers --------------------------------------------------------------------------------


def _unique_problems(problems: list[Problem]) -> list[Problem]:
    """Problems without repeats, at most :data:`MAX_PROBLEMS` of them and a count of the rest."""
    seen: set[Problem] = set()
    out = []
    for problem in problems:
        if problem not in seen:
            seen.add(problem)
            out.append(problem)
    if len(out) > MAX_PROBLEMS:
        rest = len(out) - MAX_PROBLEMS
        out = [*out[:MAX_PROBLEMS],
               Problem("", "TooManyProblems", f"{rest} more problems are not listed")]
    return out


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
