"""CloudFormation templates read into plain data, the long form of every intrinsic.

``!Ref X`` becomes ``{"Ref": "X"}``, ``!GetAtt A.B`` becomes ``{"Fn::GetAtt": ["A", "B"]}``,
``!Condition C`` becomes ``{"Condition": "C"}`` and any other ``!Tag v`` becomes
``{"Fn::Tag": v}``. Dates stay strings (``Version: 2012-10-17`` is not a timestamp to
CloudFormation). JSON templates load through the same path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class _TemplateLoader(yaml.SafeLoader):
    """SafeLoader with CloudFormation's short-form tags and no timestamp type."""


_TemplateLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_TemplateLoader.add_multi_constructor("!", _construct_intrinsic)


def parse_template(text: str) -> dict[str, Any]:
    """A template's text (YAML or JSON) as a dict."""
    document = yaml.load(text, Loader=_TemplateLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise ValueError("not a CloudFormation template: no Resources section")
    return document


def load_template(path: str | Path) -> dict[str, Any]:
    """Read a template file (YAML or JSON)."""
    return parse_template(Path(path).read_text(encoding="utf-8"))
