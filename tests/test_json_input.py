"""JSON in and out: size, depth and values, never a RecursionError."""

from __future__ import annotations

from collections import OrderedDict
import json
from types import MappingProxyType
from typing import Any

import pytest

from custom_components.direct_push.json_input import (
    MAX_DEPTH,
    MAX_ITEMS,
    MAX_SUBSCRIPTION_JSON,
    check_json_text,
    check_json_value,
    loads,
    parse_json,
)
from custom_components.direct_push.validation import InputError

LIMIT = MAX_SUBSCRIPTION_JSON


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _parse_error(text: str, **limits: Any) -> InputError:
    with pytest.raises(InputError) as info:
        parse_json(text, "subscription", **({"max_bytes": LIMIT} | limits))
    assert info.value.field == "subscription"
    return info.value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"endpoint": "https://e/x", "keys": {"p256dh": "a", "auth": "b"}}', None),
        ("[]", []),
        ("null", None),
        ("1.5", 1.5),
        ('"text"', "text"),
        (_nested(MAX_DEPTH), None),
        # Brackets inside strings are text, not nesting.
        ('{"a": "' + "[" * 1000 + '"}', {"a": "[" * 1000}),
        ('["\\"[[[[", "\\\\", "]]]"]', ['"[[[[', "\\", "]]]"]),
        ('{"emoji": "\\ud83d\\ude00"}', {"emoji": "😀"}),  # a surrogate *pair* is fine
        ('\n  {\n    "pretty": true\n  }\n', {"pretty": True}),
        ("1" * 4200, int("1" * 4200)),
    ],
)
def test_parse_json_accepts(text: str, value: Any) -> None:
    parsed = parse_json(text, "subscription", max_bytes=LIMIT)
    if value is not None:
        assert parsed == value


@pytest.mark.parametrize(
    ("text", "key", "placeholders"),
    [
        # A config.json import allows megabytes: depth is refused, not size.
        ("[" * 100_000, "json_too_deep", {"limit": str(MAX_DEPTH)}),
        (
            '{"a":' * 100_000 + "1" + "}" * 100_000,
            "json_too_deep",
            {"limit": str(MAX_DEPTH)},
        ),
        ('{"a":' * 5_000 + "1" + "}" * 5_000, "json_too_large", {"limit": str(LIMIT)}),
        (_nested(MAX_DEPTH + 1), "json_too_deep", {"limit": str(MAX_DEPTH)}),
        ('{"data": ' + _nested(40) + "}", "json_too_deep", {"limit": str(MAX_DEPTH)}),
        ("x" * (LIMIT + 1), "json_too_large", {"limit": str(LIMIT)}),
        # Fewer characters than the limit, more bytes.
        ('"' + "é" * (LIMIT // 2) + '"', "json_too_large", {"limit": str(LIMIT)}),
        ("NaN", "json_not_finite", {}),
        ("[Infinity]", "json_not_finite", {}),
        ('{"a": -Infinity}', "json_not_finite", {}),
        ("[1e400]", "json_not_finite", {}),
        ("-1e999", "json_not_finite", {}),
        ("1" * 5000, "json_number_too_large", {}),
        (
            '{"endpoint": "https://e/\\ud800"}',
            "lone_surrogate",
            {"field": "subscription"},
        ),
        ('{"\\udfff": 1}', "lone_surrogate", {"field": "subscription"}),
        ('["\\udc00\\ud800"]', "lone_surrogate", {"field": "subscription"}),
        ('{"a": }', "invalid_json", {"line": "1", "column": "7"}),
        ('{\n  "a": 1,\n}', "invalid_json", {"line": "2", "column": "9"}),
        ("", "invalid_json", {"line": "1", "column": "1"}),
        ("]]]][[", "invalid_json", {"line": "1", "column": "1"}),
        ('"unterminated [[[', "invalid_json", {"line": "1", "column": "1"}),
        ("{'single': 'quotes'}", "invalid_json", {"line": "1", "column": "2"}),
    ],
)
def test_parse_json_refuses(text: str, key: str, placeholders: dict[str, str]) -> None:
    # The subscription form's limit, or a config.json's for the deep cases.
    err = _parse_error(text, max_bytes=LIMIT if len(text) <= 2 * LIMIT else 4 << 20)
    assert (err.key, err.placeholders) == (key, placeholders)


def test_parse_json_counts_values_by_size() -> None:
    """Text holds no shared references: a big config.json may list many devices."""
    text = "[" + ",".join(["0"] * (2 * MAX_ITEMS)) + "]"
    assert len(parse_json(text, "config", max_bytes=len(text))) == 2 * MAX_ITEMS


def test_parse_json_limits_are_parameters() -> None:
    assert _parse_error(_nested(3), max_depth=2).key == "json_too_deep"
    assert parse_json(_nested(3), "f", max_bytes=10, max_depth=3) == [[[]]]
    assert _parse_error("[1, 2]", max_bytes=5).key == "json_too_large"


def test_check_json_text_alone_measures_without_parsing() -> None:
    # Not JSON at all, but within the limits: the parser reports that.
    check_json_text("{[(", "config", max_bytes=10)
    with pytest.raises(InputError, match="json_too_deep"):
        check_json_text("{" * 33, "config", max_bytes=100)


def test_loads_keeps_the_parsers_position_for_callers() -> None:
    """The importer reports syntax errors with their line and column itself."""
    with pytest.raises(json.JSONDecodeError) as info:
        loads('{\n "a": (remark)\n}', "config.json")
    assert (info.value.lineno, info.value.colno) == (2, 7)
    with pytest.raises(InputError, match="json_not_finite"):
        loads("[NaN]", "config.json")


def _deep_list(depth: int) -> list[Any]:
    """Return lists nested `depth` levels: _deep_list(1) == []."""
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def _deep_dict(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def _cycle() -> list[Any]:
    value: list[Any] = []
    value.append(value)
    return value


def _laughs() -> list[Any]:
    """Ten lists of ten lists ... twenty deep: 10**20 values, a few hundred objects."""
    value: list[Any] = [1] * 10
    for _ in range(20):
        value = [value] * 10
    return value


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"door": "front", "count": 2, "ratio": 0.5, "open": True, "note": None},
        {"nested": {"list": [1, [2, [3]]], "tuple": (1, 2)}},
        {1: "int key", 2.5: "float key", False: "bool key", None: "null key"},
        MappingProxyType({"read": "only"}),
        OrderedDict(a=1),
        _deep_list(MAX_DEPTH),
        {"emoji": "😀 \u200d", "text": "line\nbreak"},
        list(range(MAX_ITEMS - 1)),
        {"big": 10**1000, "negative": -(10**1000)},
    ],
)
def test_check_json_value_accepts(value: Any) -> None:
    check_json_value(value, "data")


@pytest.mark.parametrize(
    ("value", "key", "placeholders"),
    [
        (_deep_list(100_000), "json_too_deep", {"limit": str(MAX_DEPTH)}),
        (_deep_dict(100_000), "json_too_deep", {"limit": str(MAX_DEPTH)}),
        (_deep_list(MAX_DEPTH + 1), "json_too_deep", {"limit": str(MAX_DEPTH)}),
        (_cycle(), "json_too_deep", {"limit": str(MAX_DEPTH)}),
        (_laughs(), "json_too_many_values", {"limit": str(MAX_ITEMS)}),
        (list(range(MAX_ITEMS)), "json_too_many_values", {"limit": str(MAX_ITEMS)}),
        ({"a": float("nan")}, "json_not_finite", {}),
        ({"a": [float("inf")]}, "json_not_finite", {}),
        ({"a": -float("inf")}, "json_not_finite", {}),
        ({float("nan"): 1}, "json_not_finite", {}),
        ({"a": 10**5000}, "json_number_too_large", {}),
        ({"a": "\ud800"}, "lone_surrogate", {"field": "data"}),
        ({"\udfff": "key"}, "lone_surrogate", {"field": "data"}),
        ({"a": [{"b": ["ok", "bad \udc00"]}]}, "lone_surrogate", {"field": "data"}),
        ({"a": {1, 2}}, "data_not_json", {"error": "set"}),
        ({"a": b"bytes"}, "data_not_json", {"error": "bytes"}),
        ({"a": object()}, "data_not_json", {"error": "object"}),
        ({(1, 2): "tuple key"}, "data_not_json", {"error": "tuple"}),
        ({"a": 1j}, "data_not_json", {"error": "complex"}),
    ],
)
def test_check_json_value_refuses(
    value: Any, key: str, placeholders: dict[str, str]
) -> None:
    with pytest.raises(InputError) as info:
        check_json_value(value, "data")
    assert (info.value.field, info.value.key, info.value.placeholders) == (
        "data",
        key,
        placeholders,
    )


def test_check_json_value_limits_are_parameters() -> None:
    check_json_value([[1]], "data", max_depth=2, max_items=3)
    with pytest.raises(InputError, match="json_too_deep"):
        check_json_value([[1]], "data", max_depth=1)
    with pytest.raises(InputError, match="json_too_many_values"):
        check_json_value([1, 2, 3], "data", max_items=3)
