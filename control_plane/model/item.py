"""Route documents <-> DynamoDB items.

:func:`to_item` writes the attribute-value map a person would write by hand for
``aws dynamodb put-item``: only the plain types ``S``, ``N``, ``BOOL``, ``L``, ``M`` and
``NULL``. :func:`from_item` reads any item back into plain JSON data: numbers with no
fractional part become ``int``, other numbers ``float``; string and number sets (``SS``,
``NS``), which a person may also write, become sorted lists. Binary values stay ``bytes``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal, DecimalException
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def to_item(doc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The DynamoDB item for the JSON document ``doc``.

    Raises ``TypeError`` for a value JSON cannot hold and ``ValueError`` for a number
    DynamoDB cannot hold (NaN, infinity, more than 38 digits, magnitude beyond 1E-130..1E+126).
    """
    try:
        return {
            str(key): _SERIALIZER.serialize(_dynamodb_value(value)) for key, value in doc.items()
        }
    except DecimalException as exc:
        raise ValueError(f"a number DynamoDB cannot hold: {exc!r}") from exc


def from_item(item: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The plain JSON document an item holds."""
    return {key: _plain(_DESERIALIZER.deserialize(dict(value))) for key, value in item.items()}


def _dynamodb_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("DynamoDB numbers cannot be NaN or infinite")
        return Decimal(repr(value))
    if isinstance(value, Decimal):
        return value
    if isinstance(value, list | tuple):
        return [_dynamodb_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _dynamodb_value(v) for k, v in value.items()}
    raise TypeError(f"a route document cannot hold a {type(value).__name__}")


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _number(value)
    if isinstance(value, Binary):
        return bytes(value.value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(_plain(v) for v in value)
    return value


def _number(value: Decimal) -> int | float:
    if value.is_finite() and value == value.to_integral_value():
        return int(value)
    return float(value)
