"""Reading route files: YAML or JSON, one route (a mapping) or a list of routes.

A YAML file may hold several documents (``---``), each a route or a list of routes. A directory
stands for its ``.yaml``, ``.yml`` and ``.json`` files (not its subdirectories), in name order.
Anything
that is not a list is taken as one route, so the validator reports what is wrong with it. YAML is
read with YAML 1.2 scalars, so ``on:``, ``yes`` and ``2024-01-01`` stay strings as they
would in JSON, and a key given twice is an error rather than silently dropped.

Nothing here raises on bad input: a file that cannot be read or parsed comes back as
problems, each with an empty ``field`` (it concerns the file as a whole).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from control_plane.errors import Problem

STDIN = "-"
ROUTE_FILE_SUFFIXES = (".yaml", ".yml", ".json")

_BOOL_TAG = "tag:yaml.org,2002:bool"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class RouteFile:
    """The route documents of one file, in order, or the problems that stopped reading it."""

    name: str
    documents: list[object] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


class _DuplicateKeyError(yaml.constructor.ConstructorError):
    pass


class RouteLoader(yaml.SafeLoader):
    """A safe YAML loader with YAML 1.2 booleans, no timestamps, and no duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # unhashable: the base class reports it
                continue
            if duplicate:
                raise _DuplicateKeyError(
                    "while reading a mapping", node.start_mark,
                    f"key {key!r} appears more than once", key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


RouteLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL_TAG, _TIMESTAMP_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
RouteLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def read_route_files(paths: list[str]) -> list[RouteFile]:
    """Read every file of ``paths``, a directory standing for its route files."""
    files: list[RouteFile] = []
    for path in paths:
        folder = Path(path)
        if path != STDIN and folder.is_dir():
            inside = sorted(str(p) for p in folder.iterdir()
                            if p.suffix.lower() in ROUTE_FILE_SUFFIXES and p.is_file())
            if not inside:
                files.append(_failed(path, "NoRoutes", "the directory holds no .yaml, .yml or "
                                                       ".json files; name the files instead"))
            files += [read_route_file(p) for p in inside]
        else:
            files.append(read_route_file(path))
    return files


def read_route_file(path: str) -> RouteFile:
    """Read ``path`` (``-`` for standard input) into its route documents."""
    name = "<stdin>" if path == STDIN else path
    try:
        raw = sys.stdin.buffer.read() if path == STDIN else Path(path).read_bytes()
    except FileNotFoundError:
        return _failed(name, "FileUnreadable", "no such file; check the path")
    except PermissionError:
        return _failed(name, "FileUnreadable", "permission denied; check the file's permissions")
    except OSError as exc:
        return _failed(name, "FileUnreadable", exc.strerror or str(exc))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return _failed(name, "FileUnreadable", f"not UTF-8 text (byte {exc.start})")
    if path.lower().endswith(".json"):
        return _from_json(name, text)
    return _from_yaml(name, text)


def _from_yaml(name: str, text: str) -> RouteFile:
    try:
        parsed = list(yaml.load_all(text, Loader=RouteLoader))  # noqa: S506 - a SafeLoader
    except _DuplicateKeyError as exc:
        return _failed(name, "DuplicateKey", _yaml_error_message(exc))
    except yaml.YAMLError as exc:
        return _failed(name, "InvalidYaml", _yaml_error_message(exc))
    return _collect(name, [doc for doc in parsed if doc is not None])


def _from_json(name: str, text: str) -> RouteFile:
    try:
        parsed = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except _JsonDuplicateKey as exc:
        return _failed(name, "DuplicateKey", f"key {exc.args[0]!r} appears more than once")
    except json.JSONDecodeError as exc:
        return _failed(name, "InvalidJson", f"line {exc.lineno}, column {exc.colno}: {exc.msg}")
    except ValueError as exc:
        return _failed(name, "InvalidJson", str(exc))
    return _collect(name, [parsed])


def _collect(name: str, parsed: list[object]) -> RouteFile:
    """A list holds routes; anything else is one route (the validator judges its type)."""
    documents: list[object] = []
    for doc in parsed:
        if isinstance(doc, list):
            documents.extend(doc)
        else:
            documents.append(doc)
    if not documents:
        return _failed(name, "NoRoutes", "the file holds no routes")
    return RouteFile(name, documents=documents)


def _failed(name: str, reason: str, message: str) -> RouteFile:
    return RouteFile(name, problems=[Problem("", reason, message)])


def _yaml_error_message(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    text = f"{context}: {problem}" if context and not mark else problem
    if mark is None:
        return text
    return f"line {mark.line + 1}, column {mark.column + 1}: {text}"


class _JsonDuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise _JsonDuplicateKey(key)
        result[key] = value
    return result


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")
