"""Text rules: what may be stored, named, or sent in a header."""

from __future__ import annotations

import re
from typing import Any

import pytest

from custom_components.direct_push.validation import (
    LIMITED_FIELDS,
    MAX_NAME_LENGTH,
    InputError,
    check_limited_field,
    check_message_fields,
    check_name,
    check_storable,
    check_text,
    escape_markdown,
)


def _error(call: Any, *args: Any, **kwargs: Any) -> InputError:
    with pytest.raises(InputError) as info:
        call(*args, **kwargs)
    return info.value


def test_input_error_carries_field_key_and_placeholders() -> None:
    err = InputError("tag", "tag_too_long", limit="64")
    assert (err.field, err.key, err.placeholders) == (
        "tag",
        "tag_too_long",
        {"limit": "64"},
    )
    assert str(err) == "tag: tag_too_long {'limit': '64'}"
    # A placeholder may be called "field" too.
    assert InputError("a", "k", field="a").placeholders == {"field": "a"}
    assert isinstance(err, ValueError)


@pytest.mark.parametrize(
    "value",
    [
        "Kitchen",
        "Café au lait",
        "日本語の名前",
        "👨‍👩‍👧 family",  # ZWJ sequences are format characters, not controls
        "right\u200eto left",
        "a'b\"c{d}e",
        "",
    ],
)
def test_single_line_text_accepted(value: str) -> None:
    assert check_text(value, "name") == value


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("line\nbreak", "invalid_character"),
        ("carriage\rreturn", "invalid_character"),
        ("tab\there", "invalid_character"),
        ("nul\x00byte", "invalid_character"),
        ("escape \x1b[31mred", "invalid_character"),
        ("delete\x7f", "invalid_character"),
        ("next line\x85", "invalid_character"),  # C1 NEL
        ("c1\x9f", "invalid_character"),
        ("line\u2028separator", "invalid_character"),
        ("paragraph\u2029separator", "invalid_character"),
        ("lone \ud800 high", "lone_surrogate"),
        ("lone \udfff low", "lone_surrogate"),
        ("\ud83d", "lone_surrogate"),  # half an emoji
    ],
)
def test_single_line_text_refused(value: str, key: str) -> None:
    err = _error(check_text, value, "title")
    assert (err.field, err.key, err.placeholders) == ("title", key, {"field": "title"})


@pytest.mark.parametrize(
    "value",
    ["two\nlines", "windows\r\nlines", "tab\tseparated", "\n\nspaced\n", "plain"],
)
def test_multi_line_text_accepted(value: str) -> None:
    assert check_text(value, "message", multiline=True) == value


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("nul\x00", "invalid_character"),
        ("vertical\x0btab", "invalid_character"),
        ("form\x0cfeed", "invalid_character"),
        ("bell\x07", "invalid_character"),
        ("escape\x1b", "invalid_character"),
        ("delete\x7f", "invalid_character"),
        ("c1\x80", "invalid_character"),
        ("surrogate\udc00", "lone_surrogate"),
    ],
)
def test_multi_line_text_refused(value: str, key: str) -> None:
    assert _error(check_text, value, "message", multiline=True).key == key


def test_check_storable_only_refuses_surrogates() -> None:
    assert check_storable("a\nb\x00", "endpoint") == "a\nb\x00"
    assert _error(check_storable, "x\ud800", "endpoint").key == "lone_surrogate"


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("Kitchen", "Kitchen"),
        ("  Kitchen tablet \n", "Kitchen tablet"),
        ("\u3000Ideographic space\u3000", "Ideographic space"),
        ("x" * MAX_NAME_LENGTH, "x" * MAX_NAME_LENGTH),
        ("Ärztin 👩\u200d⚕\ufe0f", "Ärztin 👩\u200d⚕\ufe0f"),
        ("a b", "a b"),
        ("**bold**", "**bold**"),  # stored as typed; escaped where shown
    ],
)
def test_name_accepted(value: str, name: str) -> None:
    assert check_name(value) == name


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("", "name_blank"),
        ("   ", "name_blank"),
        ("\t\n", "name_blank"),
        ("\u200b", "name_blank"),  # zero-width space: shows as nothing
        ("\u200b\u200d\ufeff", "name_blank"),
        ("x" * (MAX_NAME_LENGTH + 1), "name_too_long"),
        ("x" * 10_000, "name_too_long"),
        ("Kit\x00chen", "invalid_character"),
        ("two\nlines", "invalid_character"),
        ("tab\tinside", "invalid_character"),
        ("\ud800", "lone_surrogate"),
        ("name \udbff", "lone_surrogate"),
    ],
)
def test_name_refused(value: str, key: str) -> None:
    err = _error(check_name, value)
    assert (err.field, err.key) == ("name", key)
    if key == "name_too_long":
        assert err.placeholders == {"limit": str(MAX_NAME_LENGTH)}


def test_name_error_names_the_field() -> None:
    assert _error(check_name, " ", "new_name").field == "new_name"


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("Kitchen", "Kitchen"),
        ("Café 日本 👍", "Café 日本 👍"),
        ("**bold**", r"\*\*bold\*\*"),
        ("_under_", r"\_under\_"),
        ("[link](https://evil.example)", r"\[link\]\(https\:\/\/evil\.example\)"),
        ("![img](x)", r"\!\[img\]\(x\)"),
        ("<img src=x onerror=alert(1)>", r"\<img src\=x onerror\=alert\(1\)\>"),
        ("# Heading", r"\# Heading"),
        ("1. list", r"1\. list"),
        ("- item", r"\- item"),
        ("`code`", r"\`code\`"),
        ("a\\b", r"a\\b"),
        ("&amp;", r"\&amp\;"),
        ("~~strike~~ | table", r"\~\~strike\~\~ \| table"),
    ],
)
def test_escape_markdown(text: str, escaped: str) -> None:
    assert escape_markdown(text) == escaped
    # Every ASCII punctuation character is escaped, and removing the escapes
    # gives the text back.
    assert not re.search(r"(?<!\\)[*_\[\]()<>`#!]", escaped.replace("\\\\", ""))
    assert re.sub(r"\\(.)", r"\1", escaped) == text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tag", "door"),
        ("tag", "x" * 64),
        ("tag", "é" * 32),  # 64 bytes
        ("thread_id", "doorbell"),
        ("thread_id", "t" * 255),
        ("category", "DOORBELL"),
        ("sound", "chime.caf"),
        ("sound", "s" * 255),
    ],
)
def test_limited_field_accepted(field: str, value: str) -> None:
    assert check_limited_field(field, value) == value


@pytest.mark.parametrize(
    ("field", "value", "key", "placeholders"),
    [
        ("tag", "x" * 65, "tag_too_long", {"limit": "64"}),
        ("tag", "é" * 33, "tag_too_long", {"limit": "64"}),  # 66 bytes
        ("tag", "door\nbell", "tag_invalid_character", {}),
        ("tag", "door\r\nX-Injected: 1", "tag_invalid_character", {}),
        ("tag", "\x00", "tag_invalid_character", {}),
        ("tag", "tag\ud800", "lone_surrogate", {"field": "tag"}),
        ("thread_id", "t" * 256, "thread_id_too_long", {"limit": "255"}),
        ("thread_id", "a\tb", "thread_id_invalid_character", {}),
        ("category", "c" * 300, "category_too_long", {"limit": "255"}),
        ("category", "CAT\u2028", "category_invalid_character", {}),
        ("sound", "s" * 256, "sound_too_long", {"limit": "255"}),
        ("sound", "chime\n.caf", "sound_invalid_character", {}),
        ("sound", "\udc80", "lone_surrogate", {"field": "sound"}),
    ],
)
def test_limited_field_refused(
    field: str, value: str, key: str, placeholders: dict[str, str]
) -> None:
    err = _error(check_limited_field, field, value)
    assert (err.field, err.key, err.placeholders) == (field, key, placeholders)


def test_every_limited_field_has_its_own_keys() -> None:
    keys = set()
    for field in LIMITED_FIELDS:
        keys.add(_error(check_limited_field, field, "a\nb").key)
        keys.add(_error(check_limited_field, field, "x" * 300).key)
    assert len(keys) == 2 * len(LIMITED_FIELDS)


def test_message_fields_accepted() -> None:
    check_message_fields(
        {
            "message": "Line one\nLine two\tindented",
            "title": "Title from a template\n",
            "subtitle": "Sub",
            "url": "/lovelace/door",
            "image": "https://example.com/a.jpg",
            "tag": "door",
            "thread_id": "doorbell",
            "category": "DOORBELL",
            "sound": "default",
            "badge": 3,  # not text: left to the schema
            "actions": [
                {"action": "open", "title": "Open", "url": "/x"},
                {"action": "ignore", "title": "Ignore"},
            ],
            "data": {"anything": "\ud800"},  # data has its own check
        }
    )
    check_message_fields({})
    # Lengths are each push service's: Web Push takes a tag of any length.
    check_message_fields({"tag": "t" * 300, "thread_id": "x" * 300})


@pytest.mark.parametrize(
    ("fields", "field", "key"),
    [
        ({"message": "nul\x00"}, "message", "invalid_character"),
        ({"message": "surrogate \ud800"}, "message", "lone_surrogate"),
        ({"title": "\x1b[2J"}, "title", "invalid_character"),
        ({"subtitle": "\udfff"}, "subtitle", "lone_surrogate"),
        ({"url": "/path\nX: y"}, "url", "invalid_character"),
        ({"image": "https://e.com/a b\r"}, "image", "invalid_character"),
        ({"tag": "a\nb"}, "tag", "tag_invalid_character"),
        ({"thread_id": "x\ty"}, "thread_id", "thread_id_invalid_character"),
        ({"category": "c\rd"}, "category", "category_invalid_character"),
        ({"sound": "s\n"}, "sound", "sound_invalid_character"),
        (
            {"actions": [{"action": "a\nb", "title": "t"}]},
            "actions",
            "invalid_character",
        ),
        (
            {"actions": [{"action": "a", "title": "\ud800"}]},
            "actions",
            "lone_surrogate",
        ),
        (
            {"actions": [{"action": "a", "title": "t", "url": "/x\r\n"}]},
            "actions",
            "invalid_character",
        ),
    ],
)
def test_message_fields_refused(fields: dict[str, Any], field: str, key: str) -> None:
    err = _error(check_message_fields, fields)
    assert (err.field, err.key) == (field, key)
