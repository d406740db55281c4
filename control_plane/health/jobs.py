"""What the prober probes, derived from the routes (pure).

One :class:`ProbeJob` per upstream of every valid route. A ``url`` upstream has one
:class:`Endpoint` (the health-check path under the upstream's URL, base path included); a
``targets`` upstream has one per target (``http://<ip>:<port><path>``, as an ALB checks its
targets). Every endpoint of a job is probed in the same round.
"""

from __future__ import annotations

from dataclasses import dataclass

from control_plane.model.health import target_key
from control_plane.model.route import Route


@dataclass(frozen=True)
class Endpoint:
    """One address to probe: ``key`` names it in the health item (the URL, or ``ip:port``)."""

    key: str
    scheme: str
    host: str
    port: int
    path: str
    is_target: bool


@dataclass(frozen=True)
class ProbeJob:
    """One upstream of one route, with its health-check settings."""

    route_id: str
    upstream: str
    spec_hash: str
    kind: str  # "url" | "targets"
    endpoints: tuple[Endpoint, ...]
    interval_seconds: float
    timeout_seconds: float
    expected_statuses: frozenset[int]
    unhealthy_threshold: int
    healthy_threshold: int
    url: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.route_id, self.upstream)

    @property
    def fingerprint(self) -> tuple[str, ...]:
        """What is probed: when it changes, the health recorded before no longer applies."""
        return (self.kind, *sorted(e.key for e in self.endpoints))


def jobs_for(route: Route) -> list[ProbeJob]:
    """One job per upstream of ``route`` (which passed validation)."""
    check = route.health_check
    spec_hash = route.spec_hash()
    jobs = []
    for upstream in route.upstreams:
        if upstream.url is not None:
            endpoints: tuple[Endpoint, ...] = (url_endpoint(upstream.url, check.path),)
        else:
            endpoints = tuple(target_endpoint(t.ip, t.port, check.path)
                              for t in upstream.targets or [])
        jobs.append(ProbeJob(
            route_id=route.route_id, upstream=upstream.name, spec_hash=spec_hash,
            kind=upstream.kind, endpoints=endpoints,
            interval_seconds=float(check.interval_seconds),
            timeout_seconds=check.timeout_ms / 1000.0,
            expected_statuses=frozenset(check.expected_statuses),
            unhealthy_threshold=check.unhealthy_threshold,
            healthy_threshold=check.healthy_threshold,
            url=upstream.url,
        ))
    return jobs


def url_endpoint(url: str, path: str) -> Endpoint:
    """The health-check request for a validated ``scheme://host[:port][/base]`` upstream URL."""
    scheme, _, rest = url.partition("://")
    authority, slash, base = rest.partition("/")
    host, port = _split_authority(authority, 443 if scheme.lower() == "https" else 80)
    base_path = ("/" + base).rstrip("/") if slash else ""
    return Endpoint(key=url, scheme=scheme.lower(), host=host, port=port,
                    path=base_path + path, is_target=False)


def target_endpoint(ip: str, port: int, path: str) -> Endpoint:
    """The health-check request for an in-VPC target (plain HTTP, as the ALB's default)."""
    return Endpoint(key=target_key(ip, port), scheme="http", host=ip, port=port, path=path,
                    is_target=True)


def _split_authority(authority: str, default_port: int) -> tuple[str, int]:
    if authority.startswith("["):
        host, _, rest = authority[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    host, colon, port = authority.rpartition(":")
    if colon and port.isdigit():
        return host, int(port)
    return authority, default_port
