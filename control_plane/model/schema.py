"""The route JSON Schema and reference page, generated from the pydantic model.

``python -m control_plane.model.schema`` writes ``schemas/route.schema.json``;
``--docs`` writes ``docs/route-reference.md``; ``--check`` writes nothing and exits 1 when the
file on disk differs from what the model generates.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import core_schema

from control_plane.model import egress
from control_plane.model.route import Route
from control_plane.model.validation import REASONS

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "urn:turnout:schema:route:1"
REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "schemas" / "route.schema.json"
REFERENCE_PATH = REPO_ROOT / "docs" / "route-reference.md"


class _Generator(GenerateJsonSchema):
    """Optional fields are left out, never null; property titles add nothing."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> dict[str, Any]:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> dict[str, Any]:
        generated = super().default_schema(schema)
        if "default" in generated and generated["default"] is None:
            del generated["default"]
        return generated

    def encode_default(self, dft: Any) -> Any:
        return _without_nulls(super().encode_default(dft))

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def route_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a route item."""
    generated = Route.model_json_schema(schema_generator=_Generator)
    head = {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_ID,
        "title": "turnout route",
        "description": generated.pop("description"),
    }
    defs = generated.pop("$defs")
    generated.pop("title", None)
    return {**head, **generated, "$defs": dict(sorted(defs.items()))}


def render_schema() -> str:
    """The schema file's text."""
    return json.dumps(route_schema(), indent=2, ensure_ascii=False) + "\n"


# ---- reference page -------------------------------------------------------------------------


def render_reference() -> str:
    """The Markdown reference page: one table per object, then the reason codes."""
    schema = route_schema()
    defs = schema["$defs"]
    lines = [
        "# Route reference",
        "",
        "A route is one item in the routes table (`aws dynamodb put-item`, or",
        "`turnout routes apply`). This page is generated from the contract",
        "(`python -m control_plane.model.schema --docs`); the JSON Schema is",
        "`schemas/route.schema.json`. Unknown fields are rejected, values are never coerced",
        "(`\"5\"` is not `5`), and optional fields are left out rather than set to `null`.",
        "Patterns end in `$(?!\\n)`: the end of the text, with no newline after it.",
        "",
    ]
    for name, obj in [("Route", schema), *_objects_in_order(schema, defs)]:
        lines.extend(_object_table(name, obj, defs))
    lines.extend(_egress_section())
    lines.extend(_reason_table())
    return "\n".join(lines).rstrip("\n") + "\n"


def _egress_section() -> list[str]:
    suffixes = ", ".join(f"`{s}`" for s in egress.PRIVATE_NAME_SUFFIXES)
    lines = [
        "## Egress policy",
        "",
        "A `url` upstream is a third-party endpoint: `https://host[:port][/base-path]` (plain",
        "`http` only with `allow_insecure: true`), without credentials, query or fragment, in",
        "the characters an API Gateway stage variable holds (`A-Za-z0-9-._~:/?#&=,`; so an",
        "IPv6 upstream is named by a host name). Its host must not be, or resolve to, an",
        "address in the ranges below; IPv4 is read in every spelling `inet_aton` accepts",
        "(`2130706433`, `0177.0.0.1`, `0x7f.1`, `127.1`), and an IPv6 address that embeds an",
        "IPv4 one (IPv4-mapped, 6to4, NAT64) is judged by that IPv4 address. Names equal to or",
        f"under {suffixes} are refused without a lookup. A name that does not resolve",
        "is accepted; the data plane checks every address it connects to.",
        "",
        "| range | refused as |",
        "|---|---|",
    ]
    lines.extend(f"| `{network}` | {label} |" for network, label in egress.REFUSED_IPV4)
    lines.extend(f"| `{network}` | {label} |" for network, label in egress.REFUSED_IPV6)
    lines.extend([
        "| anything outside `2000::/3` | reserved |",
        "",
        "A `targets` upstream is the opposite: each `ip` is an in-VPC address in "
        + ", ".join(f"`{network}`" for network in egress.TARGET_NETWORKS)
        + " (not `fd00:ec2::/32`, which AWS reserves), written plainly (`10.0.0.1`).",
        "",
        "`turnout up --allow-loopback-upstreams` (local demos) also permits `127.0.0.0/8`, `::1`",
        "and `localhost`, with plain `http` for them, and nothing else.",
        "",
    ])
    return lines


def _objects_in_order(schema: dict[str, Any], defs: dict[str, Any]) -> list[tuple[str, Any]]:
    order: list[str] = []

    def visit(obj: dict[str, Any]) -> None:
        for prop in obj.get("properties", {}).values():
            ref = _ref_name(prop)
            if ref is not None and ref not in order:
                order.append(ref)
                visit(defs[ref])

    visit(schema)
    return [(name, defs[name]) for name in order]


def _ref_name(prop: dict[str, Any]) -> str | None:
    ref = prop.get("$ref") or prop.get("items", {}).get("$ref")
    return ref.rsplit("/", 1)[-1] if ref else None


def _object_table(name: str, obj: dict[str, Any], defs: dict[str, Any]) -> list[str]:
    title = "the route" if name == "Route" else f"`{name}`"
    lines = [f"## {name}", "", obj.get("description", ""), ""]
    if "oneOf" in obj:
        choices = " or ".join(
            "`" + "`, `".join(option["required"]) + "`" for option in obj["oneOf"]
        )
        lines.extend([f"Exactly one of {choices} is given in {title}.", ""])
    lines.extend([
        "| field | type | default | constraints | description |",
        "|---|---|---|---|---|",
    ])
    required = set(obj.get("required", []))
    for field, prop in obj["properties"].items():
        default = "required" if field in required else _default_text(prop)
        description = prop.get("description")
        ref = _ref_name(prop)
        if description is None and ref is not None:
            description = defs[ref].get("description", "")
        row = [f"`{field}`", _type_text(prop), default, _constraints_text(prop),
               description or ""]
        lines.append("| " + " | ".join(_cell(cell) for cell in row) + " |")
    lines.append("")
    return lines


def _type_text(prop: dict[str, Any]) -> str:
    ref = _ref_name(prop)
    if prop.get("type") == "array":
        items = prop.get("items", {})
        inner = f"[{ref}](#{ref.lower()})" if ref else items.get("type", "any")
        return f"array of {inner}"
    if ref is not None:
        return f"[{ref}](#{ref.lower()})"
    return str(prop.get("type", "any"))


def _default_text(prop: dict[str, Any]) -> str:
    if "default" not in prop:
        return "optional"
    default = prop["default"]
    if isinstance(default, dict) and default:
        return "its fields' defaults"
    return f"`{json.dumps(default)}`"


def _constraints_text(prop: dict[str, Any]) -> str:
    parts: list[str] = []
    targets = [prop, prop.get("items", {})] if prop.get("type") == "array" else [prop]
    for index, spec in enumerate(targets):
        prefix = "each " if index == 1 else ""
        if "minimum" in spec or "maximum" in spec:
            parts.append(f"{prefix}{spec.get('minimum', '')}..{spec.get('maximum', '')}")
        if "minLength" in spec or "maxLength" in spec:
            parts.append(f"{prefix}length {spec.get('minLength', 0)}..{spec.get('maxLength', '')}")
        if "minItems" in spec or "maxItems" in spec:
            parts.append(f"{spec.get('minItems', 0)}..{spec.get('maxItems', '')} items")
        if spec.get("uniqueItems"):
            parts.append("unique")
        if "enum" in spec:
            parts.append(f"{prefix}one of " + ", ".join(f"`{v}`" for v in spec["enum"]))
        if "pattern" in spec:
            parts.append(f"{prefix}pattern {_code(spec['pattern'])}")
    return "; ".join(parts)


def _code(text: str) -> str:
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _reason_table() -> list[str]:
    lines = [
        "## Reason codes",
        "",
        "A rejected route lists every problem found, each with a field path such as",
        "`upstreams[0].url` (empty for the whole document), one of these reasons and a message.",
        "",
        "| reason | meaning |",
        "|---|---|",
    ]
    lines.extend(f"| `{reason}` | {_cell(meaning)} |" for reason, meaning in REASONS.items())
    lines.append("")
    return lines


# ---- command line ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check``, compare) the schema or, with ``--docs``, the reference."""
    parser = argparse.ArgumentParser(prog="python -m control_plane.model.schema",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--docs", action="store_true", help="the reference page, not the schema")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--output", type=Path, help="where to write (default: in the repo)")
    args = parser.parse_args(argv)
    text = render_reference() if args.docs else render_schema()
    path = args.output or (REFERENCE_PATH if args.docs else SCHEMA_PATH)
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            print(f"{path} is out of date; run python -m control_plane.model.schema"
                  f"{' --docs' if args.docs else ''}", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
