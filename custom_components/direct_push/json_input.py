"""JSON in and out, within limits. Plain Python: no Home Assistant here.

The stdlib parser and encoder recurse once per nesting level: a pasted
subscription or an imported config.json nested 100,000 deep raises
RecursionError, and so does action data built that deep. So JSON text is
measured before it is parsed, and Python values are walked with a stack,
never recursively.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import accumulate
import json
import math
import re
from typing import Any, Final, NoReturn

from .validation import InputError, check_storable

MAX_DEPTH: Final = 32
"""Nesting levels: apps read a few; far below the stdlib's recursion limit and
orjson's 254, which HA's storage and the encoders must never reach."""
MAX_ITEMS: Final = 10_000
"""Values in one structure: more than a 4 KB push can hold, so walking stops
early, even for a structure that shares one list many times over (a YAML
"billion laughs")."""
MAX_SUBSCRIPTION_JSON: Final = 16 * 1024
"""Bytes: a W3C PushSubscription is a few hundred, pretty-printed or not."""

# A JSON string, escapes included (the unrolled form never backtracks).
_STRING_RE: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET_RE: Final = re.compile(r"[^\[\]{}]+")
_STEP: Final = {"[": 1, "{": 1, "]": -1, "}": -1}
# Python converts at most 4300 digits between int and text (a bare
# ValueError beyond); 14,000 bits is about 4,200 digits.
_MAX_INT_DIGITS: Final = 4200
_MAX_INT_BITS: Final = 14_000


def check_json_text(
    text: str, field: str, *, max_bytes: int, max_depth: int = MAX_DEPTH
) -> None:
    """Refuse JSON text too large or nested too deep, before it is parsed."""
    # Characters never outnumber UTF-8 bytes: skip the encoding when it fits.
    if len(text) > max_bytes or (
        len(text) * 4 > max_bytes
        and len(text.encode("utf-8", "surrogatepass")) > max_bytes
    ):
        raise InputError(field, "json_too_large", limit=str(max_bytes))
    # Strings out, then brackets only: C speed, even for megabytes. Where the
    # text stops being JSON the parser stops too, so the running sum bounds
    # its depth over the part it reads.
    brackets = _NOT_BRACKET_RE.sub("", _STRING_RE.sub("", text))
    if max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > max_depth:
        raise InputError(field, "json_too_deep", limit=str(max_depth))


def _refuse_constant(field: str) -> Callable[[str], NoReturn]:
    def refuse(_: str) -> NoReturn:
        raise InputError(field, "json_not_finite")

    return refuse


def _finite_float(field: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        # 1e400 parses as inf without passing through parse_constant.
        if math.isfinite(value := float(text)):
            return value
        raise InputError(field, "json_not_finite")

    return parse


def _bounded_int(field: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        # Python refuses to convert more digits than this with a bare ValueError.
        if len(text) > _MAX_INT_DIGITS:
            raise InputError(field, "json_number_too_large")
        return int(text)

    return parse


def loads(text: str, field: str) -> Any:
    """Parse JSON text already measured by check_json_text.

    NaN, Infinity and numbers too large for a float are refused: they are
    not JSON (RFC 8259) and a strict receiver would refuse the whole push.
    Syntax errors raise json.JSONDecodeError, with its line and column.
    """
    return json.loads(
        text,
        parse_constant=_refuse_constant(field),
        parse_float=_finite_float(field),
        parse_int=_bounded_int(field),
    )


def parse_json(
    text: str, field: str, *, max_bytes: int, max_depth: int = MAX_DEPTH
) -> Any:
    """Check and parse JSON text from outside; every problem is an InputError."""
    check_json_text(text, field, max_bytes=max_bytes, max_depth=max_depth)
    try:
        value = loads(text, field)
    except json.JSONDecodeError as err:
        raise InputError(
            field, "invalid_json", line=str(err.lineno), column=str(err.colno)
        ) from None
    # Every value takes a byte of text at least: the size bounds the count.
    check_json_value(value, field, max_depth=max_depth, max_items=max_bytes)
    return value


def _check_scalar(value: Any, field: str) -> None:
    """Refuse a value JSON cannot carry, or text HA cannot store."""
    if isinstance(value, str):
        check_storable(value, field)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(field, "json_not_finite")
    elif isinstance(value, int):  # bool too
        if value.bit_length() > _MAX_INT_BITS:
            raise InputError(field, "json_number_too_large")
    elif value is not None:
        # The type name says what to fix; never the value.
        raise InputError(field, "data_not_json", error=type(value).__name__)


def check_json_value(
    value: Any, field: str, *, max_depth: int = MAX_DEPTH, max_items: int = MAX_ITEMS
) -> None:
    """Check that a Python value is plain JSON within the limits.

    For data from an action, a template or a parser: mappings with text,
    number, boolean or null keys (json.dumps turns those into text), lists
    and tuples, text, finite numbers, booleans and null. Iterative, so no
    depth raises RecursionError; a cycle is refused as too deep.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    items = 1
    while stack:
        current, depth = stack.pop()
        if isinstance(current, Mapping):
            for key in current:
                _check_scalar(key, field)
            children: Any = current.values()
        elif isinstance(current, (list, tuple)):
            children = current
        else:
            _check_scalar(current, field)
            continue
        if depth >= max_depth:
            raise InputError(field, "json_too_deep", limit=str(max_depth))
        # Counted before they are stacked: a huge list is refused unwalked.
        items += len(children)
        if items > max_items:
            raise InputError(field, "json_too_many_values", limit=str(max_items))
        stack.extend((child, depth + 1) for child in children)
