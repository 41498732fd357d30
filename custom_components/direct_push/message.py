"""Build push payloads from a message. Plain Python: no Home Assistant here."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from enum import StrEnum
import hashlib
import json
from typing import Any, Final
import unicodedata

from .validation import LIMITED_FIELDS

APNS_MAX_PAYLOAD: Final = 4096
# Custom data keys that would overwrite Apple's own part of the payload.
APNS_RESERVED_DATA_KEYS: Final = frozenset({"aps"})
# Keys a push with buttons carries beside its data on APNs (see _apns_dict).
APNS_ACTION_KEYS: Final = frozenset({"id", "actions"})
MAX_ACTIONS: Final = 4
# The category an app registers for Direct Push's buttons, unless a push names its own.
ACTIONS_CATEGORY: Final = "direct_push_actions"
_ACTION_FLAGS: Final = ("destructive", "authentication_required", "text_input")


def action_buttons(raw: Iterable[Mapping[str, Any]]) -> tuple[dict[str, Any], ...]:
    """Return buttons as apps get them.

    Each has "id" (and "action", its older name), the title, the url if any,
    and the flags that are set.
    """
    buttons = []
    for button in raw:
        key = button.get("id", button.get("action"))
        shaped: dict[str, Any] = {"id": key, "action": key, "title": button["title"]}
        if url := button.get("url"):
            shaped["url"] = url
        shaped |= {flag: True for flag in _ACTION_FLAGS if button.get(flag)}
        buttons.append(shaped)
    return tuple(buttons)


# aes128gcm adds 103 bytes (header, padding delimiter, tag): a 3993-byte
# plaintext is the most that keeps the encrypted body within 4096.
WEBPUSH_MAX_PLAINTEXT: Final = 3993
WEBPUSH_MAX_TOPIC: Final = 32
DEFAULT_TTL: Final = 86400
ELLIPSIS: Final = "…"
_ZWJ: Final = "\u200d"


class InterruptionLevel(StrEnum):
    """How strongly a notification may interrupt (Apple's names)."""

    PASSIVE = "passive"
    ACTIVE = "active"
    TIME_SENSITIVE = "time-sensitive"
    CRITICAL = "critical"


class PushKind(StrEnum):
    """A visible alert, or a silent background wake-up."""

    ALERT = "alert"
    BACKGROUND = "background"


class MessageError(ValueError):
    """A message that a push service would refuse.

    `key` is the translation key; `placeholders` fill in its message.
    """

    def __init__(self, key: str, **placeholders: str) -> None:
        """Keep the translation key and its placeholders."""
        super().__init__(key, placeholders)
        self.key = key
        self.placeholders = placeholders


class PayloadTooLargeError(MessageError):
    """Raised when a payload cannot fit even with an empty body."""

    def __init__(self, size: int, limit: int) -> None:
        """Keep the sizes for the error message."""
        super().__init__("payload_too_large", size=str(size), limit=str(limit))
        self.size = size
        self.limit = limit


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One notification, independent of the backend that delivers it."""

    message: str
    title: str | None = None
    subtitle: str | None = None
    sound: str | None = None
    badge: int | None = None
    interruption_level: InterruptionLevel | None = None
    thread_id: str | None = None
    tag: str | None = None
    url: str | None = None
    image: str | None = None
    category: str | None = None
    ttl: int = DEFAULT_TTL
    priority: int | None = None
    push_type: PushKind = PushKind.ALERT
    data: dict[str, Any] = field(default_factory=dict)
    actions: tuple[dict[str, Any], ...] = ()
    """Buttons (action_buttons): each {"id", "action", "title"}, optional "url" and flags."""
    mutable_content: bool = False
    """APNs: let the app's notification service extension rewrite the alert."""
    message_id: str | None = None
    """One delivery's id, the same on every resend (APNs apns-id), so an app can drop a duplicate."""

    @property
    def is_background(self) -> bool:
        """Return True for a content-less wake-up push."""
        return self.push_type is PushKind.BACKGROUND

    @property
    def apns_priority(self) -> int:
        """Return the apns-priority: background pushes must use 5."""
        if self.is_background:
            return 5
        return self.priority if self.priority is not None else 10


def payload_json(payload: dict[str, Any]) -> bytes:
    """Serialise a payload as the push services receive it: strict JSON, UTF-8.

    The actions refuse NaN and Infinity in `data` (json_input); refusing
    them here too means no push ever carries what a strict receiver refuses.
    """
    try:
        text = json.dumps(payload, ensure_ascii=False, allow_nan=False)
    except ValueError as err:
        raise MessageError("data_not_json", error=str(err)) from err
    try:
        return text.encode()
    except UnicodeEncodeError as err:  # a lone surrogate: no UTF-8 for it
        raise MessageError("lone_surrogate", field="payload") from err


def message_to_dict(message: Message) -> dict[str, Any]:
    """Return the message as JSON-ready data, to keep it across restarts."""
    return asdict(message)


def message_from_dict(data: dict[str, Any]) -> Message:
    """Rebuild a message that message_to_dict stored; unknown keys are left out."""
    known = {item.name for item in fields(Message)} & data.keys()
    values = {name: data[name] for name in known}
    if level := values.get("interruption_level"):
        values["interruption_level"] = InterruptionLevel(level)
    values["push_type"] = PushKind(values.get("push_type", PushKind.ALERT))
    values["actions"] = tuple(values.get("actions") or ())
    return Message(**values)


def json_size(payload: dict[str, Any]) -> int:
    """Return the payload's size as the APNs client serialises it."""
    return len(payload_json(payload))


def _extends(char: str) -> bool:
    """Return True for a code point that belongs to the character before it."""
    return (
        unicodedata.category(char) in {"Mn", "Mc", "Me"}  # accents, keycaps, VS16
        or char == _ZWJ
        or "\U0001f3fb" <= char <= "\U0001f3ff"  # skin tones
        or "\U000e0020" <= char <= "\U000e007f"  # flag tags
    )


def _regional(char: str) -> bool:
    return "\U0001f1e6" <= char <= "\U0001f1ff"


def safe_cut(text: str, index: int) -> int:
    """Move a cut at index back so it never splits what a reader sees as one character.

    Python cuts between code points, which keeps UTF-8 valid; this also keeps an
    accent with its letter, an emoji with its modifiers and ZWJ partners, and the
    two halves of a flag together.
    """
    while 0 < index < len(text):
        if _extends(text[index]) or text[index - 1] == _ZWJ:
            index -= 1
        elif _regional(text[index]) and _regional(text[index - 1]):
            run = 1
            while index - run - 1 >= 0 and _regional(text[index - run - 1]):
                run += 1
            if run % 2 == 0:
                break
            index -= 1
        else:
            break
    return index


def fit_body(
    message: Message, build: Callable[[Message], dict[str, Any]], limit: int
) -> tuple[dict[str, Any], bool]:
    """Build a payload, cutting the body with an ellipsis until it fits.

    Returns the payload and whether the body was cut. The cut is at a character
    boundary (see safe_cut), so the JSON stays valid and no emoji is broken.
    """
    payload = build(message)
    if json_size(payload) <= limit:
        return payload, False
    body = message.message
    empty = build(replace(message, message=ELLIPSIS))
    if (size := json_size(empty)) > limit:
        raise PayloadTooLargeError(size, limit)
    # Binary search for the longest prefix that fits.
    low, high = 0, len(body)
    best = empty
    while low < high:
        mid = (low + high + 1) // 2
        cut = body[: safe_cut(body, mid)].rstrip()
        candidate = build(replace(message, message=cut + ELLIPSIS))
        if json_size(candidate) <= limit:
            best, low = candidate, mid
        else:
            high = mid - 1
    return best, True


def _apns_dict(message: Message) -> dict[str, Any]:
    aps: dict[str, Any]
    if message.is_background:
        aps = {"content-available": 1}
    else:
        alert: dict[str, str] = {"body": message.message}
        if message.title:
            alert["title"] = message.title
        if message.subtitle:
            alert["subtitle"] = message.subtitle
        aps = {"alert": alert}
        level = message.interruption_level
        if level is InterruptionLevel.CRITICAL:
            aps["sound"] = {
                "critical": 1,
                "name": message.sound or "default",
                "volume": 1.0,
            }
        elif message.sound:
            aps["sound"] = message.sound
        if level is not None:
            aps["interruption-level"] = level.value
        if message.badge is not None:
            aps["badge"] = message.badge
        if message.category:
            aps["category"] = message.category
        if message.image or message.mutable_content:
            aps["mutable-content"] = 1
    if message.thread_id:
        aps["thread-id"] = message.thread_id
    payload: dict[str, Any] = {**message.data, "aps": aps}
    if message.actions and not message.is_background:
        # Apple shows the buttons of a category the app registered.
        aps.setdefault("category", ACTIONS_CATEGORY)
        payload["actions"] = list(message.actions)
        payload["id"] = message.message_id
    if message.url:
        payload["url"] = message.url
    if message.image:
        payload["image"] = message.image
    return payload


def build_apns_payload(message: Message) -> tuple[dict[str, Any], bool]:
    """Return the APNs JSON payload (at most 4096 bytes) and whether it was cut."""
    return fit_body(message, _apns_dict, APNS_MAX_PAYLOAD)


def check_apns_message(message: Message) -> None:
    """Raise MessageError for what APNs would refuse, whatever the device."""
    for name, limit in LIMITED_FIELDS.items():
        value: str | None = getattr(message, name)
        if value and len(value.encode()) > limit:
            raise MessageError(f"{name}_too_long", limit=str(limit), field=name)
    reserved_keys = APNS_RESERVED_DATA_KEYS
    if message.actions:
        reserved_keys |= APNS_ACTION_KEYS
    if reserved := reserved_keys & message.data.keys():
        raise MessageError("reserved_data_key", keys=", ".join(sorted(reserved)))
    build_apns_payload(message)


def _webpush_dict(message: Message) -> dict[str, Any]:
    """The JSON an app receives; README's "Payload layout" documents it."""
    payload: dict[str, Any] = {}
    if not message.is_background:
        payload["message"] = message.message
        for key in ("title", "subtitle", "tag", "url", "image"):
            if value := getattr(message, key):
                payload[key] = value
        if message.interruption_level is not None:
            payload["interruption_level"] = message.interruption_level.value
        if message.actions:
            payload["actions"] = list(message.actions)
            # The app answers a button with the message's id.
            payload["id"] = message.message_id
    else:
        payload["background"] = True
    if message.data:
        payload["data"] = message.data
    return payload


def build_webpush_payload(message: Message) -> tuple[dict[str, Any], bool]:
    """Return the Web Push JSON (at most 3993 bytes) and whether it was cut."""
    return fit_body(message, _webpush_dict, WEBPUSH_MAX_PLAINTEXT)


def check_webpush_message(message: Message) -> None:
    """Raise MessageError for what a Web Push service would refuse.

    Any tag will do: long ones are hashed into the Topic header.
    """
    build_webpush_payload(message)


def webpush_urgency(message: Message) -> str:
    """Map interruption level, then priority, to RFC 8030's Urgency.

    A background push is always low, like APNs priority 5, even when the hub's
    default interruption level is time-sensitive.
    """
    if message.is_background:
        return "low"
    level = message.interruption_level
    if level in (InterruptionLevel.CRITICAL, InterruptionLevel.TIME_SENSITIVE):
        return "high"
    if level is InterruptionLevel.PASSIVE:
        return "low"
    if message.priority == 5:
        return "low"
    return "normal"


def webpush_topic(tag: str) -> str:
    """Return an RFC 8030 Topic for a tag: base64url, at most 32 characters.

    Longer tags are hashed, so the same tag always gives the same topic.
    """
    topic = base64.urlsafe_b64encode(tag.encode()).decode().rstrip("=")
    if len(topic) > WEBPUSH_MAX_TOPIC:
        digest = hashlib.sha256(tag.encode()).digest()
        topic = base64.urlsafe_b64encode(digest).decode()[:WEBPUSH_MAX_TOPIC]
    return topic
