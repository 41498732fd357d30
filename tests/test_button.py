"""The hub's pairing button: a code, shown to the admin who pressed it."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient
from homeassistant.auth.models import User
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import Unauthorized
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_get_persistent_notifications,
)

from custom_components.direct_push.button import PAIRING_NOTIFICATION

from .test_device_api import apple, client, log_secrets, register

__all__ = ["client", "log_secrets"]  # fixtures shared with test_device_api

pytestmark = pytest.mark.usefixtures("secrets_stay_out_of_logs")
BUTTON = "button.direct_push_create_pairing_code"


async def press(hass: HomeAssistant, context: Context | None = None) -> None:
    """Press the button as a person in the UI does."""
    await hass.services.async_call(
        "button", "press", {"entity_id": BUTTON}, blocking=True, context=context
    )


async def test_the_button_shows_a_code_that_pairs(
    hass: HomeAssistant,
    client: TestClient[Any, Any],
    loaded_entry: MockConfigEntry,
    hass_admin_user: User,
    log_secrets: list[str],
) -> None:
    """Pressed by an admin: a notification with a working code and its link."""
    await press(hass, Context(user_id=hass_admin_user.id))
    notification = async_get_persistent_notifications(hass)[PAIRING_NOTIFICATION]
    code = re.search(r"\*\*(\w+)\*\*", notification["message"])
    assert code is not None
    assert f"directpush://pair?code={code[1]}" in notification["message"]
    answer = await register(client, apple(code[1]), log_secrets)
    assert answer["name"] == "Carol"
    await hass.async_block_till_done()


async def test_only_an_admin_may_press_it(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, hass_owner_user: User
) -> None:
    """A user who may use every entity, but is no admin, gets no code."""
    user = await hass.auth.async_create_user("Kid", group_ids=["system-users"])
    assert not user.is_admin
    with pytest.raises(Unauthorized):
        await press(hass, Context(user_id=user.id))
    assert PAIRING_NOTIFICATION not in async_get_persistent_notifications(hass)
