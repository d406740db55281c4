"""The route item: the public contract users write to the routes table.

These models are the source of truth for ``schemas/route.schema.json`` (regenerate it with
``python -m control_plane.model.schema``). They are strict: a value of the wrong JSON type is
refused, never coerced (``"5"`` is not ``5``), and unknown fields are refused so a typo cannot
pass silently. The only conversion is the one JSON itself makes: a number with no fractional
part, such as ``5.0``, is the integer ``5``.

Optional fields may be left out; ``null`` is refused everywhere. Rules that need more than one
field, or knowledge of networks (the egress policy), live in
:mod:`control_plane.model.validation`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

# Patterns end in ``$(?!\n)`` rather than ``$``: in Python's ``re`` (used by both this model and
# the ``jsonschema`` package) a bare ``$`` also matches before a trailing newline.
NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$(?!\n)"
HEADER_NAME_PATTERN = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$(?!\n)"
HEALTH_CHECK_PATH_PATTERN = r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]{0,1023}$(?!\n)"
SECRET_ARN_PATTERN = (
    r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]{1,32}:[0-9]{12}:secret:"  # noqa: S105 - a pattern
    r"[A-Za-z0-9/_+=.@-]{1,512}$(?!\n)"
)
AUTH_FORMAT_PATTERN = r"^[ -~]{1,1024}$(?!\n)"

Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "ANY"]
Mode = Literal["direct", "proxy"]
RetryCondition = Literal["connect-failure", "5xx", "timeout"]


def _integral_number_to_int(value: object) -> object:
    """JSON has one number type: ``5.0`` is the integer 5, as JSON Schema's ``integer`` says."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _refuse_null(value: object) -> object:
    if value is None:
        raise PydanticCustomError(
            "null_not_allowed", "null is not allowed here; leave the field out instead"
        )
    return value


def _unique(items: list[Any]) -> list[Any]:
    seen: list[Any] = []
    for item in items:
        if item in seen:
            raise PydanticCustomError(
                "unique_items", "items must be unique; {item} appears more than once",
                {"item": json.dumps(item)},
            )
        seen.append(item)
    return items


Int = Annotated[int, BeforeValidator(_integral_number_to_int)]
Status = Annotated[int, Field(ge=100, le=599), BeforeValidator(_integral_number_to_int)]
Cidr = Annotated[str, Field(min_length=1, max_length=43)]
_UNIQUE = {"uniqueItems": True}


class _Contract(BaseModel):
    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, regex_engine="python-re"
    )


class Target(_Contract):
    """An in-VPC address served through the ALB: a private IP address and a port."""

    ip: str = Field(
        min_length=1, max_length=45,
        description="A private IPv4 (RFC 1918, or 100.64.0.0/10) or IPv6 (fc00::/7) address.",
    )
    port: Int = Field(ge=1, le=65535, description="The TCP port the target listens on.")


class Upstream(_Contract):
    """Where a route sends its traffic: exactly one of `url` or `targets`."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["url"]}, {"required": ["targets"]}]}
    )

    name: str = Field(
        pattern=NAME_PATTERN, min_length=1, max_length=63,
        description="Unique within the route; names the upstream in status, events and metrics.",
    )
    priority: Int = Field(
        ge=0, le=99,
        description="0 is the primary. Traffic fails over to the next priority in order; "
        "upstreams of equal priority share traffic by `weight`.",
    )
    weight: Int = Field(
        default=1, ge=1, le=999,
        description="Share of traffic among upstreams of the same priority.",
    )
    allow_insecure: bool = Field(
        default=False, description="Allow a plain `http` URL for this upstream."
    )
    url: Annotated[str | None, BeforeValidator(_refuse_null)] = Field(
        default=None, min_length=1, max_length=512,
        description="`https://host[:port][/base-path]` of a third-party endpoint "
        "(no credentials, query or fragment).",
    )
    targets: Annotated[list[Target] | None, BeforeValidator(_refuse_null)] = Field(
        default=None, min_length=1, max_length=20,
        description="In-VPC targets, served through the ALB.",
    )

    @model_validator(mode="after")
    def _url_or_targets(self) -> Upstream:
        if self.url is not None and self.targets is not None:
            raise PydanticCustomError(
                "url_and_targets", "an upstream has either url or targets, not both"
            )
        if self.url is None and self.targets is None:
            raise PydanticCustomError(
                "url_or_targets_missing", "an upstream needs one of url or targets"
            )
        return self

    @property
    def kind(self) -> Literal["url", "targets"]:
        """``url`` for a third-party endpoint, ``targets`` for in-VPC addresses."""
        return "url" if self.url is not None else "targets"


class HealthCheck(_Contract):
    """How turnout probes every upstream of the route."""

    path: str = Field(
        default="/", pattern=HEALTH_CHECK_PATH_PATTERN, min_length=1, max_length=1024,
        description="Path requested on each upstream.",
    )
    interval_seconds: Int = Field(default=10, ge=1, le=300, description="Time between probes.")
    timeout_ms: Int = Field(
        default=2000, ge=100, le=120000,
        description="A probe slower than this fails; must be below the interval.",
    )
    unhealthy_threshold: Int = Field(
        default=3, ge=1, le=10,
        description="Consecutive failed probes that make a healthy upstream unhealthy.",
    )
    healthy_threshold: Int = Field(
        default=2, ge=1, le=10,
        description="Consecutive successful probes that make an unhealthy upstream healthy.",
    )
    expected_statuses: Annotated[list[Status], AfterValidator(_unique)] = Field(
        default=[200], min_length=1, max_length=20, json_schema_extra=_UNIQUE,
        description="HTTP statuses that count as a successful probe.",
    )


class Failover(_Contract):
    """When traffic moves between upstreams."""

    automatic: bool = Field(
        default=True, description="Move traffic off an unhealthy upstream without a person."
    )
    failback: bool = Field(
        default=True, description="Move traffic back to a better priority once it is healthy."
    )
    min_hold_seconds: Int = Field(
        default=300, ge=0, le=86400,
        description="Least time traffic stays on an upstream before failing back.",
    )


class RateLimit(_Contract):
    """Per-client throttling, applied through the API key's usage plan."""

    requests_per_second: Int = Field(ge=1, le=10000, description="Steady request rate.")
    burst: Int = Field(ge=1, le=5000, description="Requests allowed at once above the rate.")


class Security(_Contract):
    """Who may call the route."""

    api_key_required: bool = Field(
        default=False, description="Callers must send a valid `x-api-key` header."
    )
    allowed_cidrs: Annotated[list[Cidr], AfterValidator(_unique)] = Field(
        default=[], max_length=50, json_schema_extra=_UNIQUE,
        description="Source networks allowed to call, as CIDRs; empty means any source.",
    )
    rate_limit: Annotated[RateLimit | None, BeforeValidator(_refuse_null)] = Field(
        default=None, description="Throttling per API key; leave out for no per-client limit."
    )


class UpstreamAuth(_Contract):
    """A credential added to every request sent upstream (requires `proxy` mode)."""

    header: str = Field(
        pattern=HEADER_NAME_PATTERN, min_length=1, max_length=128,
        description="Request header that carries the credential.",
    )
    secret_arn: str = Field(
        pattern=SECRET_ARN_PATTERN, min_length=1, max_length=2048,
        description="Secrets Manager secret holding the credential.",
    )
    format: str = Field(
        default="{secret}", pattern=AUTH_FORMAT_PATTERN, min_length=1, max_length=1024,
        description="Header value; `{secret}` (exactly once) stands for the secret.",
    )


class Retries(_Contract):
    """Retries on the next upstream within one request (`proxy` mode only)."""

    attempts: Int = Field(default=1, ge=0, le=5, description="Retries after the first try.")
    on: Annotated[list[RetryCondition], AfterValidator(_unique)] = Field(
        default=["connect-failure"], max_length=3, json_schema_extra=_UNIQUE,
        description="Failures that are retried. A connect failure is retried for any method; "
        "`5xx` and `timeout` only for idempotent methods.",
    )


class Route(_Contract):
    """A route: which requests it matches, and the upstreams that serve them."""

    route_id: str = Field(
        pattern=NAME_PATTERN, min_length=1, max_length=63,
        description="Identifies the route; the routes table's partition key.",
    )
    path: str = Field(
        min_length=1, max_length=1024,
        description="API Gateway resource path such as `/payments/{id}`, "
        "optionally ending in `{proxy+}`.",
    )
    methods: Annotated[list[Method], AfterValidator(_unique)] = Field(
        default=["ANY"], min_length=1, max_length=8, json_schema_extra=_UNIQUE,
        description="HTTP methods served; `ANY` (alone) serves every method.",
    )
    mode: Mode = Field(
        default="direct",
        description="`direct`: API Gateway forwards to the active upstream. "
        "`proxy`: the data-plane function forwards, adding credentials and retries.",
    )
    upstreams: list[Upstream] = Field(
        min_length=1, max_length=10, description="Where traffic goes, grouped by priority."
    )
    health_check: HealthCheck = Field(default=HealthCheck(), description=HealthCheck.__doc__)
    failover: Failover = Field(default=Failover(), description=Failover.__doc__)
    security: Security = Field(default=Security(), description=Security.__doc__)
    upstream_auth: Annotated[UpstreamAuth | None, BeforeValidator(_refuse_null)] = Field(
        default=None, description=UpstreamAuth.__doc__
    )
    timeout_ms: Int = Field(
        default=29000, ge=50, le=29000,
        description="Integration timeout (API Gateway allows 50 ms to 29 s).",
    )
    retries: Retries = Field(default=Retries(), description=Retries.__doc__)
    description: Annotated[str | None, BeforeValidator(_refuse_null)] = Field(
        default=None, max_length=1024, description="Free text for people."
    )

    def to_document(self) -> dict[str, Any]:
        """The route as plain JSON data with every default filled in."""
        return self.model_dump(mode="json", exclude_none=True)

    def spec_hash(self) -> str:
        """SHA-256 (hex) of the canonical JSON of :meth:`to_document`.

        Two documents that mean the same route (keys in another order, defaults written out
        or left out) have the same hash.
        """
        canonical = json.dumps(
            self.to_document(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def upstreams_by_priority(self) -> list[Upstream]:
        """Upstreams by ascending priority; list order is kept within a priority."""
        return sorted(self.upstreams, key=lambda upstream: upstream.priority)

    def primary(self) -> Upstream:
        """The upstream that serves traffic when every upstream is healthy."""
        return self.upstreams_by_priority()[0]
