"""The egress policy: which addresses turnout may send traffic to (server-side request forgery).

A route's ``url`` upstream names a third-party endpoint reached over the public internet, so
it must not name, or resolve to, an address inside the network turnout runs in: loopback,
link-local (the instance metadata service at 169.254.169.254 and fd00:ec2::254), private,
shared (CGNAT), multicast, unspecified, reserved or broadcast addresses, nor an IPv6 address
that embeds one of those IPv4 addresses (IPv4-mapped, IPv4-compatible, 6to4, NAT64).
IPv4 literals are read the way ``inet_aton`` and browsers read them, so ``2130706433``,
``0177.0.0.1``, ``0x7f.1`` and ``127.1`` are all 127.0.0.1. Names that only exist inside a
network (``localhost``, ``*.localhost``, ``*.internal``, ``*.local``, ``*.localdomain``,
``*.home.arpa``) are refused without a lookup. A ``targets`` upstream is the opposite:
in-VPC addresses, which must be private.

Everything here is pure except :func:`system_resolver`. DNS is injected as a
:data:`Resolver`; a host that does not resolve is not an error (DNS changes over time), and the
data plane checks the addresses it actually connects to with :func:`address_refusal`, which
also defeats DNS rebinding.

``allow_loopback`` (``turnout up --allow-loopback-upstreams``, for local demos) permits
127.0.0.0/8, ``::1`` and the name ``localhost``, with plain ``http`` for them, and nothing else.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], Sequence[str]]
"""Host name -> the IP addresses it resolves to, as strings; ``[]`` when it does not resolve."""

RESOLVE_TIMEOUT_SECONDS = 2.0
MAX_RESOLVED_ADDRESSES = 64

# Characters an API Gateway stage variable value may hold.
_URL_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#&=,]*")
_URL_SHAPE = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<path>[^?#]*)"
    r"(?:\?(?P<query>[^#]*))?(?:#(?P<fragment>.*))?",
    re.DOTALL,
)
_PORT = re.compile(r"[0-9]{1,5}")
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9\-._~:&=,]+")
_NUMERIC_LABEL = re.compile(r"(?:0[xX][0-9A-Fa-f]*|[0-9]+)")

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

REFUSED_IPV4: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_V4("0.0.0.0/32"), "unspecified"),
    (_V4("0.0.0.0/8"), "reserved ('this network')"),
    (_V4("10.0.0.0/8"), "private (RFC 1918)"),
    (_V4("100.64.0.0/10"), "shared address space (CGNAT)"),
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("169.254.169.254/32"), "link-local (the instance metadata service)"),
    (_V4("169.254.0.0/16"), "link-local"),
    (_V4("172.16.0.0/12"), "private (RFC 1918)"),
    (_V4("192.0.0.0/24"), "reserved (IETF protocol assignments)"),
    (_V4("192.0.2.0/24"), "reserved (documentation)"),
    (_V4("192.88.99.0/24"), "reserved (6to4 relay)"),
    (_V4("192.168.0.0/16"), "private (RFC 1918)"),
    (_V4("198.18.0.0/15"), "reserved (benchmarking)"),
    (_V4("198.51.100.0/24"), "reserved (documentation)"),
    (_V4("203.0.113.0/24"), "reserved (documentation)"),
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("255.255.255.255/32"), "broadcast"),
    (_V4("240.0.0.0/4"), "reserved"),
)

REFUSED_IPV6: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("::/128"), "unspecified"),
    (_V6("::1/128"), "loopback"),
    (_V6("fd00:ec2::254/128"), "the instance metadata service (IPv6)"),
    (_V6("fd00:ec2::/32"), "reserved by AWS"),
    (_V6("::/96"), "IPv4-compatible (deprecated)"),
    (_V6("64:ff9b:1::/48"), "private (local-use NAT64)"),
    (_V6("100::/64"), "reserved (discard-only)"),
    (_V6("2001::/23"), "reserved (IETF special purpose, incl. Teredo)"),
    (_V6("2001:db8::/32"), "reserved (documentation)"),
    (_V6("3fff::/20"), "reserved (documentation)"),
    (_V6("fc00::/7"), "private (unique local)"),
    (_V6("fe80::/10"), "link-local"),
    (_V6("fec0::/10"), "reserved (site-local)"),
    (_V6("ff00::/8"), "multicast"),
)
_IPV6_GLOBAL_UNICAST = _V6("2000::/3")
_NAT64 = _V6("64:ff9b::/96")

TARGET_NETWORKS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
    _V4("10.0.0.0/8"), _V4("172.16.0.0/12"), _V4("192.168.0.0/16"), _V4("100.64.0.0/10"),
    _V6("fc00::/7"),
)
PRIVATE_NAME_SUFFIXES = ("localhost", "internal", "local", "localdomain", "home.arpa")
"""Names that only ever point inside a network: refused for url upstreams without a lookup."""
_AWS_RESERVED_IPV6 = _V6("fd00:ec2::/32")
_LOOPBACK_V4 = _V4("127.0.0.0/8")


@dataclass(frozen=True)
class Refusal:
    """Why an upstream is refused: a reason code and a sentence for people."""

    reason: str
    message: str


def parse_ipv4(text: str) -> ipaddress.IPv4Address | None:
    """Read an IPv4 address the way ``inet_aton`` (and a browser) does, or None.

    One to four dot-separated numbers, each decimal, octal (leading ``0``) or hex (``0x``);
    the last number fills the remaining bytes (``127.1`` is 127.0.0.1, ``2130706433`` too).
    One trailing dot is allowed, as in a fully qualified name.
    """
    parts = text.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        number = _parse_ipv4_number(part)
        if number is None:
            return None
        numbers.append(number)
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _parse_ipv4_number(part: str) -> int | None:
    if len(part) > 12:
        return None
    if part[:2] in ("0x", "0X"):
        digits = part[2:]
        if digits == "":
            return 0
        return int(digits, 16) if re.fullmatch(r"[0-9A-Fa-f]+", digits) else None
    if re.fullmatch(r"0[0-7]+", part):
        return int(part, 8)
    if re.fullmatch(r"0|[1-9][0-9]*", part):
        return int(part)
    return None


def parse_ip(text: str) -> IPAddress | None:
    """A strictly written IP address (``10.0.0.1``, ``fd00::1``), or None. No zone ids."""
    if "%" in text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def address_refusal(address: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why turnout must not send traffic to ``address`` (None: it is a public address).

    The data plane calls this for every address it is about to connect to.
    """
    if isinstance(address, ipaddress.IPv4Address):
        if allow_loopback and address in _LOOPBACK_V4:
            return None
        return _ipv4_refusal(address)
    if allow_loopback and address == ipaddress.IPv6Address("::1"):
        return None
    return _ipv6_refusal(address)


def _ipv4_refusal(address: ipaddress.IPv4Address) -> str | None:
    for network, label in REFUSED_IPV4:
        if address in network:
            return label
    return None


def _ipv6_refusal(address: ipaddress.IPv6Address) -> str | None:
    if address.scope_id is not None:
        return "scoped (zone id)"
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        form, v4 = embedded
        inner = _ipv4_refusal(v4)
        return None if inner is None else f"{form} {v4}, {inner}"
    for network, label in REFUSED_IPV6:
        if address in network:
            return label
    if address not in _IPV6_GLOBAL_UNICAST:
        return "reserved (outside global unicast)"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    if address.ipv4_mapped is not None:
        return "IPv4-mapped", address.ipv4_mapped
    if address.sixtofour is not None:
        return "6to4", address.sixtofour
    if address in _NAT64:
        return "NAT64", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def target_refusal(text: str) -> Refusal | None:
    """Why ``text`` cannot be an ALB IP target (None: a private address it can take)."""
    address = parse_ip(text)
    if address is None:
        return Refusal("TargetAddressInvalid", "not an IP address written in the usual form")
    in_range = any(address in network for network in TARGET_NETWORKS)
    if in_range and address not in _AWS_RESERVED_IPV6:
        return None
    return Refusal(
        "TargetAddressNotPrivate",
        f"{address} is not a private address; in-VPC targets must be in "
        + ", ".join(str(network) for network in TARGET_NETWORKS),
    )


def is_loopback(text: str) -> bool:
    """True for a strictly written 127.0.0.0/8 or ``::1`` address."""
    address = parse_ip(text)
    if isinstance(address, ipaddress.IPv4Address):
        return address in _LOOPBACK_V4
    return address == ipaddress.IPv6Address("::1")


@dataclass(frozen=True)
class _Host:
    name: str | None = None
    address: IPAddress | None = None
    written: str = ""


def check_upstream_url(
    url: str,
    *,
    allow_insecure: bool = False,
    allow_loopback: bool = False,
    resolver: Resolver | None = None,
) -> list[Refusal]:
    """Every reason the upstream ``url`` is refused; empty when turnout may call it.

    The accepted shape is ``scheme://host[:port][/base-path]`` with ``https`` (or ``http``
    when ``allow_insecure``). With a ``resolver``, a host name is also resolved and refused
    when any of its addresses is refused.
    """
    refusals: list[Refusal] = []
    match = _URL_SHAPE.fullmatch(url)
    credentials = match is not None and "@" in match["authority"]
    bad = sorted(set(_URL_CHARACTERS.sub("", url)) - ({"@"} if credentials else set()))
    if bad:
        shown = " ".join(repr(c) for c in bad[:8])
        refusals.append(Refusal(
            "UpstreamUrlInvalid",
            f"characters an API Gateway stage variable cannot hold: {shown}",
        ))
    if match is None:
        refusals.append(Refusal(
            "UpstreamUrlInvalid", "expected https://host[:port][/base-path]"
        ))
        return refusals
    scheme = match["scheme"]
    authority = match["authority"]
    if credentials:
        refusals.append(Refusal(
            "UpstreamUrlInvalid",
            "credentials in a URL would leak into logs and stage variables; "
            "use upstream_auth instead",
        ))
        authority = authority.rpartition("@")[2]
    if match["query"] is not None:
        refusals.append(Refusal(
            "UpstreamUrlInvalid", "a query string is not allowed in an upstream URL"
        ))
    if match["fragment"] is not None:
        refusals.append(Refusal(
            "UpstreamUrlInvalid", "a fragment is not allowed in an upstream URL"
        ))
    refusals.extend(_path_refusals(match["path"]))
    host_text, port_refusals = _split_port(authority)
    refusals.extend(port_refusals)
    host, host_refusals = _read_host(host_text)
    refusals.extend(host_refusals)
    loopback_host = host is not None and _is_permitted_loopback(host, allow_loopback)
    refusals.extend(_scheme_refusals(scheme, allow_insecure or loopback_host))
    if host is not None:
        refusals.extend(_address_refusals(host, allow_loopback, resolver))
    return refusals


def _scheme_refusals(scheme: str, http_allowed: bool) -> list[Refusal]:
    lowered = scheme.lower()
    if lowered == "https" or (lowered == "http" and http_allowed):
        if scheme != lowered:
            return [Refusal("UpstreamUrlInvalid", "write the scheme in lower case")]
        return []
    if lowered == "http":
        return [Refusal(
            "UpstreamSchemeNotAllowed",
            "plain http is allowed only when the upstream sets allow_insecure: true",
        )]
    return [Refusal(
        "UpstreamSchemeNotAllowed", f"scheme {scheme[:16]!r} is not allowed; use https"
    )]


def _path_refusals(path: str) -> list[Refusal]:
    if path in ("", "/"):
        return []
    segments = path[1:].split("/")
    if segments[-1] == "":
        segments.pop()
    for segment in segments:
        if segment in ("", ".", "..") or not _PATH_SEGMENT.fullmatch(segment):
            return [Refusal(
                "UpstreamUrlInvalid",
                "the base path must be /-separated names, without empty, '.' or '..' segments",
            )]
    return []


def _split_port(authority: str) -> tuple[str, list[Refusal]]:
    if authority.startswith("["):
        close = authority.find("]")
        if close == -1:
            return authority, []
        host, rest = authority[: close + 1], authority[close + 1:]
        if rest == "":
            return host, []
        if not rest.startswith(":"):
            return host, [Refusal("UpstreamUrlInvalid", "unexpected text after the host")]
        port = rest[1:]
    elif ":" in authority:
        host, _, port = authority.rpartition(":")
    else:
        return authority, []
    if _PORT.fullmatch(port) and 1 <= int(port) <= 65535:
        return host, []
    return host, [Refusal("UpstreamUrlInvalid", "the port must be a number from 1 to 65535")]


def _read_host(text: str) -> tuple[_Host | None, list[Refusal]]:
    if text == "":
        return None, [Refusal("UpstreamUrlInvalid", "the URL has no host")]
    if text.startswith("[") and text.endswith("]"):
        literal = text[1:-1]
        if "%" in literal:
            return None, [Refusal(
                "UpstreamAddressNotAllowed", "a scoped IPv6 address (zone id) is not allowed"
            )]
        try:
            return _Host(address=ipaddress.IPv6Address(literal)), []
        except ValueError:
            return None, [Refusal("UpstreamUrlInvalid", "not a valid IPv6 address")]
    labels = (text[:-1] if text.endswith(".") else text).split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        address = parse_ipv4(text)
        if address is None:
            return None, [Refusal(
                "UpstreamUrlInvalid", "the host looks like an IPv4 address but is not a valid one"
            )]
        return _Host(address=address, written=text), []
    if len(text) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return None, [Refusal("UpstreamUrlInvalid", "the host is not a valid DNS name")]
    return _Host(name=text.lower()), []


def _private_suffix(name: str) -> str | None:
    bare = name.rstrip(".")
    for suffix in PRIVATE_NAME_SUFFIXES:
        if bare == suffix or bare.endswith("." + suffix):
            return suffix
    return None


def _is_permitted_loopback(host: _Host, allow_loopback: bool) -> bool:
    """With ``allow_loopback``: the name ``localhost`` or a loopback address."""
    if not allow_loopback:
        return False
    if host.name is not None:
        return host.name.rstrip(".") == "localhost"
    return host.address is not None and is_loopback(str(host.address))


def _address_refusals(
    host: _Host, allow_loopback: bool, resolver: Resolver | None
) -> list[Refusal]:
    if host.address is not None:
        label = address_refusal(host.address, allow_loopback=allow_loopback)
        if label is None:
            return []
        shown = str(host.address)
        if host.written and host.written.rstrip(".") != shown:
            shown = f"{host.written[:64]} (that is {shown})"
        return [Refusal("UpstreamAddressNotAllowed", f"{shown} is not allowed: {label}")]
    name = host.name or ""
    suffix = _private_suffix(name)
    if suffix is not None:
        if _is_permitted_loopback(host, allow_loopback):
            return []
        where = "this machine" if suffix == "localhost" else "a private network"
        what = suffix if name.rstrip(".") == suffix else f"names under .{suffix}"
        verb = "points" if what == suffix else "point"
        return [Refusal("UpstreamAddressNotAllowed", f"{what} {verb} at {where}")]
    if resolver is None:
        return []
    refused = []
    for text in _resolve(resolver, name):
        address_text, _, zone = text.partition("%")
        address = parse_ip(address_text)
        if address is None:
            continue
        label = "scoped (zone id)" if zone else address_refusal(
            address, allow_loopback=allow_loopback
        )
        if label is not None:
            refused.append(f"{address} ({label})")
    if not refused:
        return []
    shown = ", ".join(refused[:3]) + (f" and {len(refused) - 3} more" if len(refused) > 3 else "")
    return [Refusal(
        "UpstreamAddressNotAllowed", f"{name} resolves to addresses that are not allowed: {shown}"
    )]


def _resolve(resolver: Resolver, name: str) -> list[str]:
    try:
        answer = resolver(name)
        return [a for a in list(answer)[:MAX_RESOLVED_ADDRESSES] if isinstance(a, str)]
    except Exception:  # noqa: BLE001 - a failing resolver leaves the name unresolved
        return []


def system_resolver(host: str, *, timeout_seconds: float = RESOLVE_TIMEOUT_SECONDS) -> list[str]:
    """Resolve ``host`` with the system resolver; ``[]`` when it fails or takes too long.

    ``getaddrinfo`` cannot be cancelled, so it runs in a daemon thread that is abandoned
    after ``timeout_seconds``.
    """
    answer: list[str] = []

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError, ValueError):
            return
        for info in infos:
            address = str(info[4][0])
            if address not in answer:
                answer.append(address)

    worker = threading.Thread(target=lookup, name="turnout-resolve", daemon=True)
    worker.start()
    worker.join(timeout_seconds)
    return [] if worker.is_alive() else list(answer)
