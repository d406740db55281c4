"""A corpus of malformed and adversarial route items, as DynamoDB items a user could write.

Every item is built from a sound route with exactly one thing made hostile, so the only
reason to refuse it is the hostile part; each has its own ``route_id`` (unless the route_id is
the hostile part) and its own path, so no item is refused merely for clashing with another.

Categories (:data:`CATEGORIES`):

- ``ssrf``: upstream addresses inside the network: the instance metadata service in every
  spelling (decimal, octal, hex, short forms, IPv4-mapped / NAT64 / 6to4 IPv6,
  ``fd00:ec2::254``), private, CGNAT, link-local, multicast and reserved ranges, internal
  names, userinfo tricks (``https://good@169.254.169.254``), other schemes, public or
  metadata addresses as in-VPC targets;
- ``loopback``: 127.0.0.1 and ``localhost`` in their many spellings. ``turnout up
  --allow-loopback-upstreams`` lets loopback upstreams through on purpose (local demos), so
  these are only hostile to a stack started without it (:attr:`Hostile.loopback`);
- ``traversal``: ``..``, ``.``, empty and percent-encoded segments in the path, the upstream's
  base path and the route_id;
- ``header-injection``: CR/LF, NUL, colons and spaces in header names and values
  (``upstream_auth``), headers HTTP itself controls, CR/LF in URLs, methods and paths;
- ``oversize``: strings, lists and nesting past the contract's bounds, and items past
  DynamoDB's own limits (400 KB per item, 2048 bytes per partition key, 32 levels of nesting)
  which DynamoDB may refuse at write time (:attr:`Hostile.may_be_refused_at_write`);
- ``wrong-type``: every field with values of the wrong DynamoDB type (``N`` for ``S``, ``B``,
  ``NULL``, ``BOOL``, sets, maps for lists...), numbers out of range or fractional;
- ``unknown-field``: typos and made-up fields at every level, ``__proto__`` and the like;
- ``bad-method``: lower case, unknown, duplicated, empty, CONNECT/TRACE, ``ANY`` with others;
- ``unicode``: homoglyphs, zero-width and bidi characters, fullwidth forms, combining marks,
  emoji and NUL in identifiers, paths, hosts, names and methods.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from control_plane.model.item import to_item

CATEGORIES = ("ssrf", "loopback", "traversal", "header-injection", "oversize", "wrong-type",
              "unknown-field", "bad-method", "unicode")
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:turnout/hostile-AbCdEf"
PUBLIC_URL = "https://api.example.com"
MAX_ITEM_BYTES = 400 * 1024


@dataclass(frozen=True)
class Hostile:
    """One hostile route item."""

    category: str
    label: str
    item: dict[str, Any]
    """The DynamoDB item (attribute-value map), as ``aws dynamodb put-item --item`` takes it."""
    loopback: bool = False
    """Hostile only where loopback upstreams are refused (no ``--allow-loopback-upstreams``)."""
    may_be_refused_at_write: bool = False
    """Past one of DynamoDB's own limits: DynamoDB may refuse the write itself."""

    @property
    def route_id(self) -> str | None:
        """The item's ``route_id`` when it is a string (the key the status is filed under)."""
        value = self.item.get("route_id", {})
        return value.get("S") if isinstance(value, dict) else None


@dataclass
class _Builder:
    category: str
    prefix: str
    items: list[Hostile] = field(default_factory=list)

    def _route_id(self) -> str:
        return f"{self.prefix}-{len(self.items):03d}"

    def doc(self, label: str, change: Callable[[dict], None], *, mode: str = "direct",
            **flags: bool) -> None:
        """A sound route document with ``change`` applied, as an item."""
        route_id = self._route_id()
        doc = sound_route(route_id, mode=mode)
        change(doc)
        self.items.append(Hostile(self.category, label, to_item(doc), **flags))

    def raw(self, label: str, change: Callable[[dict], None], *, mode: str = "direct",
            **flags: bool) -> None:
        """A sound route as an item, with ``change`` applied to the attribute-value map."""
        route_id = self._route_id()
        item = to_item(sound_route(route_id, mode=mode))
        change(item)
        self.items.append(Hostile(self.category, label, item, **flags))


def sound_route(route_id: str, *, mode: str = "direct") -> dict:
    """A valid route: the base every hostile item changes in one place."""
    doc: dict[str, Any] = {
        "route_id": route_id,
        "path": f"/hostile/{route_id}",
        "methods": ["GET"],
        "upstreams": [{"name": "main", "url": PUBLIC_URL, "priority": 0}],
    }
    if mode == "proxy":
        doc["mode"] = "proxy"
        doc["upstream_auth"] = {"header": "Authorization", "secret_arn": SECRET_ARN,
                                "format": "Bearer {secret}"}
    return doc


def _set(path: str, value: Any) -> Callable[[dict], None]:
    """Set ``value`` at a dotted path (``upstreams.0.url``) of a document or item."""
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]

    def change(doc: dict) -> None:
        target: Any = doc
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = copy.deepcopy(value)

    return change


def _url(url: str, **upstream: Any) -> Callable[[dict], None]:
    def change(doc: dict) -> None:
        doc["upstreams"][0]["url"] = url
        doc["upstreams"][0].update(upstream)

    return change


def _targets(ip: str) -> Callable[[dict], None]:
    """The upstream as in-VPC targets instead of a url."""

    def change(doc: dict) -> None:
        upstream = doc["upstreams"][0]
        del upstream["url"]
        upstream["targets"] = [{"ip": ip, "port": 443}]

    return change


def _attr(name: str, value: dict) -> Callable[[dict], None]:
    """Replace a top-level attribute of the item with a raw attribute value."""
    return _set(name, value)


def _upstream_attr(name: str, value: dict) -> Callable[[dict], None]:
    def change(item: dict) -> None:
        item["upstreams"]["L"][0]["M"][name] = value

    return change


def _without(*names: str) -> Callable[[dict], None]:
    def change(doc: dict) -> None:
        for name in names:
            doc.pop(name, None)

    return change


# ---- the categories ----------------------------------------------------------------------

METADATA_HOSTS = (
    "169.254.169.254", "2852039166", "0xA9FEA9FE", "0xa9.0xfe.0xa9.0xfe",
    "0251.0376.0251.0376", "0251.254.169.254", "169.254.43518", "169.16689662",
    "169.254.169.254.", "[::ffff:169.254.169.254]", "[::ffff:a9fe:a9fe]", "[fd00:ec2::254]",
    "[64:ff9b::a9fe:a9fe]", "[2002:a9fe:a9fe::1]", "[::169.254.169.254]", "169.254.170.2",
    "169.254.169.123", "0xa9fea9fe:80", "[fd00:ec2::23]",
)
PRIVATE_HOSTS = (
    "10.0.0.1", "012.0.0.1", "0x0a000001", "167772161", "10.1", "172.16.0.1", "172.31.255.255",
    "192.168.1.1", "0xc0a80101", "3232235777", "0300.0250.1.1", "100.64.0.1", "100.127.255.254",
    "0.0.0.0", "0", "0x0", "[::]", "224.0.0.1", "239.255.255.250", "255.255.255.255",
    "240.0.0.1", "192.0.2.1", "198.18.0.1", "192.0.0.170", "[fc00::1]", "[fd12:3456:789a::1]",
    "[fe80::1]", "[fe80::1%25eth0]", "[ff02::1]", "[2001:db8::1]", "[::ffff:10.0.0.1]",
    "[::ffff:192.168.0.1]", "[::10.0.0.1]", "[64:ff9b:1::a00:1]", "[::ffff:0:a00:1]",
    "[2001::1]", "[100::1]",
)
INTERNAL_NAMES = (
    "metadata.google.internal", "instance-data.ec2.internal", "printer.local",
    "router.home.arpa", "db.localdomain", "kubernetes.default.svc.cluster.local",
)


def _ssrf() -> Iterator[Hostile]:
    b = _Builder("ssrf", "ssrf")
    for host in METADATA_HOSTS + PRIVATE_HOSTS + INTERNAL_NAMES:
        b.doc(f"https://{host}", _url(f"https://{host}"))
    b.doc("http + allow_insecure to the metadata service",
          _url("http://169.254.169.254/latest/meta-data", allow_insecure=True))
    b.doc("IPv4-mapped loopback (refused even with loopback allowed)",
          _url("http://[::ffff:127.0.0.1]:8080", allow_insecure=True))
    b.doc("IPv4-compatible loopback", _url("http://[::127.0.0.1]", allow_insecure=True))
    b.doc("a name under .localhost", _url("http://api.localhost:8080", allow_insecure=True))
    for url in (
        "https://good.example@169.254.169.254",
        "https://good.example:pw@169.254.169.254/latest",
        "https://169.254.169.254@good.example",
        "https://good.example%40169.254.169.254",
        "https://good.example#@169.254.169.254",
        "https://good.example\\@169.254.169.254",
        "https://good.example?@169.254.169.254",
        "https://[::ffff:169.254.169.254]:443/latest/meta-data",
        "//169.254.169.254/latest",
        "169.254.169.254",
        "file:///etc/passwd",
        "gopher://169.254.169.254:80/_GET",
        "ftp://files.example.com",
        "dict://169.254.169.254:11211/stat",
        "ldap://ldap.example.com",
        "javascript:alert(1)",
        "data:text/plain,hello",
        "https://",
        "https://:443",
        "HTTPS://api.example.com",
        "http://api.example.com",
        "https://api.example.com:0",
        "https://api.example.com:65536",
        "https://api.example.com:-1",
    ):
        b.doc(url, _url(url))
    for ip in ("169.254.169.254", "8.8.8.8", "0.0.0.0", "fd00:ec2::254", "::ffff:127.0.0.1",
               "0x0a000001", "10.0.0.1%eth0", "[10.0.0.1]", "10.0.0.256"):
        b.doc(f"target {ip}", _targets(ip))
    b.doc("a url and targets", lambda d: d["upstreams"][0].update(
        targets=[{"ip": "10.0.0.1", "port": 443}]))
    yield from b.items


LOOPBACK_HOSTS = (
    "127.0.0.1", "2130706433", "0177.0.0.1", "0x7f.0.0.1", "0x7f000001", "0x7f.1", "127.1",
    "127.0.1", "127.000.000.001", "0177.1", "127.255.255.254", "127.127.127.127",
    "[::1]", "[0:0:0:0:0:0:0:1]", "[0000::0001]", "localhost", "LOCALHOST", "localhost.",
    "LocalHost.",
)


def _loopback() -> Iterator[Hostile]:
    b = _Builder("loopback", "loop")
    for host in LOOPBACK_HOSTS:
        b.doc(f"http://{host}:8080", _url(f"http://{host}:8080", allow_insecure=True),
              loopback=True)
    b.doc("https to loopback", _url("https://127.0.0.1:8443"), loopback=True)
    b.doc("loopback target", _targets("127.0.0.1"), loopback=True)
    b.doc("userinfo in front of loopback", _url("http://good.example@127.0.0.1:8080",
                                                allow_insecure=True), loopback=True)
    b.doc("loopback as the backup", lambda d: d["upstreams"].append(
        {"name": "backup", "url": "http://127.0.0.1:9", "priority": 1, "allow_insecure": True}),
        loopback=True)
    yield from b.items


def _traversal() -> Iterator[Hostile]:
    b = _Builder("traversal", "trav")
    for path in ("/../admin", "/hostile/../admin", "/hostile/./x", "/%2e%2e/admin",
                 "/hostile/%2e%2e/x", "/hostile/%2E%2E%2Fadmin", "/..%2f..%2fetc/passwd",
                 "/hostile//x", "//hostile", "/hostile/", "hostile/x", "/hostile\\..\\x",
                 "/hostile/..;/x", "/hostile/%00", "/hostile/{proxy+}/x",
                 "/{proxy+}/{proxy+}", "/hostile/{id}/{id}", "/hostile/{}", "/hostile/{../x}",
                 "/.well-known/../../x", "/hostile/..", "/hostile/.", "/hostile?x=1",
                 "/hostile#x", "/hostile/*", "/hostile/{proxy+"):
        b.doc(f"path {path}", _set("path", path))
    for url in (f"{PUBLIC_URL}/../admin", f"{PUBLIC_URL}/v1/%2e%2e/admin", f"{PUBLIC_URL}/./x",
                f"{PUBLIC_URL}//x", f"{PUBLIC_URL}/v1/..", f"{PUBLIC_URL}/%2e%2e",
                f"{PUBLIC_URL}/v1\\..\\admin"):
        b.doc(f"base path {url}", _url(url))
    for route_id in ("..", ".", "../etc", "a/../b", "a/b", "..%2f", "~root"):
        b.items.append(Hostile("traversal", f"route_id {route_id}",
                               to_item(sound_route(route_id) | {"path": f"/hostile/rid{len(b.items)}"})))
    yield from b.items


def _header_injection() -> Iterator[Hostile]:
    b = _Builder("header-injection", "hdr")
    for header in ("X-Auth\r\nX-Injected: 1", "X-Auth\nX-Injected: 1", "X-Auth\r", "X-Auth: v",
                   "X Auth", "", "X-Auth\x00", ":authority", "Host", "host", "Content-Length",
                   "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade", "TE", "Trailer",
                   "Proxy-Connection", "X-Forwarded-For", "X-Auth\t", "X-Äuth", "a" * 129):
        b.doc(f"upstream_auth.header {header[:40]!r}", _set("upstream_auth.header", header),
              mode="proxy")
    for fmt in ("Bearer {secret}\r\nX-Injected: 1", "Bearer {secret}\nX-Injected: 1",
                "Bearer {secret}\r", "Bearer {secret}\x00", "{secret}{secret}", "Bearer",
                "", "Bearer {SECRET}", "Bearer {secret"):
        b.doc(f"upstream_auth.format {fmt!r}", _set("upstream_auth.format", fmt), mode="proxy")
    for arn in (SECRET_ARN + "\r\nX-Injected: 1", "secret-name", "arn:aws:s3:::bucket",
                "arn:aws:secretsmanager:us-east-1:123:secret:x"):
        b.doc(f"upstream_auth.secret_arn {arn[:40]!r}", _set("upstream_auth.secret_arn", arn),
              mode="proxy")
    b.doc("upstream_auth on a direct route", lambda d: d.update(upstream_auth={
        "header": "Authorization", "secret_arn": SECRET_ARN}))
    for url in (PUBLIC_URL + "\r\nX-Injected: 1", PUBLIC_URL + "/\r\n\r\nGET /x HTTP/1.1",
                PUBLIC_URL + " HTTP/1.1", "https://api.example.com\x00.evil.example",
                PUBLIC_URL + "/a b"):
        b.doc(f"url {url[:40]!r}", _url(url))
    for path in ("/hostile\r\nX-Injected: 1", "/hostile HTTP/1.1", "/hostile\x00"):
        b.doc(f"path {path!r}", _set("path", path))
    for hc_path in ("/health\r\nX-Injected: 1", "/health HTTP/1.1\r\nHost: evil", "health",
                    "/health\x00", "/health\n"):
        b.doc(f"health_check.path {hc_path!r}", _set("health_check", {"path": hc_path}))
    b.doc("allowed_cidrs with CR/LF", _set("security", {"allowed_cidrs": ["10.0.0.0/8\r\n"]}))
    b.doc("upstream name with CR/LF", _set("upstreams.0.name", "main\r\nX-Injected: 1"))
    yield from b.items


def _nested(depth: int) -> dict:
    value: dict = {"S": "deep"}
    for _ in range(depth):
        value = {"M": {"n": value}}
    return value


def _oversize() -> Iterator[Hostile]:
    b = _Builder("oversize", "big")
    b.doc("description of 300 KB", _set("description", "d" * 300_000))
    b.doc("path of 100 KB", _set("path", "/" + "p" * 100_000))
    b.doc("url of 200 KB", _url(PUBLIC_URL + "/" + "u" * 200_000))
    b.doc("5,000 methods", _set("methods", ["GET"] * 5000))
    b.doc("2,000 upstreams", lambda d: d.update(upstreams=[
        {"name": f"u{i}", "url": PUBLIC_URL, "priority": i} for i in range(2000)]))
    b.doc("11 upstreams", lambda d: d.update(upstreams=[
        {"name": f"u{i}", "url": f"https://u{i}.example.com", "priority": i} for i in range(11)]))
    b.doc("10,000 expected statuses", _set("health_check", {
        "expected_statuses": [200 + i % 300 for i in range(10_000)]}))
    b.doc("1,000 allowed cidrs", _set("security", {
        "allowed_cidrs": [f"10.{i // 256}.{i % 256}.0/24" for i in range(1000)]}))
    b.doc("route_id of 2,000 characters", lambda d: d.update(route_id="r" * 2000))
    b.doc("upstream name of 64 characters", _set("upstreams.0.name", "n" * 64))
    b.doc("38-digit priority", _set("upstreams.0.priority", 10 ** 37))
    b.doc("timeout_ms of 1e30", _set("timeout_ms", 10 ** 30))
    b.raw("number 1E+125", _upstream_attr("priority", {"N": "1E+125"}))
    b.raw("20 levels of nesting", _attr("health_check", _nested(20)))
    b.doc("item of 370 KB", _set("description", "d" * (MAX_ITEM_BYTES - 40_000)),
          may_be_refused_at_write=True)
    b.doc("item over 400 KB", _set("description", "d" * (MAX_ITEM_BYTES + 10_000)),
          may_be_refused_at_write=True)
    b.doc("route_id over 2,048 bytes", lambda d: d.update(route_id="k" * 2100),
          may_be_refused_at_write=True)
    b.raw("40 levels of nesting", _attr("health_check", _nested(40)),
          may_be_refused_at_write=True)
    yield from b.items


def _wrong_type() -> Iterator[Hostile]:
    b = _Builder("wrong-type", "type")
    for name, value in (
        ("path", {"N": "1"}), ("path", {"BOOL": True}), ("path", {"NULL": True}),
        ("path", {"L": [{"S": "/a"}]}), ("path", {"B": "L2E="}), ("path", {"SS": ["/a", "/b"]}),
        ("methods", {"S": "GET"}), ("methods", {"M": {"GET": {"BOOL": True}}}),
        ("methods", {"NS": ["1", "2"]}), ("methods", {"L": [{"N": "1"}]}),
        ("methods", {"NULL": True}), ("methods", {"L": [{"BOOL": True}]}),
        ("upstreams", {"S": PUBLIC_URL}), ("upstreams", {"M": {"main": {"S": PUBLIC_URL}}}),
        ("upstreams", {"L": [{"S": PUBLIC_URL}]}), ("upstreams", {"L": []}),
        ("upstreams", {"NULL": True}), ("mode", {"N": "1"}), ("mode", {"S": "PROXY"}),
        ("mode", {"S": "direct "}), ("mode", {"S": "passthrough"}),
        ("health_check", {"S": "/health"}), ("health_check", {"L": []}),
        ("failover", {"BOOL": True}), ("security", {"S": "strict"}),
        ("timeout_ms", {"S": "1000"}), ("timeout_ms", {"N": "-5"}), ("timeout_ms", {"N": "0"}),
        ("timeout_ms", {"N": "10.5"}), ("timeout_ms", {"N": "29001"}), ("retries", {"N": "2"}),
        ("description", {"N": "7"}), ("description", {"NULL": True}),
        ("upstream_auth", {"S": "Bearer x"}),
    ):
        b.raw(f"{name} as {json.dumps(value)[:40]}", _attr(name, value))
    for name, value in (
        ("priority", {"S": "0"}), ("priority", {"BOOL": False}), ("priority", {"N": "0.5"}),
        ("priority", {"N": "-1"}), ("url", {"N": "443"}), ("url", {"B": "aHR0cHM6Ly94"}),
        ("url", {"NULL": True}), ("url", {"SS": [PUBLIC_URL]}), ("name", {"N": "1"}),
        ("name", {"S": ""}), ("allow_insecure", {"S": "true"}), ("weight", {"S": "1"}),
        ("weight", {"N": "-1"}), ("targets", {"S": "10.0.0.1:443"}),
    ):
        b.raw(f"upstreams[0].{name} as {json.dumps(value)[:40]}", _upstream_attr(name, value))
    for path, value in (
        ("health_check", {"interval_seconds": "10"}), ("health_check", {"interval_seconds": 0}),
        ("health_check", {"timeout_ms": 20_000, "interval_seconds": 10}),
        ("health_check", {"unhealthy_threshold": True}), ("health_check", {"expected_statuses": [99]}),
        ("failover", {"automatic": "yes"}), ("failover", {"min_hold_seconds": -1}),
        ("security", {"api_key_required": "true"}), ("security", {"allowed_cidrs": "10.0.0.0/8"}),
        ("security", {"allowed_cidrs": ["10.0.0.0/33"]}), ("security", {"allowed_cidrs": ["everyone"]}),
        ("security", {"rate_limit": {"requests_per_second": 0, "burst": 1}}),
        ("retries", {"attempts": 99}), ("retries", {"on": ["everything"]}),
    ):
        b.doc(f"{path} {json.dumps(value)[:50]}", _set(path, value))
    b.doc("no upstreams", _without("upstreams"))
    b.doc("no path", _without("path"))
    b.doc("no primary (priorities 1 and 2)", lambda d: d.update(upstreams=[
        {"name": "a", "url": PUBLIC_URL, "priority": 1},
        {"name": "b", "url": "https://b.example.com", "priority": 2}]))
    b.doc("two upstreams with one name", lambda d: d.update(upstreams=[
        {"name": "a", "url": PUBLIC_URL, "priority": 0},
        {"name": "a", "url": "https://b.example.com", "priority": 1}]))
    yield from b.items


def _unknown_field() -> Iterator[Hostile]:
    b = _Builder("unknown-field", "unk")
    for name, value in (("method", ["GET"]), ("upstream", PUBLIC_URL), ("Path", "/x"),
                        ("timeout", 1000), ("timeout_seconds", 1), ("retry", {"attempts": 1}),
                        ("__proto__", {"admin": True}), ("constructor", {"prototype": {}}),
                        ("$where", "1"), ("route_id ", "x"), ("healthcheck", {}),
                        ("phase", "READY"), ("active_upstream", "main"), ("x-amz-meta", "1")):
        b.doc(f"top-level {name!r}", lambda d, n=name, v=value: d.update({n: v}))
    for where, name in (("upstreams.0", "weigth"), ("upstreams.0", "URL"),
                        ("upstreams.0", "headers"), ("upstreams.0", "__proto__")):
        b.doc(f"{where}.{name}", lambda d, n=name: d["upstreams"][0].update({n: 1}))
    for section, name in (("health_check", "intervalSeconds"), ("failover", "min_hold"),
                          ("security", "api_key"), ("retries", "count")):
        b.doc(f"{section}.{name}", _set(section, {name: 1}))
    b.doc("security.rate_limit.rps", _set("security", {"rate_limit": {
        "requests_per_second": 1, "burst": 1, "rps": 5}}))
    b.doc("upstream_auth.secret", lambda d: d["upstream_auth"].update(secret="plain"),
          mode="proxy")
    yield from b.items


def _bad_method() -> Iterator[Hostile]:
    b = _Builder("bad-method", "meth")
    for methods in (["get"], ["CONNECT"], ["TRACE"], ["GET "], [" GET"], ["G\nET"],
                    ["ANY", "GET"], ["GET", "GET"], [], ["FOO"], ["*"], ["GET\x00"], [""],
                    ["GET,POST"], ["Get"], ["PROPFIND"]):
        b.doc(f"methods {methods!r}", _set("methods", methods))
    yield from b.items


def _unicode() -> Iterator[Hostile]:
    b = _Builder("unicode", "uni")
    for route_id in ("p\u0430yments", "payments\u200b", "\uff50\uff41\uff59", "caf\u00e9",
                     "route\U0001f600", "a\u0000b", "\u202eetuor", "ROUTE"):
        b.items.append(Hostile("unicode", f"route_id {route_id!r}",
                               to_item(sound_route(route_id) | {"path": f"/hostile/u{len(b.items)}"})))
    for path in ("/p\u0430y", "/pay\u200b", "/\u202eyap", "/caf\u00e9", "/emoji\U0001f600",
                 "/\uff0fpay", "/pay\u0301", "/pay\ufeff"):
        b.doc(f"path {path!r}", _set("path", path))
    for host in ("\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com", "exa\u0301mple.com",
                 "\uff11\uff16\uff19.\uff12\uff15\uff14.\uff11\uff16\uff19.\uff12\uff15\uff14",
                 "ex\u200bample.com", "\u0430pi.example.com", "api.example.com\u3002evil",
                 "169\u3002254\u3002169\u3002254"):
        b.doc(f"host {host!r}", _url(f"https://{host}"))
    b.doc("upstream name with an umlaut", _set("upstreams.0.name", "m\u00e4in"))
    b.doc("method in Cyrillic", _set("methods", ["G\u0415T"]))
    b.doc("header name with a fullwidth letter", _set("upstream_auth.header", "\uff38-Auth"),
          mode="proxy")
    yield from b.items


def corpus() -> list[Hostile]:
    """Every hostile item, in category order."""
    items: list[Hostile] = []
    for make in (_ssrf, _loopback, _traversal, _header_injection, _oversize, _wrong_type,
                 _unknown_field, _bad_method, _unicode):
        items.extend(make())
    return items


def by_category(items: list[Hostile]) -> dict[str, int]:
    counts = dict.fromkeys(CATEGORIES, 0)
    for item in items:
        counts[item.category] += 1
    return counts
