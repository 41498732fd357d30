"""Constants for Direct Push."""

from __future__ import annotations

import logging
from typing import Final

DOMAIN: Final = "direct_push"
TITLE: Final = "Direct Push"
LOGGER = logging.getLogger(__package__)

# Hub entry data (APNs credentials; each backend's credentials are optional).
CONF_AUTH_METHOD: Final = "auth_method"
AUTH_TOKEN: Final = "token"  # noqa: S105
AUTH_CERTIFICATE: Final = "certificate"
CONF_KEY: Final = "key"
CONF_KEY_FILE: Final = "key_file"
CONF_KEY_ID: Final = "key_id"
CONF_TEAM_ID: Final = "team_id"
CONF_TOPIC: Final = "topic"
CONF_CERTIFICATE: Final = "certificate"
CONF_CERTIFICATE_FILE: Final = "certificate_file"
CONF_ENVIRONMENT: Final = "environment"
ENV_PRODUCTION: Final = "production"
ENV_SANDBOX: Final = "sandbox"
ENVIRONMENTS: Final = (ENV_PRODUCTION, ENV_SANDBOX)
# A device may also find its environment: where Apple accepts its token.
ENV_AUTO: Final = "auto"
DEVICE_ENVIRONMENTS: Final = (ENV_AUTO, *ENVIRONMENTS)

# Device subentries (each kind's subentry type is in its backend module).
CONF_NAME: Final = "name"
CONF_TOKEN: Final = "token"  # noqa: S105
CONF_ADMIN: Final = "admin"
# Where an automatic device's token was last accepted.
CONF_DETECTED_ENVIRONMENT: Final = "detected_environment"

# Options.
CONF_SOUND: Final = "sound"
CONF_INTERRUPTION_LEVEL: Final = "interruption_level"
CONF_TITLE_FROM_DEVICE: Final = "title_from_device_name"
DEFAULT_SOUND: Final = "default"
CONF_UNREACHABLE_DAYS: Final = "unreachable_days"
DEFAULT_UNREACHABLE_DAYS: Final = 3
CONF_LEASE_DAYS: Final = "lease_days"
DEFAULT_LEASE_DAYS: Final = 30

# Fired when a push that an action reported queued is delivered, refused or given up.
EVENT_DELIVERY: Final = "direct_push_delivery"
# Fired when a device answers a button of a push.
EVENT_ACTION: Final = "direct_push_action"

# Development only: point APNs at a local server (never offered in the UI).
ENV_DEV_APNS_SERVER: Final = "DIRECT_PUSH_DEV_APNS_SERVER"
ENV_DEV_CA_FILE: Final = "DIRECT_PUSH_DEV_CA_FILE"

# Web Push (UnifiedPush and browsers).
CONF_VAPID_PRIVATE_KEY: Final = "vapid_private_key"
CONF_SUBSCRIPTION: Final = "subscription"
CONF_ENDPOINT: Final = "endpoint"
CONF_P256DH: Final = "p256dh"
CONF_AUTH: Final = "auth"
# A device that registered itself (device_api): the HA user it belongs to, if
# any, and the hash of its secret.
CONF_OWNER: Final = "owner"
CONF_SECRET_HASH: Final = "secret_hash"  # noqa: S105 (a key's name)
# Its lease (leases.py): when it ends (POSIX time), and the end its timeout push announced.
CONF_LEASE_EXPIRES: Final = "lease_expires"
CONF_LEASE_WARNED: Final = "lease_warned"
# Private mode (mailbox.py): pushes carry only a message id; an Apple app with a
# notification service extension asks for an alert it can rewrite.
CONF_PRIVATE: Final = "private"
CONF_SERVICE_EXTENSION: Final = "service_extension"
# What a device's own registration keeps and an admin's edit must not drop.
REGISTRATION_KEYS: Final = (
    CONF_OWNER,
    CONF_SECRET_HASH,
    CONF_LEASE_EXPIRES,
    CONF_LEASE_WARNED,
    CONF_PRIVATE,
    CONF_SERVICE_EXTENSION,
)
# Who added a Web Push device (endpoint_policy.Trust); absent: an admin.
CONF_TRUST: Final = "trust"
# Hub option: self-registered devices may use push services on the local network.
CONF_ALLOW_LOCAL_PUSH_SERVICES: Final = "allow_local_push_services"

# The action's field that names an event across the reporter group.
ATTR_DEDUPE_KEY: Final = "dedupe_key"
# Hub options: a reporter group over MQTT (reporter.py), a section of the options
# form; off without a group name.
CONF_REPORTER: Final = "reporter"
CONF_REPORTER_GROUP: Final = "group"
CONF_REPORTER_TOPIC: Final = "topic"
CONF_REPORTER_NAME: Final = "name"
CONF_REPORTER_RANK: Final = "rank"
CONF_REPORTER_MISSING_MINUTES: Final = "missing_minutes"
DEFAULT_REPORTER_RANK: Final = 10
DEFAULT_REPORTER_MISSING_MINUTES: Final = 3
