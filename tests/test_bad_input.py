"""Every bad input through every entry point: a translated error, and nothing changed.

One table per entry point: the actions (direct_push.send, notify.send_message,
the legacy notify.direct_push), the config flow's steps, the options, the
device forms and the repair forms. Every case is checked the same way
(refused_cleanly): the error is translated, and its message formats with the
placeholders given; nothing was stored, sent or raised as an issue; Home
Assistant's config entries still save; nothing was logged as an error. A new
entry point joins by adding its table and a runner.

The imports (folder, upload, YAML) are tested in test_import_flow and
test_importer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
import copy
from dataclasses import dataclass, field
import json
import logging
from pathlib import Path
import re
from typing import Any, Final

from homeassistant.components.http import ApiConfig
from homeassistant.components.repairs import repairs_flow_manager
from homeassistant.config_entries import SOURCE_USER, ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, flush_store

from custom_components.direct_push import async_import_yaml
from custom_components.direct_push.apns import SUBENTRY_APNS
from custom_components.direct_push.backend import Outcome
from custom_components.direct_push.const import (
    CONF_ADMIN,
    CONF_AUTH,
    CONF_CERTIFICATE,
    CONF_ENDPOINT,
    CONF_ENVIRONMENT,
    CONF_INTERRUPTION_LEVEL,
    CONF_KEY,
    CONF_KEY_ID,
    CONF_NAME,
    CONF_P256DH,
    CONF_SOUND,
    CONF_SUBSCRIPTION,
    CONF_TEAM_ID,
    CONF_TITLE_FROM_DEVICE,
    CONF_TOKEN,
    CONF_TOPIC,
    DOMAIN,
    ENV_PRODUCTION,
    ENV_SANDBOX,
)
from custom_components.direct_push.issues import async_create_inactive_issue
from custom_components.direct_push.json_input import MAX_DEPTH, MAX_ITEMS
from custom_components.direct_push.message import Message
from custom_components.direct_push.validation import MAX_NAME_LENGTH, escape_markdown
from custom_components.direct_push.webpush import SUBENTRY_WEBPUSH

from .apns_server import ApnsServer, ApnsTestCredentials
from .conftest import AUTH, BOB_TOKEN, CAROL_TOKEN, P256DH, subentry_id
from .webpush_server import WebPushServer

STRINGS: Final[dict[str, Any]] = json.loads(
    (
        Path(__file__).parent.parent
        / "custom_components"
        / DOMAIN
        / "translations"
        / "en.json"
    ).read_text(encoding="utf-8")
)
# Home Assistant's own server in these tests: its LAN address and port.
HA_ADDRESS: Final = "192.168.1.10"
HA_PORT: Final = 8123
PUSH_ENDPOINT: Final = "https://push.example.com/up/finn"
NAN: Final = float("nan")
INF: Final = float("inf")


@pytest.fixture
def devices(mixed_devices: list[ConfigSubentryData]) -> list[ConfigSubentryData]:
    """Alice (Apple, admin), Bob (Apple), Dana (Web Push, admin), Erin (Web Push)."""
    return mixed_devices


# Building inputs.


@dataclass(frozen=True)
class Nested:
    """Data nested this deep, built when the case runs (never in a test id)."""

    depth: int


def built(value: Any, levels: int = 2) -> Any:
    """Return a case's input with each Nested built (in its top two levels)."""
    if isinstance(value, Nested):
        deep: Any = "bottom"
        for _ in range(value.depth):
            deep = {"a": deep}
        return deep
    if isinstance(value, dict) and levels:
        return {key: built(item, levels - 1) for key, item in value.items()}
    return value


def cyclic() -> dict[str, Any]:
    """A mapping that holds itself, as a script can build."""
    data: dict[str, Any] = {}
    data["self"] = data
    return data


def sub_json(endpoint: str = PUSH_ENDPOINT, **keys: Any) -> str:
    """A W3C PushSubscription, as an app shows it."""
    return json.dumps(
        {"endpoint": endpoint, "keys": {"p256dh": P256DH, "auth": AUTH, **keys}}
    )


def deep_json(depth: int) -> str:
    """A subscription nested this deep (and small enough to be parsed)."""
    return "[" * depth + "]" * depth


# What every case asserts.


def icu_format(template: str, placeholders: Mapping[str, str]) -> str:
    """Format a string as the frontend does (ICU MessageFormat, placeholders only).

    A quoted brace ('{') is literal, '' is an apostrophe, {name} must have a
    placeholder, and an unquoted brace anywhere else is an error.
    """
    out: list[str] = []
    index = 0
    while index < len(template):
        char = template[index]
        following = template[index + 1 : index + 2]
        if char == "'" and following == "'":
            out.append("'")
            index += 2
        elif char == "'" and following in ("{", "}"):
            end = template.index("'", index + 1)
            out.append(template[index + 1 : end])
            index = end + 1
        elif char == "{":
            end = template.index("}", index)
            name = template[index + 1 : end]
            assert re.fullmatch(r"\w+", name), template
            out.append(placeholders[name])
            index = end + 1
        else:
            assert char != "}", template
            out.append(char)
            index += 1
    return "".join(out)


def exception_message(err: ServiceValidationError) -> str:
    """Return the error's message as Home Assistant formats it (str.format)."""
    assert err.translation_domain == DOMAIN
    assert err.translation_key is not None
    template: str = STRINGS["exceptions"][err.translation_key]["message"]
    text = template.format(**(err.translation_placeholders or {}))
    assert "{" not in text, text
    return text


async def saved_storage(hass: HomeAssistant, storage: dict[str, Any]) -> Any:
    """Save Home Assistant's config entries now; return all that is stored.

    The test storage writes with orjson, as Home Assistant does: a lone
    surrogate anywhere raises here (test_a_surrogate_breaks_the_save). All
    of it: a push kept in the outbox is stored too.
    """
    hass.config_entries._async_schedule_save()
    await flush_store(hass.config_entries._store)
    return copy.deepcopy(storage)


def issues(hass: HomeAssistant) -> dict[tuple[str, str], Any]:
    """Return every repair issue, as the registry would store it."""
    return {key: issue.to_json() for key, issue in ir.async_get(hass).issues.items()}


@dataclass
class Witness:
    """What a refused input must leave as it was."""

    hass: HomeAssistant
    storage: dict[str, Any]
    caplog: pytest.LogCaptureFixture
    apns: ApnsServer
    webpush: WebPushServer
    saved: Any = None
    issues: dict[tuple[str, str], Any] = field(default_factory=dict)

    async def before(self) -> None:
        """Note the state just before the bad input goes in."""
        self.saved = await saved_storage(self.hass, self.storage)
        self.issues = issues(self.hass)
        self.caplog.clear()

    async def after(self, *, reported: str | None = None) -> None:
        """Nothing stored, sent, raised or logged as an error; entries still save.

        `reported`: the id of the one issue that reports the refusal (the
        YAML's), which the log reports too, without a traceback.
        """
        await self.hass.async_block_till_done()
        assert await saved_storage(self.hass, self.storage) == self.saved
        now = issues(self.hass)
        if reported is not None:
            assert now.pop((DOMAIN, reported), None) is not None
        assert now == self.issues
        assert self.apns.connections_made == 0
        assert self.apns.pushes == []
        assert self.webpush.requests == 0
        problems = [
            record
            for record in self.caplog.records
            if record.exc_info or (record.levelno >= logging.ERROR and reported is None)
        ]
        assert not problems, [record.getMessage() for record in problems]


@pytest.fixture
def witness(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    apns_server: ApnsServer,
    webpush_server: WebPushServer,
) -> Witness:
    """Check that a refused input changed nothing."""
    caplog.set_level(logging.DEBUG)
    return Witness(hass, hass_storage, caplog, apns_server, webpush_server)


def form_error(
    result: Mapping[str, Any], errors: Mapping[str, str], strings: Mapping[str, Any]
) -> None:
    """Assert a form's errors, translated, their messages formatted."""
    assert result["type"] in (FlowResultType.FORM, "form"), result
    assert result["errors"] == errors
    for key in errors.values():
        icu_format(strings["error"][key], result["description_placeholders"] or {})


# The actions.


@dataclass(frozen=True)
class Refused:
    """An action's refusal: the translation key, and the field it names."""

    key: str
    field: str | None


SEND_CASES: Final = [
    # Text fields: what HA cannot store, and control characters.
    ({"message": "a\x00b"}, Refused("invalid_character", "message")),
    ({"message": "Hi \ud83d"}, Refused("lone_surrogate", "message")),
    ({"message": "\x1b[2J cleared"}, Refused("invalid_character", "message")),
    ({"message": "next\x85line"}, Refused("invalid_character", "message")),
    ({"title": "T\ud800"}, Refused("lone_surrogate", "title")),
    ({"title": "nul\x00"}, Refused("invalid_character", "title")),
    ({"subtitle": "bell\x07"}, Refused("invalid_character", "subtitle")),
    ({"subtitle": "\udfff"}, Refused("lone_surrogate", "subtitle")),
    ({"url": "/lovelace\nX: 1"}, Refused("invalid_character", "url")),
    ({"url": "/door\ud800"}, Refused("lone_surrogate", "url")),
    ({"image": "https://e.com/a.jpg\r\nX: 1"}, Refused("invalid_character", "image")),
    # Header-bound fields: each with its own error, before any request.
    ({"tag": "door\nbell"}, Refused("tag_invalid_character", "tag")),
    ({"tag": "door\r\nX-Injected: 1"}, Refused("tag_invalid_character", "tag")),
    ({"tag": "nul\x00"}, Refused("tag_invalid_character", "tag")),
    ({"tag": "door\u2028bell"}, Refused("tag_invalid_character", "tag")),
    ({"tag": "door\ud800"}, Refused("lone_surrogate", "tag")),
    ({"tag": "t" * 65}, Refused("tag_too_long", "tag")),
    ({"tag": "€" * 22}, Refused("tag_too_long", "tag")),
    ({"thread_id": "a\tb"}, Refused("thread_id_invalid_character", "thread_id")),
    ({"thread_id": "t" * 256}, Refused("thread_id_too_long", "thread_id")),
    ({"category": "CAT\r"}, Refused("category_invalid_character", "category")),
    ({"category": "c" * 256}, Refused("category_too_long", "category")),
    ({"sound": "chime\n.caf"}, Refused("sound_invalid_character", "sound")),
    ({"sound": "s" * 256}, Refused("sound_too_long", "sound")),
    ({"sound": "\udc80"}, Refused("lone_surrogate", "sound")),
    (
        {"actions": [{"action": "open\ndoor", "title": "Open"}]},
        Refused("invalid_character", "actions"),
    ),
    (
        {"actions": [{"action": "open", "title": "Op\ud800en"}]},
        Refused("lone_surrogate", "actions"),
    ),
    (
        {"actions": [{"action": "open", "title": "Open", "url": "/x\r\n"}]},
        Refused("invalid_character", "actions"),
    ),
    # Custom data: plain JSON, within limits.
    ({"data": {"level": NAN}}, Refused("json_not_finite", "data")),
    ({"data": {"level": INF}}, Refused("json_not_finite", "data")),
    ({"data": {"level": -INF}}, Refused("json_not_finite", "data")),
    ({"data": {"rooms": [1, {"hall": NAN}]}}, Refused("json_not_finite", "data")),
    ({"data": Nested(100_000)}, Refused("json_too_deep", "data")),
    ({"data": Nested(MAX_DEPTH + 1)}, Refused("json_too_deep", "data")),
    ({"data": {"rooms": {"hall", "attic"}}}, Refused("data_not_json", "data")),
    ({"data": {"blob": b"\x00\x01"}}, Refused("data_not_json", "data")),
    ({"data": {"name": "x\ud800"}}, Refused("lone_surrogate", "data")),
    ({"data": {"\ud800": 1}}, Refused("lone_surrogate", "data")),
    ({"data": {"big": 10**5000}}, Refused("json_number_too_large", "data")),
    ({"data": {"many": [0] * MAX_ITEMS}}, Refused("json_too_many_values", "data")),
    ({"data": {"loop": cyclic()}}, Refused("json_too_deep", "data")),
    ({"data": {"aps": {"badge": 1}}}, Refused("reserved_data_key", None)),
    # Targets: an empty list names no one; text HA cannot show is no name.
    ({"target": []}, Refused("no_recipients", "target")),
    ({"target": "Alice\ud800"}, Refused("lone_surrogate", "target")),
    ({"target": "Alice\x00"}, Refused("invalid_character", "target")),
    ({"target": [["admin"], ["Bob\ud800"]]}, Refused("lone_surrogate", "target")),
    ({"target": "nobody"}, Refused("unknown_target", None)),
    # No message at all.
    ({"message": ""}, Refused("message_required", "message")),
]


async def _assert_refused(
    witness: Witness, call: Callable[[], Awaitable[Any]], refused: Refused
) -> None:
    await witness.before()
    with pytest.raises(ServiceValidationError) as err:
        await call()
    assert err.value.translation_key == refused.key
    text = exception_message(err.value)
    if refused.field is not None:
        assert (err.value.translation_placeholders or {}).get("field") == refused.field
        if "{field}" in STRINGS["exceptions"][refused.key]["message"]:
            assert refused.field in text
    await witness.after()


@pytest.mark.parametrize(("fields", "refused"), SEND_CASES)
async def test_send_action(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    witness: Witness,
    fields: dict[str, Any],
    refused: Refused,
) -> None:
    """direct_push.send, to everyone unless the case names a target."""
    data = {"message": "Hello", **built(fields)}
    await _assert_refused(
        witness,
        lambda: hass.services.async_call(
            DOMAIN, "send", data, blocking=True, return_response=True
        ),
        refused,
    )


NOTIFY_ENTITY_CASES: Final = [
    ("notify.alice", {"message": "Hi \ud83d"}, Refused("lone_surrogate", "message")),
    ("notify.dana", {"message": "a\x00b"}, Refused("invalid_character", "message")),
    ("notify.bob", {"message": "\x9b31m"}, Refused("invalid_character", "message")),
    (
        "notify.direct_push_everyone",
        {"message": "Hi", "title": "\ud800"},
        Refused("lone_surrogate", "title"),
    ),
    (
        "notify.direct_push_admins",
        {"message": "Hi", "title": "\x1b]0;x\x07"},
        Refused("invalid_character", "title"),
    ),
    (
        "notify.erin",
        {"message": "Hi", "title": "del\x7f"},
        Refused("invalid_character", "title"),
    ),
]


@pytest.mark.parametrize(("entity_id", "fields", "refused"), NOTIFY_ENTITY_CASES)
async def test_notify_entities(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    witness: Witness,
    entity_id: str,
    fields: dict[str, Any],
    refused: Refused,
) -> None:
    """notify.send_message, to a device's or a group's entity."""
    assert hass.states.get(entity_id) is not None
    await _assert_refused(
        witness,
        lambda: hass.services.async_call(
            "notify",
            "send_message",
            {"entity_id": entity_id, **fields},
            blocking=True,
        ),
        refused,
    )


LEGACY_CASES: Final = [
    ({"message": "Hi \ud83d"}, Refused("lone_surrogate", "message")),
    ({"message": "a\x00b"}, Refused("invalid_character", "message")),
    ({"title": "T\ud800"}, Refused("lone_surrogate", "title")),
    ({"title": "\x1b[1m"}, Refused("invalid_character", "title")),
    ({"target": []}, Refused("no_recipients", "target")),
    ({"target": ["Alice", "\ud800"]}, Refused("lone_surrogate", "target")),
    ({"data": {"tag": "door\nbell"}}, Refused("tag_invalid_character", "tag")),
    ({"data": {"tag": "t" * 65}}, Refused("tag_too_long", "tag")),
    (
        {"data": {"thread_id": "a\rb"}},
        Refused("thread_id_invalid_character", "thread_id"),
    ),
    ({"data": {"sound": "\ud800"}}, Refused("lone_surrogate", "sound")),
    ({"data": {"category": "c" * 300}}, Refused("category_too_long", "category")),
    ({"data": {"url": "/x\ny"}}, Refused("invalid_character", "url")),
    ({"data": {"image": "\ud800"}}, Refused("lone_surrogate", "image")),
    ({"data": {"subtitle": "\x00"}}, Refused("invalid_character", "subtitle")),
    (
        {"data": {"actions": [{"action": "a\nb", "title": "t"}]}},
        Refused("invalid_character", "actions"),
    ),
    ({"data": {"data": {"level": NAN}}}, Refused("json_not_finite", "data")),
    ({"data": {"data": {"level": INF}}}, Refused("json_not_finite", "data")),
    ({"data": {"data": Nested(100_000)}}, Refused("json_too_deep", "data")),
    ({"data": {"data": {"rooms": {"hall"}}}}, Refused("data_not_json", "data")),
    ({"data": {"priority": 7}}, Refused("invalid_data", None)),
]


@pytest.mark.parametrize(("fields", "refused"), LEGACY_CASES)
async def test_legacy_notify_service(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    witness: Witness,
    fields: dict[str, Any],
    refused: Refused,
) -> None:
    """notify.direct_push, the action fields in its data."""
    data = {"message": "Hello", **built(fields)}
    await _assert_refused(
        witness,
        lambda: hass.services.async_call("notify", DOMAIN, data, blocking=True),
        refused,
    )


# The config flow: a new hub's Apple credentials.


def _apple_input(credentials: ApnsTestCredentials, method: str) -> dict[str, Any]:
    if method == "certificate":
        return {CONF_CERTIFICATE: credentials.cert_pem, CONF_ENVIRONMENT: ENV_SANDBOX}
    return {
        CONF_KEY: credentials.key_pem,
        CONF_KEY_ID: credentials.key_id,
        CONF_TEAM_ID: credentials.team_id,
        CONF_TOPIC: credentials.topic,
        CONF_ENVIRONMENT: ENV_PRODUCTION,
    }


async def _refused_config_step(
    hass: HomeAssistant,
    witness: Witness,
    result: Mapping[str, Any],
    user_input: dict[str, Any],
    bad: tuple[str, str, str],
) -> None:
    """Put one bad value into a config flow form; assert it is refused cleanly.

    `bad` is the field, the bad text and the error. A key or certificate
    gets the bad text inside its PEM body, as a broken copy leaves it.
    """
    assert result["type"] is FlowResultType.FORM
    field_name, text, key = bad
    if field_name in (CONF_KEY, CONF_CERTIFICATE):
        lines = user_input[field_name].splitlines()
        lines[1] = lines[1][:10] + text + lines[1][10:]
        text = "\n".join(lines)
    await witness.before()
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**user_input, field_name: text}
    )
    form_error(result, {field_name: key}, STRINGS["config"])
    await witness.after()


# (field, what to change it to, the field error)
HUB_CASES: Final = [
    ("token", CONF_KEY, "\x00", "invalid_character"),
    ("token", CONF_KEY, "\ud800", "lone_surrogate"),
    ("token", CONF_KEY, "\x1b", "invalid_character"),
    ("token", CONF_KEY_ID, "ABCDE12345\n", "invalid_character"),
    ("token", CONF_KEY_ID, "ABCDE\ud80012345", "lone_surrogate"),
    ("token", CONF_KEY_ID, "ABCDE\x0012345", "invalid_character"),
    ("token", CONF_TEAM_ID, "TEAM\t12345", "invalid_character"),
    ("token", CONF_TEAM_ID, "\udfffTEAM12345", "lone_surrogate"),
    ("token", CONF_TOPIC, "com.example.app\n", "invalid_character"),
    ("token", CONF_TOPIC, "com.example.app\r\nX: 1", "invalid_character"),
    ("token", CONF_TOPIC, "com.example.\ud800", "lone_surrogate"),
    ("certificate", CONF_CERTIFICATE, "\x00", "invalid_character"),
    ("certificate", CONF_CERTIFICATE, "\ud83d", "lone_surrogate"),
    ("certificate", CONF_TOPIC, "com.example.app\n", "invalid_character"),
    ("certificate", CONF_TOPIC, "\ud800", "lone_surrogate"),
]


@pytest.mark.parametrize(("method", "field_name", "bad", "key"), HUB_CASES)
async def test_new_hub(
    hass: HomeAssistant,
    apns_credentials: ApnsTestCredentials,
    witness: Witness,
    method: str,
    field_name: str,
    bad: str,
    key: str,
) -> None:
    """The token and certificate steps that create the hub."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": method}
    )
    await _refused_config_step(
        hass,
        witness,
        result,
        _apple_input(apns_credentials, method),
        (field_name, bad, key),
    )
    assert not hass.config_entries.async_entries(DOMAIN)


# The hub's own steps: reauthenticate, reconfigure, options.

HUB_STEP_CASES: Final = [
    ("reauth", CONF_KEY, "\x00", "invalid_character"),
    ("reauth", CONF_KEY, "\ud800", "lone_surrogate"),
    ("reauth", CONF_KEY_ID, "ABCDE12345\n", "invalid_character"),
    ("reauth", CONF_TEAM_ID, "TEAM\ud80012345", "lone_surrogate"),
    ("reconfigure", CONF_TOPIC, "com.example.app\n", "invalid_character"),
    ("reconfigure", CONF_TOPIC, "com.\ud800", "lone_surrogate"),
    ("reconfigure", CONF_KEY, "\x07", "invalid_character"),
    ("reconfigure", CONF_KEY, "\udc00", "lone_surrogate"),
]


@pytest.mark.parametrize(("step", "field_name", "bad", "key"), HUB_STEP_CASES)
async def test_hub_steps(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    apns_credentials: ApnsTestCredentials,
    witness: Witness,
    step: str,
    field_name: str,
    bad: str,
    key: str,
) -> None:
    """Reauthentication and reconfiguration of a loaded hub."""
    user_input = _apple_input(apns_credentials, "token")
    if step == "reauth":
        result = await loaded_entry.start_reauth_flow(hass)
        del user_input[CONF_TOPIC], user_input[CONF_ENVIRONMENT]
    else:
        result = await loaded_entry.start_reconfigure_flow(hass)
        del user_input[CONF_KEY_ID], user_input[CONF_TEAM_ID]
    await _refused_config_step(
        hass, witness, result, user_input, (field_name, bad, key)
    )


OPTIONS_CASES: Final = [
    ("chime\n.caf", "sound_invalid_character"),
    ("chime\x00", "sound_invalid_character"),
    ("chime\t.caf", "sound_invalid_character"),
    ("s" * 256, "sound_too_long"),
    ("chime\ud800", "lone_surrogate"),
]


@pytest.mark.parametrize(("sound", "key"), OPTIONS_CASES)
async def test_options(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    witness: Witness,
    sound: str,
    key: str,
) -> None:
    """The hub's options: the default sound ends up in every Apple push."""
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    user_input = {
        CONF_SOUND: sound,
        CONF_INTERRUPTION_LEVEL: "active",
        CONF_TITLE_FROM_DEVICE: True,
    }
    await witness.before()
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], user_input
    )
    form_error(result, {CONF_SOUND: key}, STRINGS["options"])
    # The form shows what was typed, to correct it.
    suggested = {
        str(marker): (marker.description or {}).get("suggested_value")
        for marker in result["data_schema"].schema
    }
    assert suggested[CONF_SOUND] == sound
    await witness.after()


# Device forms: add and edit, for each kind.

NAME_CASES: Final = [
    ("", "name_blank"),
    ("   ", "name_blank"),
    ("\u200b", "name_blank"),
    ("\u3000", "name_blank"),
    ("x" * (MAX_NAME_LENGTH + 1), "name_too_long"),
    ("x" * 10_000, "name_too_long"),
    ("Kit\x00chen", "invalid_character"),
    ("two\nlines", "invalid_character"),
    ("tab\there", "invalid_character"),
    ("bell\x07", "invalid_character"),
    ("name\ud800", "lone_surrogate"),
    ("\udbff", "lone_surrogate"),
]
APPLE_FIELD_CASES: Final = [
    (CONF_TOKEN, CAROL_TOKEN[:10] + "\x00" + CAROL_TOKEN[10:], "invalid_character"),
    (CONF_TOKEN, CAROL_TOKEN + "\ud800", "lone_surrogate"),
    (CONF_TOKEN, CAROL_TOKEN[:10] + "\n" + CAROL_TOKEN[10:], "invalid_character"),
    (CONF_TOPIC, "com.example.widget\n", "invalid_character"),
    (CONF_TOPIC, "com.example.\ud800", "lone_surrogate"),
]


def _apple_device(**changes: Any) -> dict[str, Any]:
    return {
        CONF_NAME: "Carol",
        CONF_TOKEN: CAROL_TOKEN,
        CONF_ADMIN: False,
        CONF_ENVIRONMENT: ENV_PRODUCTION,
        **changes,
    }


def _webpush_device(**changes: Any) -> dict[str, Any]:
    return {
        CONF_NAME: "Finn",
        CONF_SUBSCRIPTION: sub_json(),
        CONF_ADMIN: False,
        **changes,
    }


def _webpush_fields(**changes: Any) -> dict[str, Any]:
    return {
        CONF_NAME: "Finn",
        CONF_ENDPOINT: PUSH_ENDPOINT,
        CONF_P256DH: P256DH,
        CONF_AUTH: AUTH,
        CONF_ADMIN: False,
        **changes,
    }


# What a pasted subscription can hold, and the error next to it.
SUBSCRIPTION_CASES: Final = [
    # What broke Home Assistant's storage for every integration.
    (sub_json("https://push.example.com/up\ud800"), "lone_surrogate"),
    (sub_json(auth="\ud800"), "lone_surrogate"),
    ('{"endpoint": "https://e/\ud800"}', "lone_surrogate"),  # pasted, unescaped
    ("\x00" + sub_json(), "invalid_character"),
    # JSON within limits: no RecursionError, no parsing of megabytes.
    ("[" * 100_000, "json_too_large"),
    (deep_json(MAX_DEPTH + 1), "json_too_deep"),
    (sub_json(padding="x" * 16_384), "json_too_large"),
    (sub_json().replace(f'"{AUTH}"', "NaN"), "json_not_finite"),
    (sub_json().replace(f'"{AUTH}"', "Infinity"), "json_not_finite"),
    (sub_json().replace(f'"{AUTH}"', "9" * 5000), "json_number_too_large"),
    ("not json", "invalid_subscription"),
    # Where Home Assistant may post.
    (sub_json("https://user:pass@push.example.com/up"), "endpoint_credentials"),
    (sub_json("https://@push.example.com/up"), "endpoint_credentials"),
    (sub_json("https://push.example.com/up\r\nX-Injected: 1"), "endpoint_whitespace"),
    (sub_json("http://169.254.169.254/latest/meta-data/"), "endpoint_metadata"),
    (sub_json("http://metadata.google.internal/computeMetadata/"), "endpoint_metadata"),
    (sub_json("http://[fe80::1]/up"), "endpoint_address"),
    (sub_json("http://0.0.0.0:8080/up"), "endpoint_address"),
    (sub_json("http://2130706433/up"), "invalid_endpoint"),
    (sub_json("ftp://push.example.com/up"), "endpoint_scheme"),
    (sub_json("http://push.example.com/up"), "endpoint_insecure"),
    (sub_json(f"http://localhost:{HA_PORT}/api/states"), "endpoint_home_assistant"),
    (sub_json(f"http://127.0.0.1:{HA_PORT}/api/"), "endpoint_home_assistant"),
    (sub_json(f"https://{HA_ADDRESS}:{HA_PORT}/auth/token"), "endpoint_home_assistant"),
]
WEBPUSH_FIELD_CASES: Final = [
    (CONF_ENDPOINT, "https://push.example.com/up\r\nX: 1", "invalid_character"),
    (CONF_ENDPOINT, "https://push.example.com/up\ud800", "lone_surrogate"),
    (CONF_ENDPOINT, "https://push.example.com/up X", "endpoint_whitespace"),
    (CONF_ENDPOINT, "https://user:pass@push.example.com/up", "endpoint_credentials"),
    (CONF_ENDPOINT, f"http://localhost:{HA_PORT}/api/", "endpoint_home_assistant"),
    (CONF_ENDPOINT, "http://169.254.169.254/", "endpoint_metadata"),
    (CONF_P256DH, P256DH[:20] + "\x00" + P256DH[20:], "invalid_character"),
    (CONF_AUTH, AUTH + "\ud800", "lone_surrogate"),
]


@pytest.fixture
def ha_server(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    """Home Assistant's HTTP server, which no endpoint may point at.

    Set once the hub is loaded: setting up its dependency http sets another.
    """
    hass.config.api = ApiConfig(HA_ADDRESS, "0.0.0.0", HA_PORT, False)  # noqa: S104


async def _device_form(
    hass: HomeAssistant, entry: MockConfigEntry, kind: str, edit: str | None
) -> dict[str, Any]:
    if edit is None:
        result = await hass.config_entries.subentries.async_init(
            (entry.entry_id, kind), context={"source": SOURCE_USER}
        )
    else:
        result = await entry.start_subentry_reconfigure_flow(
            hass, subentry_id(entry, edit)
        )
    assert result["type"] is FlowResultType.FORM
    return dict(result)


APPLE_DEVICE_CASES: Final = [
    *((None, _apple_device(name=name), {CONF_NAME: key}) for name, key in NAME_CASES),
    *(
        (None, _apple_device(**{name: value}), {name: key})
        for name, value, key in APPLE_FIELD_CASES
    ),
    ("Bob", _apple_device(name="  "), {CONF_NAME: "name_blank"}),
    ("Bob", _apple_device(name="b" * 65), {CONF_NAME: "name_too_long"}),
    ("Bob", _apple_device(name="B\x00b"), {CONF_NAME: "invalid_character"}),
    ("Bob", _apple_device(name="B\ud800"), {CONF_NAME: "lone_surrogate"}),
    (
        "Bob",
        _apple_device(name="Bob", token=BOB_TOKEN + "\ud800"),
        {CONF_TOKEN: "lone_surrogate"},
    ),
]
WEBPUSH_DEVICE_CASES: Final = [
    *((None, _webpush_device(name=name), {CONF_NAME: key}) for name, key in NAME_CASES),
    *(
        (None, _webpush_device(subscription=text), {CONF_SUBSCRIPTION: key})
        for text, key in SUBSCRIPTION_CASES
    ),
    *(
        (None, _webpush_fields(**{name: value}), {name: key})
        for name, value, key in WEBPUSH_FIELD_CASES
    ),
    ("Erin", _webpush_device(name="Erin\x00"), {CONF_NAME: "invalid_character"}),
    (
        "Erin",
        _webpush_device(name="Erin", subscription=sub_json("https://e/\ud800")),
        {CONF_SUBSCRIPTION: "lone_surrogate"},
    ),
    (
        "Erin",
        _webpush_device(
            name="Erin", subscription=sub_json(f"http://localhost:{HA_PORT}/api/")
        ),
        {CONF_SUBSCRIPTION: "endpoint_home_assistant"},
    ),
]


def _device_params() -> list[Any]:
    """Each kind's cases, named by kind, form and error."""
    return [
        pytest.param(
            kind,
            edit,
            user_input,
            errors,
            id=f"{kind}-{edit or 'add'}-{'-'.join(errors.values())}",
        )
        for kind, cases in (
            (SUBENTRY_APNS, APPLE_DEVICE_CASES),
            (SUBENTRY_WEBPUSH, WEBPUSH_DEVICE_CASES),
        )
        for edit, user_input, errors in cases
    ]


@pytest.mark.usefixtures("ha_server")
@pytest.mark.parametrize(("kind", "edit", "user_input", "errors"), _device_params())
async def test_device_form(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    witness: Witness,
    kind: str,
    edit: str | None,
    user_input: dict[str, Any],
    errors: dict[str, str],
) -> None:
    """Add a device of each kind, or edit Bob (Apple) or Erin (Web Push)."""
    result = await _device_form(hass, loaded_entry, kind, edit)
    await witness.before()
    result = dict(
        await hass.config_entries.subentries.async_configure(
            result["flow_id"], user_input
        )
    )
    form_error(result, errors, STRINGS["config_subentries"][kind])
    await witness.after()


# Repair forms: an inactive device's new details.

REPAIR_CASES: Final = [
    pytest.param("Bob", {CONF_TOKEN: "a1" * 32 + "\x00"}, "invalid_character"),
    pytest.param("Bob", {CONF_TOKEN: "a1" * 32 + "\ud800"}, "lone_surrogate"),
    pytest.param("Bob", {CONF_TOKEN: "\x1b" + "a1" * 32}, "invalid_character"),
    pytest.param(
        "Bob", {CONF_TOKEN: "a1" * 16 + "\n" + "a1" * 16}, "invalid_device_token"
    ),
    *(
        pytest.param("Erin", {CONF_SUBSCRIPTION: text}, key, id=f"Erin-{key}")
        for text, key in (
            (sub_json("https://e/\ud800"), "lone_surrogate"),
            ("\ud800", "lone_surrogate"),
            ("\x00", "invalid_character"),
            ("[" * 100_000, "json_too_large"),
            (deep_json(MAX_DEPTH + 1), "json_too_deep"),
            (sub_json().replace(f'"{AUTH}"', "NaN"), "json_not_finite"),
            (sub_json(f"http://localhost:{HA_PORT}/api/"), "endpoint_home_assistant"),
            (sub_json("http://169.254.169.254/"), "endpoint_metadata"),
            (sub_json("https://u:p@push.example.com/up"), "endpoint_credentials"),
        )
    ),
]


@pytest.mark.parametrize(("device", "user_input", "key"), REPAIR_CASES)
async def test_repair_form(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    witness: Witness,
    device: str,
    user_input: dict[str, Any],
    key: str,
) -> None:
    """The inactive device's repair, through the repairs flow manager.

    Not through the HTTP API: its JSON parser turns a body with a lone
    surrogate into an empty submission, and the form's defaults fill it in.
    """
    assert await async_setup_component(hass, "repairs", {})
    # Set up with repairs, Home Assistant's own HTTP server.
    hass.config.api = ApiConfig(HA_ADDRESS, "0.0.0.0", HA_PORT, False)  # noqa: S104
    device_id = subentry_id(loaded_entry, device)
    async_create_inactive_issue(
        hass, loaded_entry.entry_id, device_id, device, "Unregistered"
    )
    manager = repairs_flow_manager(hass)
    assert manager is not None
    result = await manager.async_init(
        DOMAIN, data={"issue_id": f"device_inactive_{device_id}"}
    )
    await witness.before()
    result = await manager.async_configure(result["flow_id"], user_input)
    [field_name] = user_input
    form_error(
        result, {field_name: key}, STRINGS["issues"]["device_inactive"]["fix_flow"]
    )
    await witness.after()


# The YAML's device names: checked by the rule the forms use, before import.

YAML_NAME_CASES: Final = [
    ("", "shows as nothing"),
    ("   ", "shows as nothing"),
    ("\u200b", "shows as nothing"),
    ("x" * (MAX_NAME_LENGTH + 1), f"longer than {MAX_NAME_LENGTH} characters"),
    ("Kit\x00chen", "control character"),
    ("two\nlines", "control character"),
    ("Bob\ud800", "broken character"),
]


@pytest.mark.parametrize(("name", "problem"), YAML_NAME_CASES)
async def test_yaml_device_name(
    hass: HomeAssistant,
    apns_credentials: ApnsTestCredentials,
    witness: Witness,
    name: str,
    problem: str,
) -> None:
    """`direct_push:` in configuration.yaml: the issue says why, never the name."""
    conf = {
        CONF_KEY: apns_credentials.key_pem,
        CONF_KEY_ID: apns_credentials.key_id,
        CONF_TEAM_ID: apns_credentials.team_id,
        CONF_TOPIC: apns_credentials.topic,
        "devices": [{CONF_NAME: name, CONF_TOKEN: CAROL_TOKEN}],
    }
    # The import flow loads the integration's dependencies (file_upload, so
    # http), which store their own settings: load them before the witness looks.
    assert await async_setup_component(hass, "file_upload", {})
    await witness.before()
    async_import_yaml(hass, conf)
    await hass.async_block_till_done()
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "yaml_import_failed")
    assert issue is not None
    reason = (issue.translation_placeholders or {})["reason"]
    assert reason.startswith("configuration.yaml: ")
    assert problem in reason
    assert "devices" in reason
    if name.strip():
        assert name not in reason
    icu_format(STRINGS["issues"]["yaml_import_failed"]["description"], {"reason": ""})
    await witness.after(reported="yaml_import_failed")
    assert not hass.config_entries.async_entries(DOMAIN)


# The proofs behind the checks.


async def test_strict_json_out_is_a_second_guard(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, witness: Witness
) -> None:
    """What got past the actions is still never sent: each device fails."""
    hub = loaded_entry.runtime_data
    await witness.before()
    for message, reason in (
        (Message(message="Hi", data={"level": NAN}), "data_not_json"),
        (Message(message="Hi \ud800"), "lone_surrogate"),
    ):
        for device in hub.devices.values():
            delivery = await hub.backends[device.kind].async_send(device, message)
            assert (delivery.outcome, delivery.reason) == (Outcome.FAILED, reason)
    await witness.after()


async def test_a_surrogate_breaks_the_save(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """What saved_storage guards against: one broken character stops every save."""
    saved = await saved_storage(hass, hass_storage)
    assert saved["core.config_entries"]["data"] == {"entries": []}
    entry = MockConfigEntry(domain=DOMAIN, title="Direct Push \ud800")
    entry.add_to_hass(hass)
    with pytest.raises(TypeError, match="surrogates not allowed"):
        await saved_storage(hass, hass_storage)
    # Nothing of it reached the storage.
    assert hass_storage["core.config_entries"]["data"] == {"entries": []}
    await hass.config_entries.async_remove(entry.entry_id)


async def test_markdown_in_a_name_stays_text(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """A name is shown in Markdown escaped, or in plain text (titles) as it is."""
    name = "**Bob** [site](https://evil.example)"
    bob = loaded_entry.subentries[subentry_id(loaded_entry, "Bob")]
    hass.config_entries.async_update_subentry(loaded_entry, bob, title=name)
    await hass.async_block_till_done()
    async_create_inactive_issue(
        hass, loaded_entry.entry_id, bob.subentry_id, name, "Unregistered"
    )
    assert await async_setup_component(hass, "repairs", {})
    manager = repairs_flow_manager(hass)
    assert manager is not None
    result = await manager.async_init(
        DOMAIN, data={"issue_id": f"device_inactive_{bob.subentry_id}"}
    )
    assert result["description_placeholders"] == {
        "device": escape_markdown(name),
        "reason": "Unregistered",
    }
    fix_flow = STRINGS["issues"]["device_inactive"]["fix_flow"]["step"]["init"]
    assert "{device}" not in fix_flow["title"]
    # Issues keep their placeholders for title and description alike.
    for issue in STRINGS["issues"].values():
        assert "{device}" not in issue.get("description", "")


def test_every_case_table_is_large_enough() -> None:
    """The issue asks for at least 120 cases over every entry point."""
    tables = (
        SEND_CASES,
        NOTIFY_ENTITY_CASES,
        LEGACY_CASES,
        HUB_CASES,
        HUB_STEP_CASES,
        OPTIONS_CASES,
        YAML_NAME_CASES,
        APPLE_DEVICE_CASES,
        WEBPUSH_DEVICE_CASES,
        REPAIR_CASES,
    )
    assert all(tables)
    assert sum(len(table) for table in tables) >= 120


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [text for value in node.values() for text in _strings(value)]
    return [node]


def test_translations_follow_the_message_rules() -> None:
    """The frontend reads strings as ICU MessageFormat; exceptions use str.format."""
    for section, texts in STRINGS.items():
        for text in _strings(texts):
            if section == "exceptions":
                # Home Assistant formats these itself: no literal braces.
                names = re.findall(r"\{(\w+)\}", text)
                assert text.format(**dict.fromkeys(names, "")) is not None
                assert "'{'" not in text
            else:
                names = re.findall(r"(?<!')\{(\w+)\}", text)
                icu_format(text, dict.fromkeys(names, "x"))
