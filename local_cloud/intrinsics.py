"""CloudFormation intrinsic functions, evaluated outside CloudFormation.

The local deployer needs the values moto drops or garbles (outputs, the properties of resources
moto ignores), so it evaluates them itself: ``Ref``, ``Fn::GetAtt``, ``Fn::Sub``, ``Fn::Join``,
``Fn::Select``, ``Fn::Split``, ``Fn::If`` and the condition functions, ``Fn::FindInMap``,
``Fn::Base64``, ``Fn::GetAZs``, ``Fn::ImportValue``, ``Fn::ToJsonString``. Resources are looked
up through a callback, so the same evaluator serves before, during and after a deploy.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

NO_VALUE = object()
"""What ``{"Ref": "AWS::NoValue"}`` evaluates to; dropped from the enclosing dict or list."""

ResourceLookup = Callable[[str, str | None], Any]
"""``(logical_id, attribute)``: the resource's ``Ref`` value when attribute is None."""

_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


class UnresolvableError(LookupError):
    """An intrinsic names something this evaluator cannot give a value for."""


def references(value: Any) -> set[str]:
    """The logical ids and parameter names ``value`` refers to (Ref, GetAtt, Sub)."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, dict):
        if len(value) == 1 and "Ref" in value and isinstance(value["Ref"], str):
            found.add(value["Ref"])
        elif len(value) == 1 and "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            found.add(target[0] if isinstance(target, list) else str(target).split(".", 1)[0])
        elif len(value) == 1 and "Fn::Sub" in value:
            body = value["Fn::Sub"]
            text, variables = (body[0], body[1]) if isinstance(body, list) else (body, {})
            local = set(variables)
            for name in _SUB_VARIABLE.findall(text if isinstance(text, str) else ""):
                root = name.split(".", 1)[0]
                if root not in local:
                    found.add(root)
            found |= references(variables)
        else:
            for item in value.values():
                found |= references(item)
    return found


class Evaluator:
    """Evaluates intrinsics of one template with given parameters and resource values."""

    def __init__(
        self,
        template: Mapping[str, Any],
        *,
        parameters: Mapping[str, Any],
        pseudo: Mapping[str, Any],
        resources: ResourceLookup,
        exports: Mapping[str, str] | None = None,
    ) -> None:
        self.template = template
        self.parameters = dict(parameters)
        self.pseudo = dict(pseudo)
        self.resources = resources
        self.exports = dict(exports or {})
        self._conditions: dict[str, bool] = {}

    def evaluate(self, value: Any) -> Any:
        """``value`` with every intrinsic replaced by its result."""
        if isinstance(value, list):
            items = [self.evaluate(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, argument), = value.items()
            function = _FUNCTIONS.get(key)
            if function is not None and (key != "Condition" or isinstance(argument, str)):
                return function(self, argument)
        result = {}
        for key, item in value.items():
            evaluated = self.evaluate(item)
            if evaluated is not NO_VALUE:
                result[key] = evaluated
        return result

    def condition(self, name: str) -> bool:
        """The value of the template's condition ``name``."""
        if name not in self._conditions:
            definition = (self.template.get("Conditions") or {}).get(name)
            if definition is None:
                raise UnresolvableError(f"unknown condition {name}")
            self._conditions[name] = bool(self.evaluate(definition))
        return self._conditions[name]

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in (self.template.get("Resources") or {}):
            return self.resources(name, None)
        raise UnresolvableError(f"Ref to unknown name {name}")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        if logical_id not in (self.template.get("Resources") or {}):
            raise UnresolvableError(f"GetAtt on unknown resource {logical_id}")
        return self.resources(logical_id, attribute)

    def sub(self, argument: Any) -> str:
        text, variables = (argument[0], argument[1]) if isinstance(argument, list) else (
            argument, {})
        values = {name: self.evaluate(v) for name, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in values:
                return str(values[name])
            if "." in name and name.split(".", 1)[0] in (self.template.get("Resources") or {}):
                logical_id, attribute = name.split(".", 1)
                return str(self.get_att(logical_id, attribute))
            return str(self.ref(name))

        substituted = _SUB_VARIABLE.sub(replace, text)
        return substituted.replace("${!", "${")


def _get_att(evaluator: Evaluator, argument: Any) -> Any:
    logical_id, attribute = (argument if isinstance(argument, list)
                             else str(argument).split(".", 1))
    return evaluator.get_att(logical_id, evaluator.evaluate(attribute))


def _if(evaluator: Evaluator, argument: list[Any]) -> Any:
    name, when_true, when_false = argument
    return evaluator.evaluate(when_true if evaluator.condition(name) else when_false)


def _join(evaluator: Evaluator, argument: list[Any]) -> str:
    delimiter, items = argument
    return delimiter.join(str(item) for item in evaluator.evaluate(items))


def _select(evaluator: Evaluator, argument: list[Any]) -> Any:
    index, items = argument
    return evaluator.evaluate(items)[int(evaluator.evaluate(index))]


def _split(evaluator: Evaluator, argument: list[Any]) -> list[str]:
    delimiter, text = argument
    return str(evaluator.evaluate(text)).split(delimiter)


def _find_in_map(evaluator: Evaluator, argument: list[Any]) -> Any:
    name, first, second = (evaluator.evaluate(part) for part in argument[:3])
    try:
        return evaluator.template["Mappings"][name][first][second]
    except KeyError as exc:
        raise UnresolvableError(f"FindInMap {name}/{first}/{second}") from exc


def _import_value(evaluator: Evaluator, argument: Any) -> str:
    name = evaluator.evaluate(argument)
    if name not in evaluator.exports:
        raise UnresolvableError(f"no export named {name}")
    return evaluator.exports[name]


def _get_azs(evaluator: Evaluator, argument: Any) -> list[str]:
    region = evaluator.evaluate(argument) or evaluator.pseudo.get("AWS::Region", "us-east-1")
    return [f"{region}{zone}" for zone in "abcdef"]


_FUNCTIONS: dict[str, Callable[[Evaluator, Any], Any]] = {
    "Ref": lambda e, a: e.ref(a),
    "Fn::GetAtt": _get_att,
    "Fn::Sub": lambda e, a: e.sub(a),
    "Fn::Join": _join,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::If": _if,
    "Fn::Equals": lambda e, a: e.evaluate(a[0]) == e.evaluate(a[1]),
    "Fn::And": lambda e, a: all(bool(e.evaluate(c)) for c in a),
    "Fn::Or": lambda e, a: any(bool(e.evaluate(c)) for c in a),
    "Fn::Not": lambda e, a: not bool(e.evaluate(a[0])),
    "Condition": lambda e, a: e.condition(a),
    "Fn::FindInMap": _find_in_map,
    "Fn::Base64": lambda e, a: base64.b64encode(str(e.evaluate(a)).encode()).decode(),
    "Fn::GetAZs": _get_azs,
    "Fn::ImportValue": _import_value,
    "Fn::ToJsonString": lambda e, a: json.dumps(e.evaluate(a)),
}
