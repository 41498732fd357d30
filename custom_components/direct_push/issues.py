"""Repair issues of Direct Push: their ids, and creating and deleting them.

A device's name is in an issue's title, which is plain text, and not in its
description, which is Markdown: a name cannot change the layout. (A fix
flow's description may name it escaped, see repairs.)
"""

from __future__ import annotations

from collections.abc import Container
from typing import Final

from homeassistant.core import DOMAIN as HOMEASSISTANT_DOMAIN, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN, LOGGER, TITLE

INACTIVE_DEVICE: Final = "device_inactive"
YAML_IMPORT_FAILED: Final = "yaml_import_failed"
# HA's own issue (in the homeassistant domain) that asks to remove imported YAML.
_DEPRECATED_YAML: Final = f"deprecated_yaml_{DOMAIN}"
_INACTIVE_PREFIX: Final = f"{INACTIVE_DEVICE}_"


def inactive_issue_id(device_id: str) -> str:
    """Return the id of the issue that marks a device inactive."""
    return f"{_INACTIVE_PREFIX}{device_id}"


@callback
def async_is_inactive(hass: HomeAssistant, device_id: str) -> bool:
    """Return True when the device was marked gone; its issue is the record."""
    issue = ir.async_get(hass).async_get_issue(DOMAIN, inactive_issue_id(device_id))
    return issue is not None


@callback
def async_create_inactive_issue(
    hass: HomeAssistant, entry_id: str, device_id: str, device: str, reason: str
) -> None:
    """Mark a device inactive, until the user gives it new details."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        inactive_issue_id(device_id),
        is_fixable=True,
        # The issue is the record that the device is inactive: keep it across restarts.
        is_persistent=True,
        severity=ir.IssueSeverity.ERROR,
        translation_key=INACTIVE_DEVICE,
        translation_placeholders={"device": device, "reason": reason},
        data={"entry_id": entry_id, "device_id": device_id},
    )


@callback
def async_delete_inactive_issue(hass: HomeAssistant, device_id: str) -> None:
    """Make a device active again."""
    ir.async_delete_issue(hass, DOMAIN, inactive_issue_id(device_id))


@callback
def async_delete_inactive_issues(hass: HomeAssistant, keep: Container[str]) -> None:
    """Delete the inactive and lease issues of every device not in keep."""
    registry = ir.async_get(hass)
    for domain, issue_id in list(registry.issues):
        if domain != DOMAIN:
            continue
        for prefix in (_INACTIVE_PREFIX, _LEASE_PREFIX):
            if (
                issue_id.startswith(prefix)
                and issue_id.removeprefix(prefix) not in keep
            ):
                ir.async_delete_issue(hass, DOMAIN, issue_id)


@callback
def async_create_yaml_import_failed(hass: HomeAssistant, reason: str) -> None:
    """Say why the YAML configuration was not imported."""
    LOGGER.error("The direct_push YAML configuration was not imported: %s", reason)
    ir.async_delete_issue(hass, HOMEASSISTANT_DOMAIN, _DEPRECATED_YAML)
    ir.async_create_issue(
        hass,
        DOMAIN,
        YAML_IMPORT_FAILED,
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=YAML_IMPORT_FAILED,
        translation_placeholders={"reason": reason},
    )


@callback
def async_create_yaml_deprecated(hass: HomeAssistant) -> None:
    """The YAML was imported: ask the user to remove it."""
    ir.async_delete_issue(hass, DOMAIN, YAML_IMPORT_FAILED)
    ir.async_create_issue(
        hass,
        HOMEASSISTANT_DOMAIN,
        _DEPRECATED_YAML,
        breaks_in_ha_version=None,
        is_fixable=False,
        issue_domain=DOMAIN,
        severity=ir.IssueSeverity.WARNING,
        translation_key="deprecated_yaml",
        translation_placeholders={"domain": DOMAIN, "integration_title": TITLE},
    )


_CLOCK_ISSUE_PREFIX: Final = "clock_wrong_"


def clock_issue_id(kind: str) -> str:
    """Return the repair issue id that says a push service finds our clock wrong."""
    return f"{_CLOCK_ISSUE_PREFIX}{kind}"


@callback
def async_create_clock_issue(hass: HomeAssistant, kind: str, reason: str) -> None:
    """Say that Home Assistant's clock is wrong: no new key would help."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        clock_issue_id(kind),
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key="clock_wrong",
        translation_placeholders={"reason": reason},
    )


@callback
def async_delete_clock_issue(hass: HomeAssistant, kind: str) -> None:
    """A push went through: the service accepts our clock again."""
    ir.async_delete_issue(hass, DOMAIN, clock_issue_id(kind))


_UNREACHABLE_PREFIX: Final = "device_unreachable_"


def unreachable_issue_id(device_id: str) -> str:
    """Return the id of the issue that says a device's push service stays away."""
    return f"{_UNREACHABLE_PREFIX}{device_id}"


@callback
def async_create_unreachable_issue(
    hass: HomeAssistant,
    device_id: str,
    device: str,
    days: int,
    last_delivery: str | None,
) -> None:
    """Say that a device's push service has not been reached for days."""
    placeholders = {"device": device, "days": str(days)}
    if last_delivery is not None:
        placeholders["last_delivery"] = last_delivery
    ir.async_create_issue(
        hass,
        DOMAIN,
        unreachable_issue_id(device_id),
        is_fixable=False,
        # Kept until a push gets through or the device is removed.
        is_persistent=True,
        severity=ir.IssueSeverity.WARNING,
        translation_key=(
            "device_unreachable_never"
            if last_delivery is None
            else "device_unreachable"
        ),
        translation_placeholders=placeholders,
    )


@callback
def async_delete_unreachable_issue(hass: HomeAssistant, device_id: str) -> None:
    """A push reached the device, or it is gone."""
    ir.async_delete_issue(hass, DOMAIN, unreachable_issue_id(device_id))


LEASE_EXPIRED: Final = "lease_expired"
_LEASE_PREFIX: Final = f"{LEASE_EXPIRED}_"


def lease_issue_id(device_id: str) -> str:
    """Return the id of the issue that says a device's lease ended."""
    return f"{_LEASE_PREFIX}{device_id}"


@callback
def async_create_lease_issue(
    hass: HomeAssistant, device_id: str, device: str, removal: str
) -> None:
    """Say that a registered device's app stopped renewing, and when it goes."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        lease_issue_id(device_id),
        is_fixable=False,
        is_persistent=True,
        severity=ir.IssueSeverity.WARNING,
        translation_key=LEASE_EXPIRED,
        translation_placeholders={"device": device, "removal": removal},
    )


@callback
def async_delete_lease_issue(hass: HomeAssistant, device_id: str) -> None:
    """The device renewed its lease, or it is gone."""
    ir.async_delete_issue(hass, DOMAIN, lease_issue_id(device_id))


REPORTER_ISSUE: Final = "reporter_needs_mqtt"


@callback
def async_create_reporter_issue(hass: HomeAssistant, group: str) -> None:
    """Say that the reporter group cannot work: MQTT is not set up."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        REPORTER_ISSUE,
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=REPORTER_ISSUE,
        translation_placeholders={"group": group},
    )


@callback
def async_delete_reporter_issue(hass: HomeAssistant) -> None:
    """The reporter group is connected, or no longer configured."""
    ir.async_delete_issue(hass, DOMAIN, REPORTER_ISSUE)
