"""Payload building and fitting (message.py): pure logic, no network."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from custom_components.direct_push.message import (
    APNS_MAX_PAYLOAD,
    ELLIPSIS,
    InterruptionLevel,
    Message,
    PayloadTooLargeError,
    PushKind,
    build_apns_payload,
    fit_body,
    json_size,
    safe_cut,
    webpush_topic,
    webpush_urgency,
)

FAMILY = "👨\u200d👩\u200d👧\u200d👦"
FLAG = "🇫🇷"
THUMB = "👍🏽"
ACCENTED = "e\u0301"


def _body(payload: dict[str, Any]) -> str:
    body: str = payload["aps"]["alert"]["body"]
    return body


def _wire(payload: dict[str, Any]) -> bytes:
    """Serialise as aioapns does."""
    return json.dumps(payload, ensure_ascii=False).encode()


def test_alert_fields() -> None:
    payload, truncated = build_apns_payload(
        Message(
            message="Someone is at the door",
            title="Doorbell",
            subtitle="Front",
            sound="chime.caf",
            badge=0,
            interruption_level=InterruptionLevel.TIME_SENSITIVE,
            thread_id="door",
            category="DOORBELL",
            url="/lovelace/cameras",
            data={"camera": "front", "count": 2},
        )
    )
    assert not truncated
    assert payload == {
        "camera": "front",
        "count": 2,
        "url": "/lovelace/cameras",
        "aps": {
            "alert": {
                "body": "Someone is at the door",
                "title": "Doorbell",
                "subtitle": "Front",
            },
            "sound": "chime.caf",
            "interruption-level": "time-sensitive",
            # A badge of 0 clears the badge, so it must be sent.
            "badge": 0,
            "category": "DOORBELL",
            "thread-id": "door",
        },
    }


def test_minimal_alert_has_only_a_body() -> None:
    payload, _ = build_apns_payload(Message(message="Hi"))
    assert payload == {"aps": {"alert": {"body": "Hi"}}}


@pytest.mark.parametrize(
    ("sound", "name"), [(None, "default"), ("siren.caf", "siren.caf")]
)
def test_critical_sound(sound: str | None, name: str) -> None:
    payload, _ = build_apns_payload(
        Message(
            message="Water leak",
            sound=sound,
            interruption_level=InterruptionLevel.CRITICAL,
        )
    )
    assert payload["aps"]["sound"] == {"critical": 1, "name": name, "volume": 1.0}
    assert payload["aps"]["interruption-level"] == "critical"


def test_image_needs_the_service_extension() -> None:
    payload, _ = build_apns_payload(
        Message(message="Motion", image="https://example.com/snapshot.jpg")
    )
    assert payload["image"] == "https://example.com/snapshot.jpg"
    assert payload["aps"]["mutable-content"] == 1


def test_background_push() -> None:
    message = Message(
        message="ignored",
        title="ignored",
        sound="ignored",
        badge=3,
        thread_id="t",
        priority=10,
        push_type=PushKind.BACKGROUND,
        data={"refresh": True},
    )
    payload, _ = build_apns_payload(message)
    # Apple refuses a background push with an alert, sound or badge.
    assert payload == {
        "refresh": True,
        "aps": {"content-available": 1, "thread-id": "t"},
    }
    assert message.apns_priority == 5


@pytest.mark.parametrize(("priority", "expected"), [(None, 10), (10, 10), (5, 5)])
def test_alert_priority(priority: int | None, expected: int) -> None:
    assert Message(message="x", priority=priority).apns_priority == expected


def test_long_body_is_cut_to_the_limit() -> None:
    body = "x" * 10_000
    payload, truncated = build_apns_payload(Message(message=body, title="T"))
    assert truncated
    assert len(_wire(payload)) <= APNS_MAX_PAYLOAD
    assert _body(payload).endswith(ELLIPSIS)
    kept = _body(payload).removesuffix(ELLIPSIS)
    assert body.startswith(kept)
    # The longest body that fits: one more character would not.
    longer = json.loads(_wire(payload))
    longer["aps"]["alert"]["body"] = body[: len(kept) + 1] + ELLIPSIS
    assert json_size(longer) > APNS_MAX_PAYLOAD


def test_escaped_characters_count_as_sent() -> None:
    # Quotes and newlines take two bytes each once JSON-escaped.
    payload, truncated = build_apns_payload(Message(message='"\n' * 3000))
    assert truncated
    assert len(_wire(payload)) <= APNS_MAX_PAYLOAD
    assert len(_wire(payload)) > APNS_MAX_PAYLOAD - 8


@pytest.mark.parametrize("unit", ["漢", "€", "😀", FAMILY, FLAG, THUMB, ACCENTED])
def test_cut_keeps_whole_characters(unit: str) -> None:
    body = unit * (8000 // len(unit.encode()))
    payload, truncated = build_apns_payload(Message(message=body))
    assert truncated
    raw = _wire(payload)
    assert len(raw) <= APNS_MAX_PAYLOAD
    kept = _body(json.loads(raw.decode())).removesuffix(ELLIPSIS)
    # Whole units only: no half CJK character, no family without its children,
    # no half flag, no thumb without its skin tone, no e without its accent.
    assert kept == unit * (len(kept) // len(unit))
    assert len(kept) > 0


@pytest.mark.parametrize(
    ("text", "index", "expected"),
    [
        ("abc", 2, 2),
        ("abc", 0, 0),
        ("abc", 3, 3),
        (f"a{ACCENTED}", 2, 1),  # between e and its accent
        (f"a{THUMB}", 2, 1),  # between the thumb and its skin tone
        (f"a{FAMILY}", 3, 1),  # right after a zero-width joiner
        (f"a{FAMILY}", 4, 1),  # right before one
        (f"a{FLAG}{FLAG}", 2, 1),  # inside the first flag
        (f"a{FLAG}{FLAG}", 3, 3),  # between the flags
        (f"a{FLAG}{FLAG}", 4, 3),  # inside the second flag
    ],
)
def test_safe_cut(text: str, index: int, expected: int) -> None:
    assert safe_cut(text, index) == expected


def test_payload_that_fits_is_untouched() -> None:
    message = Message(message="y" * 3000)
    payload, truncated = build_apns_payload(message)
    assert not truncated
    assert _body(payload) == message.message


def test_data_too_large_for_any_body() -> None:
    message = Message(message="Hi", data={"blob": "z" * 5000})
    with pytest.raises(PayloadTooLargeError) as err:
        build_apns_payload(message)
    assert err.value.limit == APNS_MAX_PAYLOAD
    assert err.value.size > APNS_MAX_PAYLOAD


def test_background_data_too_large() -> None:
    # A background push has no body to cut.
    with pytest.raises(PayloadTooLargeError):
        build_apns_payload(
            Message(
                message="", push_type=PushKind.BACKGROUND, data={"blob": "z" * 5000}
            )
        )


def test_fit_body_with_any_builder() -> None:
    def build(message: Message) -> dict[str, Any]:
        return {"text": message.message}

    # {"text": "hel…"} is 18 bytes: the ellipsis takes 3 in UTF-8.
    assert fit_body(Message(message="hello world"), build, 18) == (
        {"text": "hel…"},
        True,
    )
    with pytest.raises(PayloadTooLargeError):
        fit_body(Message(message="hello world"), build, 14)


# Web Push headers.

_TOPIC_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")


@pytest.mark.parametrize(
    ("tag", "topic"),
    [
        ("door", "ZG9vcg"),
        (
            "x" * 24,
            base64.urlsafe_b64encode(b"x" * 24).decode().rstrip("="),
        ),  # 32 characters: still as it is
    ],
)
def test_webpush_topic_short(tag: str, topic: str) -> None:
    assert webpush_topic(tag) == topic


@pytest.mark.parametrize("tag", ["x" * 25, "camera.front_door_" * 3, "Tür 🚪" * 10])
def test_webpush_topic_long(tag: str) -> None:
    topic = webpush_topic(tag)
    assert _TOPIC_RE.fullmatch(topic)
    assert topic == webpush_topic(tag)
    assert topic != webpush_topic(tag + "!")


@pytest.mark.parametrize(
    ("fields", "urgency"),
    [
        ({}, "normal"),
        ({"interruption_level": InterruptionLevel.CRITICAL}, "high"),
        ({"interruption_level": InterruptionLevel.TIME_SENSITIVE}, "high"),
        ({"interruption_level": InterruptionLevel.ACTIVE}, "normal"),
        ({"interruption_level": InterruptionLevel.PASSIVE}, "low"),
        ({"priority": 5}, "low"),
        ({"priority": 10}, "normal"),
        ({"interruption_level": InterruptionLevel.CRITICAL, "priority": 5}, "high"),
        ({"push_type": PushKind.BACKGROUND}, "low"),
        (
            {
                "push_type": PushKind.BACKGROUND,
                "interruption_level": InterruptionLevel.TIME_SENSITIVE,
            },
            "low",
        ),
    ],
)
def test_webpush_urgency(fields: dict[str, Any], urgency: str) -> None:
    assert webpush_urgency(Message(message="Hi", **fields)) == urgency
