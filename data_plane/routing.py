"""API Gateway's resource matching, as a pure, immutable routing table.

A REST API is a tree of resources (``/``, ``/orders``, ``/orders/{id}``,
``/svc/{proxy+}``), each with methods (``GET``, ``POST``, ``ANY``...). A
:class:`RoutingTable` is built once per configuration snapshot from
``(resource path, method, target)`` triples and answers
``match(method, raw_path) -> Match | None`` without any I/O.

How a request path is matched:

* The path is the raw (percent-encoded) request path without the query string.
  A leading run of slashes counts as one (``//orders`` is ``/orders``) and
  trailing slashes are ignored (``/orders/`` is ``/orders``), as API Gateway
  serves both. An empty segment inside the path (``/a//b``) is kept: it
  matches neither a literal nor ``{param}``, but ``{proxy+}`` captures it.
* At each level a literal segment beats ``{param}``, which beats ``{proxy+}``.
  ``{param}`` matches exactly one non-empty segment; ``{proxy+}`` matches one or
  more remaining segments, never zero (``/svc`` does not match
  ``/svc/{proxy+}``). When a more specific branch does not lead to a resource,
  the next one is tried.
* Only resources with at least one method take part; a resource that merely
  parents others (``/svc`` above ``/svc/{proxy+}``) is transparent.
* The resource is chosen by path first. If it has neither the request's method
  nor ``ANY`` the request does not match: it does not fall through to a less
  specific resource (API Gateway answers 403 Missing Authentication Token).
* ``ANY`` stands for DELETE, GET, HEAD, OPTIONS, PATCH, POST and PUT; an
  explicit method on the resource wins over ``ANY``.
* Path parameter values are percent-decoded (``%2F`` becomes ``/``, ``+``
  stays ``+``); literal segments are compared with the decoded segment.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Generic, TypeVar
from urllib.parse import unquote

T = TypeVar("T")

ANY_METHOD = "ANY"
ANY_METHOD_COVERS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"})

_PARAM = re.compile(r"^\{([A-Za-z0-9_.\-]+)\}$")
_GREEDY = re.compile(r"^\{([A-Za-z0-9_.\-]+)\+\}$")
_LITERAL = re.compile(r"^[^{}/]+$")
_METHOD = re.compile(r"^[A-Z]+$")


class InvalidResourcePathError(ValueError):
    """A resource path or method that cannot be placed in the routing table."""

    def __init__(self, resource_path: str, method: str, reason: str) -> None:
        super().__init__(f"{method} {resource_path}: {reason}")
        self.resource_path = resource_path
        self.method = method
        self.reason = reason


@dataclass(frozen=True)
class Match(Generic[T]):
    """The resource method a request reached, and the path parameters it carried."""

    resource_path: str
    method: str
    path_parameters: Mapping[str, str]
    target: T


@dataclass(frozen=True)
class _Leaf(Generic[T]):
    resource_path: str
    methods: Mapping[str, T]


@dataclass(frozen=True)
class _Node(Generic[T]):
    leaf: _Leaf[T] | None
    literals: Mapping[str, _Node[T]]
    param: tuple[str, _Node[T]] | None
    greedy: tuple[str, _Leaf[T]] | None


@dataclass
class _Draft(Generic[T]):
    resource_path: str = ""
    methods: dict[str, T] = field(default_factory=dict)
    literals: dict[str, _Draft[T]] = field(default_factory=dict)
    param: tuple[str, _Draft[T]] | None = None
    greedy: tuple[str, _Draft[T]] | None = None

    def freeze(self) -> _Node[T]:
        greedy_leaf = _leaf_of(self.greedy[1]) if self.greedy else None
        return _Node(
            leaf=_leaf_of(self),
            literals=MappingProxyType({k: v.freeze() for k, v in self.literals.items()}),
            param=(self.param[0], self.param[1].freeze()) if self.param else None,
            greedy=(self.greedy[0], greedy_leaf) if self.greedy and greedy_leaf else None,
        )


def _leaf_of(draft: _Draft[T]) -> _Leaf[T] | None:
    if not draft.methods:
        return None
    return _Leaf(draft.resource_path, MappingProxyType(dict(draft.methods)))


def request_path_segments(raw_path: str) -> list[str]:
    """Split a raw request path the way matching sees it (see the module docstring)."""
    trimmed = raw_path.lstrip("/").rstrip("/")
    return trimmed.split("/") if trimmed else []


class RoutingTableBuilder(Generic[T]):
    """Collects resource methods, rejecting ones API Gateway could not hold."""

    def __init__(self) -> None:
        self._root: _Draft[T] = _Draft(resource_path="/")
        self._count = 0

    def add(self, resource_path: str, method: str, target: T) -> None:
        """Add one resource method; raise :class:`InvalidResourcePathError` if it cannot fit."""
        if not _METHOD.match(method):
            raise InvalidResourcePathError(resource_path, method, "method must be upper-case")
        if not resource_path.startswith("/"):
            raise InvalidResourcePathError(resource_path, method, "must start with '/'")
        node = self._root
        segments = resource_path[1:].split("/") if resource_path != "/" else []
        for index, segment in enumerate(segments):
            node = self._child(node, segment, index == len(segments) - 1, resource_path, method)
        if method in node.methods:
            raise InvalidResourcePathError(resource_path, method, "duplicate method")
        node.resource_path = resource_path
        node.methods[method] = target
        self._count += 1

    def _child(
        self, node: _Draft[T], segment: str, is_last: bool, resource_path: str, method: str
    ) -> _Draft[T]:
        if greedy := _GREEDY.match(segment):
            if not is_last:
                raise InvalidResourcePathError(
                    resource_path, method, "a greedy {name+} segment must come last"
                )
            return self._variable(node, "greedy", greedy.group(1), resource_path, method)
        if param := _PARAM.match(segment):
            return self._variable(node, "param", param.group(1), resource_path, method)
        if not _LITERAL.match(segment):
            raise InvalidResourcePathError(resource_path, method, f"invalid path segment {segment!r}")
        return node.literals.setdefault(segment, _Draft())

    @staticmethod
    def _variable(node: _Draft[T], kind: str, name: str, resource_path: str, method: str) -> _Draft[T]:
        existing: tuple[str, _Draft[T]] | None = getattr(node, kind)
        if existing is None:
            existing = (name, _Draft())
            setattr(node, kind, existing)
        elif existing[0] != name:
            raise InvalidResourcePathError(
                resource_path, method, f"conflicts with sibling variable {{{existing[0]}}}"
            )
        return existing[1]

    def build(self) -> RoutingTable[T]:
        """The immutable table holding everything added so far."""
        return RoutingTable(self._root.freeze(), self._count)


class RoutingTable(Generic[T]):
    """An immutable resource tree that matches requests to resource methods."""

    __slots__ = ("_root", "_size")

    def __init__(self, root: _Node[T], size: int) -> None:
        self._root = root
        self._size = size

    @classmethod
    def empty(cls) -> RoutingTable[T]:
        """A table that matches nothing."""
        return RoutingTableBuilder[T]().build()

    def __len__(self) -> int:
        """The number of resource methods in the table."""
        return self._size

    def match(self, method: str, raw_path: str) -> Match[T] | None:
        """The resource method serving ``method raw_path``, or None if there is none."""
        found = _find(self._root, request_path_segments(raw_path), 0, {})
        if found is None:
            return None
        leaf, params = found
        chosen = _choose_method(leaf.methods, method)
        if chosen is None:
            return None
        return Match(
            resource_path=leaf.resource_path,
            method=chosen,
            path_parameters=MappingProxyType(params),
            target=leaf.methods[chosen],
        )

    def routes(self) -> Iterator[tuple[str, str]]:
        """Every ``(resource path, method)`` in the table, resource by resource."""
        yield from _walk(self._root)


def _find(
    node: _Node[T], segments: list[str], index: int, params: dict[str, str]
) -> tuple[_Leaf[T], dict[str, str]] | None:
    if index == len(segments):
        return (node.leaf, params) if node.leaf else None
    segment = segments[index]
    if segment:
        literal = node.literals.get(unquote(segment))
        if literal is not None and (found := _find(literal, segments, index + 1, params)):
            return found
        if node.param is not None:
            name, child = node.param
            deeper = {**params, name: unquote(segment)}
            if found := _find(child, segments, index + 1, deeper):
                return found
    if node.greedy is not None:
        name, leaf = node.greedy
        return leaf, {**params, name: unquote("/".join(segments[index:]))}
    return None


def _choose_method(methods: Mapping[str, T], method: str) -> str | None:
    if method != ANY_METHOD and method in methods:
        return method
    if method in ANY_METHOD_COVERS and ANY_METHOD in methods:
        return ANY_METHOD
    return None


def _walk(node: _Node[T]) -> Iterator[tuple[str, str]]:
    if node.leaf:
        for method in node.leaf.methods:
            yield node.leaf.resource_path, method
    for child in node.literals.values():
        yield from _walk(child)
    if node.param:
        yield from _walk(node.param[1])
    if node.greedy:
        for method in node.greedy[1].methods:
            yield node.greedy[1].resource_path, method
