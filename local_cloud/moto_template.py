"""The template as moto's CloudFormation can take it, with the same meaning it has on AWS.

Each rewrite below replaces a construct moto crashes on or mis-reads with one that means the
same thing on AWS:

- ``Fn::GetAtt [StateMachine, Arn]`` (moto: "does not support attribute type Arn") becomes
  ``Ref StateMachine``, which returns the ARN on AWS too; ``${Sm.Arn}`` in ``Fn::Sub`` likewise.
- ``Ref EventBus`` (moto returns a Python repr, and a Rule's ``EventBusName: !Ref Bus``
  crashes) becomes ``Fn::GetAtt [EventBus, Name]``, which is what the Ref returns on AWS.
- A state machine's ``Definition`` (moto stores an empty definition), ``DefinitionS3Location``
  (ignored) and ``DefinitionSubstitutions`` (not applied) become one ``DefinitionString`` with
  the substitutions made.
- Resources of types moto's CloudFormation does not implement (it skips them, and any
  ``GetAtt`` on them crashes the stack) are taken out; the deployer creates them through the
  service APIs. References to the ones created before the stack are replaced by their values;
  a reference to one that can only be created after the stack is an error.
- Outputs moto cannot compute are left out of what moto sees; the deployer computes every
  output itself.
- When the deployer knows the conditions' values (they depend on parameters only), each
  ``Fn::If`` becomes the branch it chooses (``AWS::NoValue`` removes the property or list item)
  and resources and outputs whose condition is false are left out, as CloudFormation would do.
  Otherwise a branch that is never taken could still name a resource moto does not create.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_cloud.template import parse_template

STATE_MACHINE = "AWS::StepFunctions::StateMachine"
EVENT_BUS = "AWS::Events::EventBus"
_SUB_TOKEN = re.compile(r"\$\{([^}!][^}]*)\}")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_.\-]+)\}")


class TemplateNotSupportedLocally(ValueError):
    """The template uses something the local cloud cannot reproduce faithfully."""


@dataclass(frozen=True)
class ResourceValues:
    """What ``Ref`` and ``Fn::GetAtt`` return for one resource."""

    ref: Any
    attributes: Mapping[str, Any] = field(default_factory=dict)


def moto_supports(resource_type: str) -> bool:
    """Whether moto's CloudFormation creates resources of this type."""
    from moto.cloudformation.parsing import NULL_MODELS, get_model_map

    return (resource_type in get_model_map() or resource_type in NULL_MODELS
            or resource_type.startswith("Custom::"))


def _moto_has_attribute(resource_type: str, attribute: str) -> bool:
    from moto.cloudformation.parsing import get_model_map

    model = get_model_map().get(resource_type)
    return model is not None and model.has_cfn_attr(attribute)


class _Rewriter:
    def __init__(self, resources: Mapping[str, Any], deferred: set[str],
                 values: Mapping[str, ResourceValues]) -> None:
        self.types = {name: r.get("Type") for name, r in resources.items()}
        self.deferred = deferred
        self.values = values

    def _value(self, name: str, attribute: str | None) -> Any:
        if name not in self.values:
            raise TemplateNotSupportedLocally(
                f"{name} ({self.types[name]}) cannot exist before the stack locally (moto's "
                "CloudFormation does not create this type, and the local cloud creates it "
                "after the stack or not at all), so no stack resource can refer to it")
        values = self.values[name]
        if attribute is None:
            return values.ref
        if attribute not in values.attributes:
            raise TemplateNotSupportedLocally(f"{name}.{attribute} is not available locally")
        return values.attributes[attribute]

    def rewrite(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.rewrite(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1 and "Ref" in value and isinstance(value["Ref"], str):
            name = value["Ref"]
            if name in self.deferred:
                return self._value(name, None)
            if self.types.get(name) == EVENT_BUS:
                return {"Fn::GetAtt": [name, "Name"]}
            return value
        if len(value) == 1 and "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            name, attribute = target if isinstance(target, list) else target.split(".", 1)
            if name in self.deferred:
                return self._value(name, attribute)
            if self.types.get(name) == STATE_MACHINE and attribute == "Arn":
                return {"Ref": name}
            return {"Fn::GetAtt": [name, attribute]}
        if len(value) == 1 and "Fn::Sub" in value:
            return {"Fn::Sub": self._rewrite_sub(value["Fn::Sub"])}
        return {key: self.rewrite(item) for key, item in value.items()}

    def _rewrite_sub(self, argument: Any) -> Any:
        text, variables = (argument[0], argument[1]) if isinstance(argument, list) else (
            argument, None)
        local = set(variables or {})

        def token(match: re.Match[str]) -> str:
            name = match.group(1)
            root, _, attribute = name.partition(".")
            if root in local:
                return match.group(0)
            if root in self.deferred:
                return str(self._value(root, attribute or None))
            if self.types.get(root) == EVENT_BUS and not attribute:
                return "${" + root + ".Name}"
            if self.types.get(root) == STATE_MACHINE and attribute == "Arn":
                return "${" + root + "}"
            return match.group(0)

        rewritten = _SUB_TOKEN.sub(token, text) if isinstance(text, str) else text
        if variables is None:
            return rewritten
        return [rewritten, self.rewrite(variables)]


def _text_of(value: Any) -> Any:
    return value if isinstance(value, str) or isinstance(value, dict) else json.dumps(value)


def _substitute_text(text: str, substitutions: Mapping[str, Any]) -> Any:
    """``text`` with ``${Name}`` placeholders replaced: a string, or a ``Fn::Join``."""
    parts: list[Any] = []
    position = 0
    for match in _PLACEHOLDER.finditer(text):
        if match.group(1) not in substitutions:
            continue
        parts.append(text[position:match.start()])
        parts.append(_text_of(substitutions[match.group(1)]))
        position = match.end()
    parts.append(text[position:])
    parts = [part for part in parts if part != ""]
    if all(isinstance(part, str) for part in parts):
        return "".join(parts)
    return {"Fn::Join": ["", parts]}


def _substitute_tree(value: Any, substitutions: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return _substitute_text(value, substitutions)
    if isinstance(value, list):
        return [_substitute_tree(item, substitutions) for item in value]
    if isinstance(value, dict):
        return {key: _substitute_tree(item, substitutions) for key, item in value.items()}
    return value


def _has_intrinsic(value: Any) -> bool:
    if isinstance(value, list):
        return any(_has_intrinsic(item) for item in value)
    if isinstance(value, dict):
        if (len(value) == 1 and next(iter(value)) in ("Ref", "Condition")) or any(
                key.startswith("Fn::") for key in value):
            return True
        return any(_has_intrinsic(item) for item in value.values())
    return False


def _definition_string(logical_id: str, properties: dict[str, Any], *, template_dir: Path,
                       read_s3_object: Callable[[str, str], bytes]) -> Any:
    substitutions = properties.pop("DefinitionSubstitutions", None) or {}
    location = properties.pop("DefinitionS3Location", None)
    if location is not None:
        if isinstance(location, str):
            text = (template_dir / location).read_text(encoding="utf-8")
        else:
            text = read_s3_object(location["Bucket"], location["Key"]).decode("utf-8")
        properties["Definition"] = parse_template_fragment(text)
    if "Definition" in properties:
        definition = _substitute_tree(properties.pop("Definition"), substitutions)
        if _has_intrinsic(definition):
            return {"Fn::ToJsonString": definition}
        return json.dumps(definition)
    definition = properties.get("DefinitionString")
    if not substitutions:
        return definition
    if isinstance(definition, str):
        return _substitute_text(definition, substitutions)
    if isinstance(definition, dict) and "Fn::Sub" in definition:
        body = definition["Fn::Sub"]
        text, variables = (body[0], body[1]) if isinstance(body, list) else (body, None)
        pieces = _substitute_text(text, substitutions)
        items = pieces["Fn::Join"][1] if isinstance(pieces, dict) else [pieces]

        def fragment(item: Any) -> Any:
            if not isinstance(item, str):
                return item
            return {"Fn::Sub": [item, variables] if variables is not None else item}

        return {"Fn::Join": ["", [fragment(item) for item in items]]}
    if isinstance(definition, dict) and "Fn::Join" in definition:
        delimiter, items = definition["Fn::Join"]
        return {"Fn::Join": [delimiter, _substitute_tree(items, substitutions)]}
    raise TemplateNotSupportedLocally(
        f"{logical_id}: DefinitionSubstitutions on this DefinitionString form")


def parse_template_fragment(text: str) -> Any:
    """A JSON or YAML document (a state machine definition file)."""
    try:
        return json.loads(text)
    except ValueError:
        wrapped = parse_template("Resources: {}\nFragment:\n" + "\n".join(
            "  " + line for line in text.splitlines()))
        return wrapped["Fragment"]


_NO_VALUE = object()


def _choose_branches(value: Any, conditions: Mapping[str, bool]) -> Any:
    """``value`` with every ``Fn::If`` on a known condition replaced by its chosen branch."""
    if isinstance(value, list):
        items = [_choose_branches(item, conditions) for item in value]
        return [item for item in items if item is not _NO_VALUE]
    if not isinstance(value, dict):
        return value
    if value == {"Ref": "AWS::NoValue"}:
        return _NO_VALUE
    if len(value) == 1 and "Fn::If" in value:
        name, when_true, when_false = value["Fn::If"]
        if isinstance(name, str) and name in conditions:
            return _choose_branches(when_true if conditions[name] else when_false, conditions)
    chosen = {key: _choose_branches(item, conditions) for key, item in value.items()}
    return {key: item for key, item in chosen.items() if item is not _NO_VALUE}


def _resolve_conditions(template: dict[str, Any], conditions: Mapping[str, bool]) -> None:
    """Drop what a false condition excludes and choose every ``Fn::If`` branch, in place."""

    def included(entry: Mapping[str, Any]) -> bool:
        name = entry.get("Condition")
        return not isinstance(name, str) or conditions.get(name, True)

    for section in ("Resources", "Outputs"):
        entries = template.get(section) or {}
        template[section] = {name: _choose_branches(entry, conditions)
                             for name, entry in entries.items() if included(entry)}


def deferred_resources(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The resources of types moto's CloudFormation does not create."""
    return {name: resource for name, resource in template["Resources"].items()
            if not moto_supports(resource.get("Type", ""))}


def adapt_for_moto(
    template: Mapping[str, Any],
    *,
    created_before: Mapping[str, ResourceValues],
    template_dir: Path,
    read_s3_object: Callable[[str, str], bytes],
    conditions: Mapping[str, bool] | None = None,
) -> dict[str, Any]:
    """The template moto deploys: see the module docstring for every change made."""
    adapted = copy.deepcopy(dict(template))
    if conditions:
        _resolve_conditions(adapted, conditions)
    resources = adapted["Resources"]
    deferred = set(deferred_resources(adapted))
    rewriter = _Rewriter(resources, deferred, created_before)
    kept: dict[str, Any] = {}
    for logical_id, resource in resources.items():
        if logical_id in deferred:
            continue
        resource = dict(resource)
        depends = resource.get("DependsOn")
        if depends is not None:
            names = [depends] if isinstance(depends, str) else list(depends)
            names = [name for name in names if name not in deferred]
            if names:
                resource["DependsOn"] = names
            else:
                resource.pop("DependsOn")
        if resource.get("Type") == STATE_MACHINE:
            properties = dict(resource.get("Properties") or {})
            properties["DefinitionString"] = _definition_string(
                logical_id, properties, template_dir=template_dir, read_s3_object=read_s3_object)
            resource["Properties"] = properties
        try:
            kept[logical_id] = rewriter.rewrite(resource)
        except TemplateNotSupportedLocally as exc:
            raise TemplateNotSupportedLocally(f"{logical_id}: {exc}") from exc
    adapted["Resources"] = kept
    outputs = {}
    for name, output in (adapted.get("Outputs") or {}).items():
        try:
            rewritten = rewriter.rewrite(output)
        except TemplateNotSupportedLocally:
            continue
        if _computable_by_moto(rewritten.get("Value"), {n: r.get("Type") for n, r in kept.items()}):
            outputs[name] = rewritten
    if outputs:
        adapted["Outputs"] = outputs
    else:
        adapted.pop("Outputs", None)
    return adapted


def _computable_by_moto(value: Any, types: Mapping[str, str]) -> bool:
    if isinstance(value, list):
        return all(_computable_by_moto(item, types) for item in value)
    if not isinstance(value, dict):
        return True
    if len(value) == 1 and "Fn::GetAtt" in value:
        name, attribute = value["Fn::GetAtt"]
        return name in types and _moto_has_attribute(types[name], attribute)
    if len(value) == 1 and "Fn::Sub" in value:
        body = value["Fn::Sub"]
        text = body[0] if isinstance(body, list) else body
        for token in _SUB_TOKEN.findall(text if isinstance(text, str) else ""):
            name, _, attribute = token.partition(".")
            if attribute and name in types and not _moto_has_attribute(types[name], attribute):
                return False
    return all(_computable_by_moto(item, types) for item in value.values())
