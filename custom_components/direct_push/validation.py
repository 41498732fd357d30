"""Rules for text from outside: one error type, names, header-bound fields.

Plain Python: no Home Assistant here. Every entry point (flows, imports,
actions) checks text with these functions before it is stored or sent, and
maps an InputError to a form error or a ServiceValidationError in one place.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
import re
from typing import Any, Final
import unicodedata

MAX_NAME_LENGTH: Final = 64
"""Characters in a device name.

A name is a notification title (title_from_device_name), a target that
automations type, and the slug of the notify entity's id: 64 characters fit
all three, and a longer "name" is nearly always something pasted by mistake.
"""

# A lone surrogate cannot be encoded as UTF-8: one in the config entries makes
# every later save of HA's storage fail, for all integrations.
_SURROGATE_RE: Final = re.compile("[\ud800-\udfff]")
# C0, DEL and C1 (Unicode category Cc), and the Unicode line and paragraph
# separators, which break a line as surely as LF does.
_SINGLE_LINE_BAD_RE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# A message body may break lines and indent; JSON carries \t, \n, \r safely.
_MULTI_LINE_BAD_RE: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# CommonMark lets a backslash escape any ASCII punctuation, which is every
# character that can start Markdown or HTML markup.
_MARKDOWN_RE: Final = re.compile(r"([!-/:-@\[-`{-~])")


class InputError(ValueError):
    """Input refused before anything is stored or sent.

    `key` is the translation key (a form error or an exception message),
    `field` the form or action field it belongs to, and `placeholders` fill
    the translated message. None of them ever holds a secret.
    """

    def __init__(self, field: str, key: str, /, **placeholders: str) -> None:
        """Keep the field, translation key and placeholders."""
        super().__init__(key)
        self.field = field
        self.key = key
        self.placeholders: dict[str, str] = placeholders

    def __str__(self) -> str:
        """Return field, key and placeholders, for logs and test failures."""
        return f"{self.field}: {self.key} {self.placeholders}"


# Fields that end up in an HTTP header or a length-limited APNs field, with
# Apple's limit in UTF-8 bytes, as the header or payload counts them. Only
# Apple limits them: Web Push hashes a long tag into its Topic header and
# sends none of the others, so a message checks their length only when it
# goes to Apple devices (message.check_apns_message).
LIMITED_FIELDS: Final[Mapping[str, int]] = {
    # apns-collapse-id: Apple allows 64 bytes.
    "tag": 64,
    # aps.thread-id, aps.category and aps.sound: Apple documents no limit.
    # 255 bytes is NAME_MAX, the longest sound file name a bundle can hold,
    # and more than any identifier an app uses; it keeps one field from
    # crowding the body out of a 4 KB payload.
    "thread_id": 255,
    "category": 255,
    "sound": 255,
}
# The action's other text fields: the body and titles may break lines, the
# URLs and button fields may not.
MULTI_LINE_FIELDS: Final = ("message", "title", "subtitle")
SINGLE_LINE_FIELDS: Final = ("url", "image")
ACTION_BUTTON_FIELDS: Final = ("id", "action", "title", "url")


def check_storable(value: str, field: str) -> str:
    """Refuse text with a lone surrogate, which HA's storage cannot save; return it."""
    if _SURROGATE_RE.search(value):
        raise InputError(field, "lone_surrogate", field=field)
    return value


def check_text(value: str, field: str, *, multiline: bool = False) -> str:
    """Refuse text that HA cannot store or a header cannot carry; return it.

    Single-line text (names, identifiers, URLs) takes no control character at
    all; multi-line text (message bodies) may hold tabs and line breaks.
    """
    check_storable(value, field)
    bad = _MULTI_LINE_BAD_RE if multiline else _SINGLE_LINE_BAD_RE
    if bad.search(value):
        raise InputError(field, "invalid_character", field=field)
    return value


def check_name(value: str, field: str = "name") -> str:
    """Check a device name; return it without surrounding whitespace.

    Blank names are refused, and so are names of only invisible characters
    (such as a zero-width space): both would show as nothing in a list.
    """
    name = value.strip()
    check_storable(name, field)
    if len(name) > MAX_NAME_LENGTH:
        raise InputError(field, "name_too_long", limit=str(MAX_NAME_LENGTH))
    # Letters, marks, numbers, punctuation and symbols are visible; controls,
    # format characters and separators (categories C and Z) are not.
    if not any(unicodedata.category(char)[0] not in "CZ" for char in name):
        raise InputError(field, "name_blank")
    return check_text(name, field)


def escape_markdown(text: str) -> str:
    """Escape text for a flow description, so a name cannot change its layout."""
    return _MARKDOWN_RE.sub(r"\\\1", text)


def check_header_field(field: str, value: str) -> str:
    """Check the characters of a header-bound field (see LIMITED_FIELDS); return it.

    Each field has its own key, so the error names what to fix: a tag with a
    line break used to make APNs close the shared connection, reported as a
    connection error.
    """
    check_storable(value, field)
    if _SINGLE_LINE_BAD_RE.search(value):
        raise InputError(field, f"{field}_invalid_character")
    return value


def check_limited_field(field: str, value: str) -> str:
    """Check a header-bound field's characters and Apple's limit for it; return it."""
    check_header_field(field, value)
    if len(value.encode()) > (limit := LIMITED_FIELDS[field]):
        raise InputError(field, f"{field}_too_long", limit=str(limit))
    return value


def check_message_fields(fields: Mapping[str, Any]) -> None:
    """Check every text field of a send action (not `data`: see json_input).

    The header-bound fields' lengths are each push service's to check.
    """
    for field in MULTI_LINE_FIELDS:
        if isinstance(value := fields.get(field), str):
            check_text(value, field, multiline=True)
    for field in SINGLE_LINE_FIELDS:
        if isinstance(value := fields.get(field), str):
            check_text(value, field)
    for field in LIMITED_FIELDS:
        if isinstance(value := fields.get(field), str):
            check_header_field(field, value)
    for button in fields.get("actions") or ():
        for key in ACTION_BUTTON_FIELDS:
            if isinstance(value := button.get(key), str):
                check_text(value, "actions")


def check_fields(values: Mapping[str, Any], multiline: Collection[str] = ()) -> None:
    """Check every text value of a form: the first bad one raises, naming its field.

    Fields in `multiline` (pasted keys, certificates and JSON) may break lines.
    """
    for field, value in values.items():
        if isinstance(value, str):
            check_text(value, field, multiline=field in multiline)
