"""API Gateway resource matching, table-driven."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from data_plane.routing import InvalidResourcePathError, RoutingTable, RoutingTableBuilder

RESOURCES = [
    ("/", "GET"),
    ("/echo", "GET"),
    ("/echo", "POST"),
    ("/orders/{id}", "GET"),
    ("/orders/special", "GET"),
    ("/orders/{id}/items", "ANY"),
    ("/svc/{proxy+}", "ANY"),
    ("/svc/health", "GET"),
    ("/a/b/c", "GET"),
    ("/a/{x}/d", "GET"),
    ("/mixed", "ANY"),
    ("/mixed", "DELETE"),
]


def table(resources: list[tuple[str, str]] = RESOURCES) -> RoutingTable[str]:
    builder: RoutingTableBuilder[str] = RoutingTableBuilder()
    for path, method in resources:
        builder.add(path, method, f"{method} {path}")
    return builder.build()


@pytest.mark.parametrize(
    ("method", "path", "resource", "chosen", "params"),
    [
        ("GET", "/", "/", "GET", {}),
        ("GET", "/echo", "/echo", "GET", {}),
        ("POST", "/echo", "/echo", "POST", {}),
        ("GET", "/echo/", "/echo", "GET", {}),
        ("GET", "//echo", "/echo", "GET", {}),
        ("GET", "/orders/special", "/orders/special", "GET", {}),
        ("GET", "/orders/123", "/orders/{id}", "GET", {"id": "123"}),
        ("GET", "/orders/a%20b", "/orders/{id}", "GET", {"id": "a b"}),
        ("GET", "/orders/a%2Fb", "/orders/{id}", "GET", {"id": "a/b"}),
        ("GET", "/orders/a+b", "/orders/{id}", "GET", {"id": "a+b"}),
        ("POST", "/orders/123/items", "/orders/{id}/items", "ANY", {"id": "123"}),
        ("GET", "/orders/special/items", "/orders/{id}/items", "ANY", {"id": "special"}),
        ("GET", "/svc/x", "/svc/{proxy+}", "ANY", {"proxy": "x"}),
        ("PUT", "/svc/x/y/z", "/svc/{proxy+}", "ANY", {"proxy": "x/y/z"}),
        ("GET", "/svc/x/y/", "/svc/{proxy+}", "ANY", {"proxy": "x/y"}),
        ("GET", "/svc/a%2Fb/c%3F", "/svc/{proxy+}", "ANY", {"proxy": "a/b/c?"}),
        ("GET", "/svc/a//b", "/svc/{proxy+}", "ANY", {"proxy": "a//b"}),
        ("GET", "/svc/health", "/svc/health", "GET", {}),
        ("GET", "/svc/health/deep", "/svc/{proxy+}", "ANY", {"proxy": "health/deep"}),
        ("GET", "/a/b/c", "/a/b/c", "GET", {}),
        ("GET", "/a/b/d", "/a/{x}/d", "GET", {"x": "b"}),
        ("HEAD", "/mixed", "/mixed", "ANY", {}),
        ("OPTIONS", "/mixed", "/mixed", "ANY", {}),
        ("PATCH", "/mixed", "/mixed", "ANY", {}),
        ("DELETE", "/mixed", "/mixed", "DELETE", {}),
    ],
)
def test_request_reaches_the_most_specific_resource_method(
    method: str, path: str, resource: str, chosen: str, params: dict[str, str]
) -> None:
    match = table().match(method, path)

    assert match is not None
    assert (match.resource_path, match.method, dict(match.path_parameters)) == (
        resource,
        chosen,
        params,
    )
    assert match.target == f"{chosen} {resource}"


@pytest.mark.parametrize(
    ("method", "path", "why"),
    [
        ("DELETE", "/echo", "the resource has neither DELETE nor ANY"),
        ("GET", "/Echo", "paths are case-sensitive"),
        ("GET", "/nowhere", "no such resource"),
        ("GET", "/orders", "a resource without methods only parents others"),
        ("GET", "/orders//items", "an empty segment is not a path parameter"),
        ("GET", "/svc", "a greedy variable needs at least one segment"),
        ("GET", "/svc/", "a trailing slash adds no segment"),
        ("POST", "/svc/health", "the specific resource wins by path, then lacks POST"),
        ("GET", "/echo/extra", "no resource below /echo"),
        ("TRACE", "/mixed", "ANY does not cover TRACE"),
        ("ANY", "/mixed", "ANY is not a request method"),
        ("get", "/echo", "methods are case-sensitive"),
    ],
)
def test_request_without_a_resource_method_is_not_matched(method: str, path: str, why: str) -> None:
    assert table().match(method, path) is None, why


def test_root_greedy_resource_catches_everything_but_the_root() -> None:
    routes = table([("/{proxy+}", "ANY"), ("/health", "GET")])

    assert routes.match("GET", "/") is None
    assert routes.match("GET", "/health").resource_path == "/health"
    caught = routes.match("POST", "/a/b")
    assert caught.resource_path == "/{proxy+}"
    assert dict(caught.path_parameters) == {"proxy": "a/b"}


def test_path_parameter_beats_greedy_sibling() -> None:
    routes = table([("/x/{id}", "GET"), ("/x/{rest+}", "GET")])

    assert dict(routes.match("GET", "/x/1").path_parameters) == {"id": "1"}
    assert dict(routes.match("GET", "/x/1/2").path_parameters) == {"rest": "1/2"}


def test_table_counts_and_lists_its_resource_methods() -> None:
    routes = table()

    assert len(routes) == len(RESOURCES)
    assert sorted(routes.routes()) == sorted(RESOURCES)


def test_empty_table_matches_nothing() -> None:
    empty: RoutingTable[str] = RoutingTable.empty()

    assert len(empty) == 0
    assert empty.match("GET", "/") is None


@pytest.mark.parametrize(
    ("resources", "reason"),
    [
        ([("/svc/{proxy+}/more", "GET")], "a greedy {name+} segment must come last"),
        ([("svc", "GET")], "must start with '/'"),
        ([("/a//b", "GET")], "invalid path segment ''"),
        ([("/a/b{c}", "GET")], "invalid path segment 'b{c}'"),
        ([("/x/{a}", "GET"), ("/x/{b}", "POST")], "conflicts with sibling variable {a}"),
        ([("/x/{a+}", "GET"), ("/x/{b+}", "POST")], "conflicts with sibling variable {a}"),
        ([("/echo", "GET"), ("/echo", "GET")], "duplicate method"),
        ([("/echo", "get")], "method must be upper-case"),
    ],
)
def test_resource_api_gateway_could_not_hold_is_rejected_with_reason(
    resources: list[tuple[str, str]], reason: str
) -> None:
    builder: RoutingTableBuilder[str] = RoutingTableBuilder()
    *accepted, rejected = resources
    for path, method in accepted:
        builder.add(path, method, "ok")

    with pytest.raises(InvalidResourcePathError) as raised:
        builder.add(rejected[0], rejected[1], "bad")

    assert raised.value.reason == reason
    assert raised.value.resource_path == rejected[0]


def test_rejected_resource_leaves_the_others_routable() -> None:
    builder: RoutingTableBuilder[str] = RoutingTableBuilder()
    builder.add("/echo", "GET", "echo")
    with pytest.raises(InvalidResourcePathError):
        builder.add("/svc/{proxy+}/x", "GET", "bad")

    routes = builder.build()

    assert routes.match("GET", "/echo").target == "echo"
    assert len(routes) == 1


segment = st.text(
    alphabet=st.characters(codec="ascii", categories=("L", "N"), include_characters="-._~"),
    min_size=1,
    max_size=12,
)


@given(st.lists(segment, min_size=1, max_size=8))
def test_greedy_variable_captures_whatever_follows_its_parent(segments: list[str]) -> None:
    routes = table([("/svc/{proxy+}", "ANY"), ("/svc", "GET")])
    path = "/svc/" + "/".join(segments)

    match = routes.match("POST", path)

    assert match is not None
    assert dict(match.path_parameters) == {"proxy": "/".join(segments)}
