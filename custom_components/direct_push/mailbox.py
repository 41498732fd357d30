"""Private mode: the message stays in Home Assistant; the push only wakes the app.

A device in private mode gets a background push that carries nothing but
{"type": "wake", "id": <message id>}: no title, text, image or data passes
through Apple, Google or the distributor. The app then fetches the message
from GET /api/direct_push/messages/{id} (device_api). Messages are kept on
disk until their time to live ends, and only the device they went to can
read them.
"""

from __future__ import annotations

from datetime import UTC, datetime
import time
from typing import Any, Final
import uuid

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.storage import Store

from .const import DOMAIN
from .message import Message, PushKind, build_webpush_payload

STORAGE_VERSION: Final = 1
SAVE_DELAY: Final = 1.0


# What an alert-style wake-up push shows if the app's extension cannot fetch the message.
WAKE_ALERT: Final = "New notification"


def wake_message(message_id: str, ttl: int, *, alert: Message | None = None) -> Message:
    """Return the push that tells a private device a message waits for it.

    Background by default. With `alert` (the kept message), an Apple app with a
    notification service extension gets a neutral alert with mutable-content
    instead, which its extension replaces with the fetched message; iOS gives
    background pushes no guaranteed run time, alerts with an extension do. Only
    the sound and the interruption level pass to Apple, never text.
    """
    wake = {"type": "wake", "id": message_id}
    if alert is None:
        return Message(
            message="",
            push_type=PushKind.BACKGROUND,
            ttl=ttl,
            data=wake,
            message_id=message_id,
        )
    return Message(
        message=WAKE_ALERT,
        sound=alert.sound,
        interruption_level=alert.interruption_level,
        ttl=ttl,
        data=wake,
        mutable_content=True,
        message_id=message_id,
    )


class Mailbox:
    """One hub's messages for its private devices, by device, oldest first."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Use async_load before keeping or reading messages."""
        self._store: Store[dict[str, Any]] = Store(
            hass,
            STORAGE_VERSION,
            f"{DOMAIN}.{entry_id}.mailbox",
            private=True,
            atomic_writes=True,
        )
        # device id -> message id -> {"expires", "message"}; dicts keep order.
        self._boxes: dict[str, dict[str, dict[str, Any]]] = {}

    async def async_load(self) -> None:
        """Read the messages a previous run kept."""
        data = await self._store.async_load() or {}
        self._boxes = data.get("boxes", {})
        self._forget_expired(time.time())

    @callback
    def keep(
        self, device_id: str, message: Message, *, service_extension: bool = False
    ) -> Message:
        """Keep a message for a device; return the wake-up push to send instead."""
        now = time.time()
        message_id = str(uuid.uuid4())
        payload, _ = build_webpush_payload(message)
        payload |= {
            "id": message_id,
            "sent_at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
        }
        self._boxes.setdefault(device_id, {})[message_id] = {
            "expires": now + message.ttl,
            "message": payload,
        }
        self._store.async_delay_save(self._data, SAVE_DELAY)
        return wake_message(
            message_id, message.ttl, alert=message if service_extension else None
        )

    @callback
    def read(self, device_id: str, message_id: str) -> dict[str, Any] | None:
        """Return one of a device's messages, unless it expired or is another's."""
        kept = self._boxes.get(device_id, {}).get(message_id)
        if kept is None or kept["expires"] <= time.time():
            return None
        message: dict[str, Any] = kept["message"]
        return message

    @callback
    def waiting(self, device_id: str) -> list[dict[str, Any]]:
        """Return a device's messages whose time to live has not ended, oldest first."""
        now = time.time()
        return [
            kept["message"]
            for kept in self._boxes.get(device_id, {}).values()
            if kept["expires"] > now
        ]

    async def async_save(self) -> None:
        """Write the messages now (the hub unloads)."""
        await self._store.async_save(self._data())

    def _data(self) -> dict[str, Any]:
        self._forget_expired(time.time())
        return {"boxes": self._boxes}

    def _forget_expired(self, now: float) -> None:
        for device_id, box in list(self._boxes.items()):
            for message_id in [
                key for key, kept in box.items() if kept["expires"] <= now
            ]:
                del box[message_id]
            if not box:
                del self._boxes[device_id]
