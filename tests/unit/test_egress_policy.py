"""The egress (SSRF) policy: which upstream URLs and targets turnout refuses.

DNS is injected: every resolver here is a dictionary, so no test touches the network.
"""

from __future__ import annotations

import ipaddress
import socket
import time

import pytest

from control_plane.errors import InvalidRouteError
from control_plane.model import egress
from control_plane.model.egress import check_upstream_url, parse_ipv4, system_resolver
from control_plane.model.validation import validate_route

NOT_ALLOWED = "UpstreamAddressNotAllowed"
BAD_SCHEME = "UpstreamSchemeNotAllowed"
BAD_URL = "UpstreamUrlInvalid"

DNS = {
    "internal.example": ["10.0.0.5"],
    "rebind.example": ["93.184.215.14", "127.0.0.1"],
    "metadata.example": ["169.254.169.254"],
    "v6-loopback.example": ["::1"],
    "mapped.example": ["::ffff:10.0.0.1"],
    "ula.example": ["fd12:3456::1"],
    "cgnat.example": ["100.100.100.200"],
    "imds-v6.example": ["fd00:ec2::254"],
    "scoped.example": ["fe80::1%eth0"],
    "nat64-private.example": ["64:ff9b::a00:1"],
    "api.stripe.com": ["54.187.174.169", "54.187.216.72"],
    "api.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:10c8"],
    "nat64-public.example": ["64:ff9b::808:808"],
    "dev.test": ["127.0.0.1", "::1"],
}


def fake_dns(host: str) -> list[str]:
    """A resolver over ``DNS``; like real DNS, it reads ``name.`` as ``name``."""
    return DNS.get(host.removesuffix("."), [])


def reasons(url: str, **kwargs) -> set[str]:
    kwargs.setdefault("resolver", fake_dns)
    return {r.reason for r in check_upstream_url(url, **kwargs)}


HOSTILE = [
    # loopback, every spelling
    ("https://127.0.0.1", NOT_ALLOWED),
    ("https://127.1", NOT_ALLOWED),
    ("https://127.0.1", NOT_ALLOWED),
    ("https://2130706433", NOT_ALLOWED),
    ("https://0177.0.0.1", NOT_ALLOWED),
    ("https://0x7f.0.0.1", NOT_ALLOWED),
    ("https://0x7f000001", NOT_ALLOWED),
    ("https://0X7F.1", NOT_ALLOWED),
    ("https://017700000001", NOT_ALLOWED),
    ("https://0177.0.0x0.1", NOT_ALLOWED),
    ("https://127.000.000.001", NOT_ALLOWED),
    ("https://127.0.0.1.", NOT_ALLOWED),
    ("https://127.255.255.254:8443/api", NOT_ALLOWED),
    # unspecified, broadcast, reserved, multicast
    ("https://0", NOT_ALLOWED),
    ("https://0.0.0.0", NOT_ALLOWED),
    ("https://0x", NOT_ALLOWED),
    ("https://255.255.255.255", NOT_ALLOWED),
    ("https://240.0.0.1", NOT_ALLOWED),
    ("https://224.0.0.251", NOT_ALLOWED),
    ("https://192.0.2.10", NOT_ALLOWED),
    # link-local and the metadata service
    ("https://169.254.169.254", NOT_ALLOWED),
    ("https://169.254.169.254/latest/meta-data/iam", NOT_ALLOWED),
    ("https://0xa9fea9fe", NOT_ALLOWED),
    ("https://2852039166", NOT_ALLOWED),
    ("https://0251.0376.0251.0376", NOT_ALLOWED),
    ("https://169.254.43518", NOT_ALLOWED),
    ("https://169.254.170.2/v2/credentials", NOT_ALLOWED),
    # private and shared
    ("https://10.0.0.1", NOT_ALLOWED),
    ("https://10.1", NOT_ALLOWED),
    ("https://172.16.5.4", NOT_ALLOWED),
    ("https://172.31.255.255", NOT_ALLOWED),
    ("https://192.168.1.1", NOT_ALLOWED),
    ("https://100.64.0.1", NOT_ALLOWED),
    ("https://100.127.255.254", NOT_ALLOWED),
    # IPv6 forms (also refused for their brackets, checked below)
    ("https://[::1]", NOT_ALLOWED),
    ("https://[::]", NOT_ALLOWED),
    ("https://[::ffff:127.0.0.1]", NOT_ALLOWED),
    ("https://[::ffff:7f00:1]", NOT_ALLOWED),
    ("https://[::ffff:a9fe:a9fe]", NOT_ALLOWED),
    ("https://[::127.0.0.1]", NOT_ALLOWED),
    ("https://[::7f00:1]", NOT_ALLOWED),
    ("https://[fd00:ec2::254]", NOT_ALLOWED),
    ("https://[fe80::1]", NOT_ALLOWED),
    ("https://[fe80::1%25eth0]", NOT_ALLOWED),
    ("https://[fc00::1]", NOT_ALLOWED),
    ("https://[fd12:3456::1]", NOT_ALLOWED),
    ("https://[2002:7f00:1::]", NOT_ALLOWED),
    ("https://[2002:a9fe:a9fe::1]", NOT_ALLOWED),
    ("https://[64:ff9b::7f00:1]", NOT_ALLOWED),
    ("https://[64:ff9b::169.254.169.254]", NOT_ALLOWED),
    ("https://[ff02::1]", NOT_ALLOWED),
    ("https://[2001:db8::1]", NOT_ALLOWED),
    ("https://[2001::1]", NOT_ALLOWED),
    # names for this machine
    ("https://localhost", NOT_ALLOWED),
    ("https://LOCALHOST:8443", NOT_ALLOWED),
    ("https://localhost.", NOT_ALLOWED),
    ("https://api.localhost", NOT_ALLOWED),
    # names that only exist inside a network
    ("https://instance-data.ec2.internal/latest", NOT_ALLOWED),
    ("https://metadata.google.internal", NOT_ALLOWED),
    ("https://printer.local", NOT_ALLOWED),
    ("https://router.home.arpa", NOT_ALLOWED),
    # names that resolve to forbidden addresses
    ("https://internal.example", NOT_ALLOWED),
    ("https://rebind.example", NOT_ALLOWED),
    ("https://metadata.example/latest", NOT_ALLOWED),
    ("https://v6-loopback.example", NOT_ALLOWED),
    ("https://mapped.example", NOT_ALLOWED),
    ("https://ula.example", NOT_ALLOWED),
    ("https://cgnat.example", NOT_ALLOWED),
    ("https://imds-v6.example", NOT_ALLOWED),
    ("https://scoped.example", NOT_ALLOWED),
    ("https://nat64-private.example", NOT_ALLOWED),
    ("https://INTERNAL.example.", NOT_ALLOWED),
    # schemes
    ("http://api.example.com", BAD_SCHEME),
    ("ftp://files.example.com", BAD_SCHEME),
    ("file:///etc/passwd", BAD_SCHEME),
    ("gopher://api.example.com:70/_x", BAD_SCHEME),
    ("ws://api.example.com", BAD_SCHEME),
    ("javascript:alert(1)", BAD_URL),
    # shape
    ("https://user:secret@api.example.com", BAD_URL),
    ("https://api.example.com@127.0.0.1", BAD_URL),
    ("https://127.0.0.1:80@api.example.com", BAD_URL),
    ("https://api.example.com?url=http://169.254.169.254", BAD_URL),
    ("https://api.example.com/#fragment", BAD_URL),
    ("https://api.example.com\\@127.0.0.1", BAD_URL),
    ("https://api.example.com%2F@127.0.0.1", BAD_URL),
    (" https://api.example.com", BAD_URL),
    ("https://api.example.com/v1/../admin", BAD_URL),
    ("https://api.example.com//admin", BAD_URL),
    ("https://api.example.com:0", BAD_URL),
    ("https://api.example.com:65536", BAD_URL),
    ("https://api.example.com:", BAD_URL),
    ("https://1.2.3.4.5", BAD_URL),
    ("https://08.0.0.1", BAD_URL),
    ("https://example.0x10", BAD_URL),
    ("https://", BAD_URL),
    ("https://exa mple.com", BAD_URL),
    ("https://ex\u0430mple.com", BAD_URL),
    ("https://api.example.com\n", BAD_URL),
    ("HTTPS://api.example.com", BAD_URL),
]


def test_the_hostile_table_is_large():
    assert len(HOSTILE) >= 40
    assert sum(1 for _, reason in HOSTILE if reason == NOT_ALLOWED) >= 40


@pytest.mark.parametrize(("url", "reason"), HOSTILE, ids=[u for u, _ in HOSTILE])
def test_hostile_upstream_url_is_refused_with_its_reason(url, reason):
    assert reason in reasons(url, allow_insecure=False)


NOT_ABOUT_HTTP = [(u, r) for u, r in HOSTILE if not u.startswith("http://")]


@pytest.mark.parametrize(("url", "reason"), NOT_ABOUT_HTTP, ids=[u for u, _ in NOT_ABOUT_HTTP])
def test_hostile_upstream_url_stays_refused_with_allow_insecure(url, reason):
    assert reason in reasons(url, allow_insecure=True)


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/latest/meta-data", "http://10.0.0.1:8080", "http://0x7f.1",
     "http://[::ffff:127.0.0.1]", "http://internal.example"],
)
def test_allow_insecure_permits_http_but_not_a_forbidden_address(url):
    assert NOT_ALLOWED in reasons(url, allow_insecure=True)
    assert BAD_SCHEME not in reasons(url, allow_insecure=True)


PUBLIC = [
    "https://api.stripe.com",
    "https://api.example.com:8443/v1",
    "https://api.example.com/",
    "https://api.example.com/v1/orders",
    "https://8.8.8.8",
    "https://1.1.1.1/dns-query",
    "https://nat64-public.example",
    "https://does-not-exist.example",
    "https://Api.Example.com",
    "https://svc_1.example.com:443/a-b/c.d/e~f",
]


@pytest.mark.parametrize("url", PUBLIC)
def test_public_https_upstream_is_accepted(url):
    assert check_upstream_url(url, resolver=fake_dns) == []


@pytest.mark.parametrize("url", PUBLIC)
def test_public_upstream_is_accepted_when_the_name_does_not_resolve(url):
    assert check_upstream_url(url, resolver=lambda host: []) == []


@pytest.mark.parametrize("url", PUBLIC)
def test_public_upstream_is_accepted_without_dns(url):
    assert check_upstream_url(url, resolver=None) == []


def test_plain_http_is_accepted_with_allow_insecure():
    assert check_upstream_url("http://api.example.com", allow_insecure=True) == []


def test_a_failing_resolver_leaves_the_name_unresolved():
    def broken(host: str) -> list[str]:
        raise OSError("resolver down")

    assert check_upstream_url("https://api.example.com", resolver=broken) == []


def test_the_resolver_is_asked_for_the_bare_lower_case_host():
    asked = []
    check_upstream_url("https://API.Example.com:8443/v1", resolver=lambda h: asked.append(h) or [])
    assert asked == ["api.example.com"]


def test_public_ipv6_literal_is_refused_only_for_its_brackets():
    refusals = check_upstream_url("https://[2606:4700::1111]")
    assert {r.reason for r in refusals} == {BAD_URL}
    assert "'['" in refusals[0].message


def test_refusal_for_a_resolved_name_names_the_address_and_its_range():
    [refusal] = check_upstream_url("https://metadata.example", resolver=fake_dns)
    assert "169.254.169.254" in refusal.message
    assert "metadata" in refusal.message


def test_credentials_in_a_url_are_never_echoed():
    refusals = check_upstream_url("https://user:hunter2@api.example.com")
    assert refusals
    assert all("hunter2" not in r.message for r in refusals)


LOOPBACK_OK = [
    "http://127.0.0.1:9000",
    "https://127.0.0.1:9000/api",
    "http://127.0.0.2",
    "http://localhost:9000",
    "https://localhost",
    "https://dev.test",
]


@pytest.mark.parametrize("url", LOOPBACK_OK)
def test_allow_loopback_permits_local_demo_upstreams(url):
    assert check_upstream_url(url, allow_loopback=True, resolver=fake_dns) == []


@pytest.mark.parametrize("url", LOOPBACK_OK)
def test_local_demo_upstreams_are_refused_without_allow_loopback(url):
    assert NOT_ALLOWED in reasons(url)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254", NOT_ALLOWED),
        ("https://10.0.0.1", NOT_ALLOWED),
        ("https://0.0.0.0", NOT_ALLOWED),
        ("https://192.168.0.1", NOT_ALLOWED),
        ("https://[::ffff:127.0.0.1]", NOT_ALLOWED),
        ("https://api.localhost", NOT_ALLOWED),
        ("https://metadata.example", NOT_ALLOWED),
        ("https://internal.example", NOT_ALLOWED),
        ("http://api.example.com", BAD_SCHEME),
        ("http://dev.test", BAD_SCHEME),
    ],
)
def test_allow_loopback_permits_nothing_but_loopback(url, reason):
    assert reason in reasons(url, allow_loopback=True)


# ---- the same policy through validate_route -------------------------------------------------


def route_with(upstream: dict) -> dict:
    return {"route_id": "r", "path": "/r", "upstreams": [{"name": "u", "priority": 0, **upstream}]}


def test_link_local_upstream_is_rejected_with_reason_and_field():
    doc = route_with({"url": "http://169.254.169.254", "allow_insecure": True})
    with pytest.raises(InvalidRouteError) as caught:
        validate_route(doc)
    assert [(p.field, p.reason) for p in caught.value.problems] == [
        ("upstreams[0].url", NOT_ALLOWED)
    ]
    assert caught.value.route_id == "r"


def test_name_resolving_to_a_private_address_is_rejected_through_the_injected_resolver():
    doc = route_with({"url": "https://internal.example"})
    assert validate_route(doc).route_id == "r"
    with pytest.raises(InvalidRouteError) as caught:
        validate_route(doc, resolver=fake_dns)
    assert caught.value.problems[0].reason == NOT_ALLOWED


def test_loopback_target_is_accepted_only_for_local_demos():
    doc = route_with({"targets": [{"ip": "127.0.0.1", "port": 9000}]})
    assert validate_route(doc, allow_loopback=True).primary().targets[0].ip == "127.0.0.1"
    with pytest.raises(InvalidRouteError) as caught:
        validate_route(doc)
    assert caught.value.problems[0].reason == "TargetAddressNotPrivate"


# ---- targets --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ip", ["10.0.1.12", "172.16.0.1", "172.31.255.254", "192.168.0.10", "100.64.0.1",
           "100.127.255.254", "fd00::1", "fc00::1", "fd12:3456:789a::5"],
)
def test_private_target_address_is_accepted(ip):
    assert egress.target_refusal(ip) is None


@pytest.mark.parametrize(
    ("ip", "reason"),
    [
        ("8.8.8.8", "TargetAddressNotPrivate"),
        ("127.0.0.1", "TargetAddressNotPrivate"),
        ("169.254.169.254", "TargetAddressNotPrivate"),
        ("0.0.0.0", "TargetAddressNotPrivate"),
        ("172.32.0.1", "TargetAddressNotPrivate"),
        ("100.128.0.1", "TargetAddressNotPrivate"),
        ("224.0.0.1", "TargetAddressNotPrivate"),
        ("fd00:ec2::254", "TargetAddressNotPrivate"),
        ("fe80::1", "TargetAddressNotPrivate"),
        ("::ffff:10.0.0.1", "TargetAddressNotPrivate"),
        ("2001:db8::1", "TargetAddressNotPrivate"),
        ("::1", "TargetAddressNotPrivate"),
        ("10.0.0.01", "TargetAddressInvalid"),
        ("010.0.0.1", "TargetAddressInvalid"),
        ("10.1", "TargetAddressInvalid"),
        ("167772161", "TargetAddressInvalid"),
        ("fe80::1%eth0", "TargetAddressInvalid"),
        ("orders.internal", "TargetAddressInvalid"),
        (" 10.0.0.1", "TargetAddressInvalid"),
    ],
)
def test_target_address_outside_private_ranges_is_refused(ip, reason):
    refusal = egress.target_refusal(ip)
    assert refusal is not None and refusal.reason == reason


# ---- address reading ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("1.2.3", "1.2.0.3"),
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("0x7F.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("4294967295", "255.255.255.255"),
        ("0", "0.0.0.0"),
        ("0x", "0.0.0.0"),
        ("1.2.3.4.", "1.2.3.4"),
        ("4294967296", None),
        ("256.0.0.1", None),
        ("1.65536", "1.1.0.0"),
        ("1.16777216", None),
        ("1.2.3.4.5", None),
        ("08.0.0.1", None),
        ("0x1g", None),
        ("", None),
        ("1..2", None),
        ("1.2.3.4..", None),
        ("+1.2.3.4", None),
        ("1.2.3.4 ", None),
        ("\u0661.2.3.4", None),
    ],
)
def test_ipv4_is_read_the_way_inet_aton_reads_it(text, expected):
    address = parse_ipv4(text)
    assert (str(address) if address is not None else None) == expected


@pytest.mark.parametrize(
    "text", ["8.8.8.8", "1.1.1.1", "52.94.236.248", "2606:4700::1111", "2600:1f18::1",
             "64:ff9b::808:808", "2002:808:808::1"],
)
def test_public_addresses_may_be_called(text):
    assert egress.address_refusal(ipaddress.ip_address(text)) is None


def test_data_plane_check_allows_loopback_only_with_the_switch():
    loopback = ipaddress.ip_address("127.0.0.1")
    assert egress.address_refusal(loopback) == "loopback"
    assert egress.address_refusal(loopback, allow_loopback=True) is None
    metadata = ipaddress.ip_address("169.254.169.254")
    assert egress.address_refusal(metadata, allow_loopback=True) is not None


# ---- the system resolver --------------------------------------------------------------------


def test_system_resolver_reads_a_literal_address_without_dns():
    assert system_resolver("127.0.0.1") == ["127.0.0.1"]


def test_system_resolver_answers_nothing_for_an_unreadable_name():
    assert system_resolver("bad\x00name") == []


def test_system_resolver_answers_nothing_when_the_lookup_fails(monkeypatch):
    def fail(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    assert system_resolver("nxdomain.example") == []


def test_system_resolver_gives_up_on_a_slow_lookup(monkeypatch):
    def slow(*args, **kwargs):
        time.sleep(2)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", 0))]

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    started = time.monotonic()
    assert system_resolver("slow.example", timeout_seconds=0.1) == []
    assert time.monotonic() - started < 1.0
