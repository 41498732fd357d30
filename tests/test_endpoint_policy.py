"""Where Home Assistant may post: the endpoint policy, URL by URL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from ipaddress import ip_address
import logging
from typing import Any

from aiohttp import TCPConnector
from homeassistant.components.http import ApiConfig
from homeassistant.config_entries import ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.direct_push.const import CONF_ALLOW_LOCAL_PUSH_SERVICES, DOMAIN
from custom_components.direct_push.endpoint_policy import (
    MAX_ENDPOINT,
    AddressRule,
    EndpointPolicy,
    EndpointRefusedError,
    OwnServer,
    PolicyResolver,
    Trust,
    check_address,
    check_endpoint,
)
from custom_components.direct_push.validation import InputError

from .apns_server import ApnsTestCredentials
from .conftest import VAPID_PUBLIC_KEY, StaticResolver, token_entry_data, webpush_device
from .webpush_server import WebPushServer

ADMIN = EndpointPolicy()
SELF = EndpointPolicy(trust=Trust.SELF_REGISTERED)
SELF_LOCAL = EndpointPolicy(trust=Trust.SELF_REGISTERED, allow_local_network=True)
HTTPS_ONLY = EndpointPolicy(allow_http=False)
# Home Assistant on port 8123, at 192.168.1.10 on the LAN.
HA = OwnServer(8123, frozenset({ip_address("192.168.1.10")}))
WITH_HA = EndpointPolicy(own_server=HA)

ACCEPTED = [
    # Public push services, over https.
    ("https://fcm.googleapis.com/fcm/send/dGVzdA:APA91b", ADMIN),
    ("https://updates.push.services.mozilla.com/wpush/v2/gAAAAA", ADMIN),
    ("https://web.push.apple.com/QGuQyavXutnMH", ADMIN),
    ("https://ntfy.sh/upAbCdEf?up=1", ADMIN),
    ("https://ntfy.sh/upAbCdEf?up=1", SELF),
    ("https://push.example.com:8443/x", SELF),
    ("https://8.8.8.8/x", SELF),
    ("https://[2606:4700:4700::1111]/x", SELF),
    ("https://bücher.example/x", ADMIN),  # an international name
    ("HTTPS://NTFY.SH/x", ADMIN),
    ("  https://ntfy.sh/x\n", ADMIN),  # copied with whitespace around it
    ("https://ntfy.sh./x", ADMIN),  # a fully qualified name
    ("https://ntfy.sh/x?a=b#frag", ADMIN),
    # An admin's own network: plain http or https.
    ("http://192.168.1.5:2586/upAbC", ADMIN),
    ("http://10.0.0.2/up", ADMIN),
    ("http://172.16.0.1/up", ADMIN),
    ("http://172.31.255.255/up", ADMIN),
    ("http://100.64.1.2/up", ADMIN),  # Tailscale
    ("http://[fd12:3456:789a::1]:8080/up", ADMIN),
    ("http://127.0.0.1:2586/up", ADMIN),  # ntfy on the same machine
    ("http://[::1]:2586/up", ADMIN),
    ("http://[::ffff:127.0.0.1]:2586/up", ADMIN),
    ("http://localhost:2586/up", ADMIN),
    ("http://ntfy.local/up", ADMIN),
    ("http://ntfy.lan/up", ADMIN),
    ("http://ntfy.home.arpa/up", ADMIN),
    ("http://ntfy.internal/up", ADMIN),
    ("http://ntfy/up", ADMIN),  # a single-label name
    ("https://ntfy.local/up", ADMIN),
    ("https://192.168.1.5/up", ADMIN),
    ("http://[64:ff9b::c0a8:105]/up", ADMIN),  # NAT64 of 192.168.1.5
    # A self-registered device, with the hub's option on.
    ("https://192.168.1.5/up", SELF_LOCAL),
    ("http://ntfy.local:2586/up", SELF_LOCAL),
    # Home Assistant's port elsewhere, or another port on its host.
    ("http://192.168.1.10:2586/up", WITH_HA),
    ("http://192.168.1.11:8123/up", WITH_HA),
    ("http://127.0.0.1:8123/up", ADMIN),  # no HTTP server known
    ("https://ntfy.sh:8123/up", WITH_HA),
]


@pytest.mark.parametrize(("url", "policy"), ACCEPTED)
def test_accepted(url: str, policy: EndpointPolicy) -> None:
    parsed = check_endpoint(url, policy)
    assert parsed.scheme in ("http", "https")
    assert str(parsed).lower().startswith(url.strip().lower()[:8])


REFUSED = [
    # Credentials: aiohttp raised for every send that included the device.
    ("https://user:pass@ntfy.sh/up", ADMIN, "endpoint_credentials"),
    ("https://user@ntfy.sh/up", ADMIN, "endpoint_credentials"),
    ("https://:@ntfy.sh/up", ADMIN, "endpoint_credentials"),
    ("https://@ntfy.sh/up", ADMIN, "endpoint_credentials"),
    ("https://ntfy.sh\\@evil.example/up", ADMIN, "endpoint_credentials"),
    # Whitespace and controls inside.
    ("https://ntfy.sh/up\r\nX-Injected: 1", ADMIN, "endpoint_whitespace"),
    ("https://ntfy.sh/a b", ADMIN, "endpoint_whitespace"),
    ("https://ntfy.sh/\ta", ADMIN, "endpoint_whitespace"),
    ("https://ntfy.sh/\x00", ADMIN, "endpoint_whitespace"),
    ("https://ntfy.sh/a\u00a0b", ADMIN, "endpoint_whitespace"),
    ("https://ntfy.sh/a\u2028b", ADMIN, "endpoint_whitespace"),
    ("https://ntf y.sh/", ADMIN, "endpoint_whitespace"),
    # The endpoint that broke Home Assistant's storage.
    ("https://ntfy.sh/up\ud800", ADMIN, "lone_surrogate"),
    # Schemes.
    ("ftp://ntfy.sh/up", ADMIN, "endpoint_scheme"),
    ("ws://ntfy.sh/up", ADMIN, "endpoint_scheme"),
    ("file:///etc/passwd", ADMIN, "endpoint_scheme"),
    ("javascript:alert(1)", ADMIN, "endpoint_scheme"),
    ("data:text/plain,hi", ADMIN, "endpoint_scheme"),
    ("ntfy.sh/up", ADMIN, "endpoint_scheme"),
    ("", ADMIN, "endpoint_scheme"),
    ("http://192.168.1.5/up", HTTPS_ONLY, "endpoint_scheme"),
    # Plain http leaves the network only encrypted.
    ("http://ntfy.sh/up", ADMIN, "endpoint_insecure"),
    ("http://8.8.8.8/up", ADMIN, "endpoint_insecure"),
    ("http://[2606:4700::1]/up", ADMIN, "endpoint_insecure"),
    ("http://ntfy.sh/up", SELF, "endpoint_insecure"),
    # Link-local, unspecified, multicast, broadcast, reserved.
    ("http://169.254.1.1/", ADMIN, "endpoint_address"),
    ("http://[fe80::1]/", ADMIN, "endpoint_address"),
    ("http://[fe80::1%25eth0]/", ADMIN, "endpoint_address"),
    ("http://[fd12::1%25eth0]/", ADMIN, "endpoint_address"),
    ("http://0.0.0.0:8080/", ADMIN, "endpoint_address"),
    ("http://0/", ADMIN, "endpoint_address"),
    ("http://0.1.2.3/", ADMIN, "endpoint_address"),
    ("http://[::]/", ADMIN, "endpoint_address"),
    ("http://[::ffff:0.0.0.0]/", ADMIN, "endpoint_address"),
    ("http://[::7f00:1]/", ADMIN, "endpoint_address"),  # IPv4-compatible
    ("http://224.0.0.1/", ADMIN, "endpoint_address"),
    ("http://[ff02::1]/", ADMIN, "endpoint_address"),
    ("http://255.255.255.255/", ADMIN, "endpoint_address"),
    ("https://240.0.0.1/", ADMIN, "endpoint_address"),
    ("https://192.0.2.1/", ADMIN, "endpoint_address"),  # documentation
    ("https://198.18.0.1/", ADMIN, "endpoint_address"),  # benchmarking
    ("https://[2001:db8::1]/", ADMIN, "endpoint_address"),
    ("https://[2002:c000:201::1]/", ADMIN, "endpoint_address"),  # 6to4
    # Cloud metadata, however it is spelled.
    ("http://169.254.169.254/latest/meta-data/", ADMIN, "endpoint_metadata"),
    ("https://169.254.169.254/", SELF_LOCAL, "endpoint_metadata"),
    ("http://169.254.170.2/v2/credentials", ADMIN, "endpoint_metadata"),
    ("http://[fd00:ec2::254]/latest/meta-data/", ADMIN, "endpoint_metadata"),
    ("http://100.100.100.200/latest/meta-data/", ADMIN, "endpoint_metadata"),
    ("http://metadata.google.internal/computeMetadata/v1/", ADMIN, "endpoint_metadata"),
    ("https://METADATA.GOOGLE.INTERNAL./", ADMIN, "endpoint_metadata"),
    ("http://metadata/computeMetadata/v1/", ADMIN, "endpoint_metadata"),
    ("http://instance-data/latest/", ADMIN, "endpoint_metadata"),
    ("http://[::ffff:169.254.169.254]/", ADMIN, "endpoint_metadata"),
    ("http://[::ffff:a9fe:a9fe]/", ADMIN, "endpoint_metadata"),
    ("http://[64:ff9b::a9fe:a9fe]/", ADMIN, "endpoint_metadata"),
    ("http://2852039166/", ADMIN, "endpoint_metadata"),  # decimal
    ("http://0xa9fea9fe/", ADMIN, "endpoint_metadata"),  # hex
    ("http://0251.0376.0251.0376/", ADMIN, "endpoint_metadata"),  # octal
    ("http://169.254.43518/", ADMIN, "endpoint_metadata"),  # two parts
    # Odd spellings of allowed addresses: libraries disagree, so refused.
    ("http://2130706433/", ADMIN, "invalid_endpoint"),
    ("http://0x7f.1/", ADMIN, "invalid_endpoint"),
    ("http://0177.0.0.1/", ADMIN, "invalid_endpoint"),
    ("http://127.1/", ADMIN, "invalid_endpoint"),
    ("http://0x7f000001/", ADMIN, "invalid_endpoint"),
    ("http://017700000001/", ADMIN, "invalid_endpoint"),
    ("http://127.0.0.1./", ADMIN, "invalid_endpoint"),
    ("http://192.168.1.0x/", ADMIN, "invalid_endpoint"),
    ("https://①②⑦.0.0.1/", SELF, "endpoint_local_network"),  # IDNA makes it 127.0.0.1
    # Numbers that are no address.
    ("http://256.1.1.1/", ADMIN, "invalid_endpoint"),
    ("http://1.2.3.4.5/", ADMIN, "invalid_endpoint"),
    ("http://08.1.1.1/", ADMIN, "invalid_endpoint"),
    ("http://1.2.3.4294967296/", ADMIN, "invalid_endpoint"),
    ("http://a.1/", ADMIN, "invalid_endpoint"),
    # Home Assistant's own server.
    ("http://127.0.0.1:8123/api/states", WITH_HA, "endpoint_home_assistant"),
    ("http://127.0.0.2:8123/api/", WITH_HA, "endpoint_home_assistant"),
    ("http://localhost:8123/api/", WITH_HA, "endpoint_home_assistant"),
    ("http://[::1]:8123/api/", WITH_HA, "endpoint_home_assistant"),
    ("http://[::ffff:127.0.0.1]:8123/api/", WITH_HA, "endpoint_home_assistant"),
    ("http://192.168.1.10:8123/auth/token", WITH_HA, "endpoint_home_assistant"),
    ("https://192.168.1.10:8123/", WITH_HA, "endpoint_home_assistant"),
    (
        "http://127.0.0.1/",
        EndpointPolicy(own_server=OwnServer(80)),
        "endpoint_home_assistant",
    ),
    # Self-registered devices: public push services only.
    ("https://192.168.1.5/up", SELF, "endpoint_local_network"),
    ("https://127.0.0.1:2586/up", SELF, "endpoint_local_network"),
    ("https://localhost/up", SELF, "endpoint_local_network"),
    ("https://sub.localhost/up", SELF, "endpoint_local_network"),
    ("https://ntfy.local/up", SELF, "endpoint_local_network"),
    ("https://ntfy/up", SELF, "endpoint_local_network"),
    ("https://[fd00::1]/up", SELF, "endpoint_local_network"),
    ("https://100.64.0.1/up", SELF, "endpoint_local_network"),
    ("http://192.168.1.5/up", SELF, "endpoint_local_network"),
    ("https://[::ffff:10.0.0.1]/up", SELF, "endpoint_local_network"),
    # Not a URL one can post to.
    ("https://", ADMIN, "invalid_endpoint"),
    ("https:///path", ADMIN, "invalid_endpoint"),
    ("https:ntfy.sh/up", ADMIN, "invalid_endpoint"),
    ("https://ntfy.sh:99999/", ADMIN, "invalid_endpoint"),
    ("https://ntfy.sh:0/", ADMIN, "invalid_endpoint"),
    ("https://ntfy.sh:abc/", ADMIN, "invalid_endpoint"),
    ("https://a..b/", ADMIN, "invalid_endpoint"),
    ("https://-a.example/", ADMIN, "invalid_endpoint"),
    ("https://%31%32%37.0.0.1/", ADMIN, "invalid_endpoint"),
    ("https://xn--zz/", ADMIN, "invalid_endpoint"),
    ("https://[::1/", ADMIN, "invalid_endpoint"),
    ("https://[zz::1]/", ADMIN, "invalid_endpoint"),
    ("https://" + "a" * 64 + ".example/", ADMIN, "invalid_endpoint"),
    ("https://ntfy.sh/" + "x" * MAX_ENDPOINT, ADMIN, "invalid_endpoint"),
]


@pytest.mark.parametrize(("url", "policy", "key"), REFUSED)
def test_refused(url: str, policy: EndpointPolicy, key: str) -> None:
    with pytest.raises(InputError) as info:
        check_endpoint(url, policy, field="subscription")
    assert (info.value.field, info.value.key) == ("subscription", key)


def test_the_url_returned_is_what_aiohttp_posts_to() -> None:
    url = check_endpoint(" https://bücher.example:8443/up?x=1 ", ADMIN)
    assert (url.raw_host, url.port, url.path_qs) == (
        "xn--bcher-kva.example",
        8443,
        "/up?x=1",
    )


HTTPS_ADMIN = ADMIN.rule("https")
HTTP_ADMIN = ADMIN.rule("http")
HTTPS_SELF = SELF.rule("https")
HTTPS_HA = WITH_HA.rule("https")


def test_rules() -> None:
    assert (HTTPS_ADMIN.public, HTTPS_ADMIN.local) == (True, True)
    assert (HTTP_ADMIN.public, HTTP_ADMIN.local) == (False, True)
    assert (HTTPS_SELF.public, HTTPS_SELF.local) == (True, False)
    assert SELF_LOCAL.rule("https") == HTTPS_ADMIN
    assert HTTPS_HA.own_server == HA


@pytest.mark.parametrize(
    ("address", "port", "rule", "key"),
    [
        ("8.8.8.8", 443, HTTPS_ADMIN, None),
        ("2606:4700::1111", 443, HTTPS_SELF, None),
        ("192.168.1.5", 80, HTTP_ADMIN, None),
        ("127.0.0.1", 2586, HTTP_ADMIN, None),
        ("fd12::1", 443, HTTPS_ADMIN, None),
        ("64:ff9b::808:808", 443, HTTPS_SELF, None),  # NAT64 of 8.8.8.8
        ("8.8.8.8", 80, HTTP_ADMIN, "endpoint_insecure"),
        ("192.168.1.5", 443, HTTPS_SELF, "endpoint_local_network"),
        ("127.0.0.1", 443, HTTPS_SELF, "endpoint_local_network"),
        ("::1", 443, HTTPS_SELF, "endpoint_local_network"),
        ("::ffff:127.0.0.1", 443, HTTPS_SELF, "endpoint_local_network"),
        ("64:ff9b::7f00:1", 443, HTTPS_SELF, "endpoint_local_network"),
        ("127.0.0.1", 8123, HTTPS_HA, "endpoint_home_assistant"),
        ("::ffff:127.0.0.1", 8123, HTTPS_HA, "endpoint_home_assistant"),
        ("192.168.1.10", 8123, HTTPS_HA, "endpoint_home_assistant"),
        ("192.168.1.10", 443, HTTPS_HA, None),
        ("169.254.169.254", 80, HTTPS_ADMIN, "endpoint_metadata"),
        ("100.100.100.200", 80, HTTPS_ADMIN, "endpoint_metadata"),
        ("fd00:ec2::254", 80, HTTPS_ADMIN, "endpoint_metadata"),
        ("169.254.1.1", 443, HTTPS_ADMIN, "endpoint_address"),
        ("fe80::1%eth0", 443, HTTPS_ADMIN, "endpoint_address"),
        ("0.0.0.0", 443, HTTPS_ADMIN, "endpoint_address"),  # noqa: S104
        ("::", 443, HTTPS_ADMIN, "endpoint_address"),
        ("239.255.255.250", 443, HTTPS_ADMIN, "endpoint_address"),
        ("255.255.255.255", 443, HTTPS_ADMIN, "endpoint_address"),
        ("not an address", 443, HTTPS_ADMIN, "endpoint_address"),
    ],
)
def test_check_address(
    address: str, port: int, rule: AddressRule, key: str | None
) -> None:
    assert check_address(address, port, rule) == key


HOSTS = {
    "push.example": ["8.8.8.8", "2606:4700::1111"],
    "ntfy.lan": ["192.168.1.5"],
    "rebound.example": ["8.8.8.8", "127.0.0.1"],
    "metadata.example": ["169.254.169.254"],
    "ha.lan": ["192.168.1.10"],
}


@pytest.mark.parametrize(
    ("host", "port", "rule", "key"),
    [
        ("push.example", 443, HTTPS_SELF, None),
        ("ntfy.lan", 80, HTTP_ADMIN, None),
        ("ha.lan", 2586, HTTPS_HA, None),
        ("push.example", 80, HTTP_ADMIN, "endpoint_insecure"),
        ("ntfy.lan", 443, HTTPS_SELF, "endpoint_local_network"),
        # One refused answer refuses the name.
        ("rebound.example", 443, HTTPS_SELF, "endpoint_local_network"),
        ("metadata.example", 443, HTTPS_ADMIN, "endpoint_metadata"),
        ("ha.lan", 8123, HTTPS_HA, "endpoint_home_assistant"),
    ],
)
async def test_policy_resolver(
    host: str, port: int, rule: AddressRule, key: str | None
) -> None:
    hosts = StaticResolver(HOSTS)
    resolver = PolicyResolver(hosts, rule)
    if key is None:
        results = await resolver.resolve(host, port)
        assert [result["host"] for result in results] == HOSTS[host]
    else:
        with pytest.raises(EndpointRefusedError) as info:
            await resolver.resolve(host, port)
        assert info.value.key == key
        assert str(info.value) == key  # the reason, never the host or address
    await resolver.close()
    assert not hosts.closed  # the wrapped resolver is shared


async def test_policy_resolver_passes_resolution_errors_on() -> None:
    with pytest.raises(OSError, match="no address"):
        await PolicyResolver(StaticResolver({}), HTTPS_ADMIN).resolve(
            "unknown.example", 443
        )


# At send time, through the Web Push backend: a real receiver on 127.0.0.1,
# reached by name through Home Assistant's resolver (the `dns` fixture).

PUSH_HOST = "ntfy.lan"

type Load = Callable[..., Awaitable[MockConfigEntry]]


@pytest.fixture
async def receiver(socket_enabled: None) -> AsyncIterator[WebPushServer]:
    """A push service known by name, listening on 127.0.0.1."""
    async with WebPushServer(PUSH_HOST) as server:
        yield server


@pytest.fixture
async def load(
    dns: StaticResolver, hass: HomeAssistant, apns_credentials: ApnsTestCredentials
) -> AsyncIterator[Load]:
    """Set up a hub with the given devices and options; unload it afterwards."""
    entries: list[MockConfigEntry] = []

    async def _load(
        devices: list[ConfigSubentryData], options: dict[str, Any] | None = None
    ) -> MockConfigEntry:
        entry = MockConfigEntry(
            domain=DOMAIN,
            title="Direct Push",
            data=token_entry_data(apns_credentials),
            subentries_data=devices,
            options=options or {},
            minor_version=2,
        )
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        entries.append(entry)
        return entry

    yield _load
    for entry in entries:
        await hass.config_entries.async_unload(entry.entry_id)


async def _rows(hass: HomeAssistant, **fields: Any) -> dict[str, tuple[str, str]]:
    """Send to everyone; return each device's (status, reason)."""
    response = await hass.services.async_call(
        DOMAIN, "send", {"message": "Hi", **fields}, blocking=True, return_response=True
    )
    assert response is not None
    rows: list[dict[str, Any]] = response["deliveries"]  # type: ignore[assignment]
    return {row["device"]: (row["status"], row["reason"]) for row in rows}


def _set_dns(hass: HomeAssistant, dns: StaticResolver, *addresses: str) -> None:
    """Point PUSH_HOST elsewhere, as its DNS record changing would."""
    dns.table[PUSH_HOST] = list(addresses)
    # Home Assistant's connector caches answers for 10 seconds.
    connector = async_get_clientsession(hass).connector
    assert isinstance(connector, TCPConnector)
    connector.clear_dns_cache()


DELIVERED = ("delivered", None)
REFUSED_ROW = ("failed", "endpoint_refused")


async def test_a_name_is_checked_at_every_send(
    hass: HomeAssistant,
    dns: StaticResolver,
    load: Load,
    receiver: WebPushServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A name that later resolves somewhere refused is caught before connecting.

    A pooled connection stays with the address it was checked at; the receiver
    closes each one here, so every push opens and resolves a new connection.
    """
    caplog.set_level(logging.DEBUG, logger="custom_components.direct_push")
    receiver.keep_alive = False
    sub = receiver.subscribe("Frank", application_server_key=VAPID_PUBLIC_KEY)
    assert sub.endpoint.startswith(f"http://{PUSH_HOST}:")
    _set_dns(hass, dns, "127.0.0.1")
    await load([webpush_device("Frank", sub)])

    assert await _rows(hass) == {"Frank": DELIVERED}
    assert len(receiver.messages_for(sub)) == 1

    for addresses in (
        ["169.254.169.254"],  # cloud metadata
        ["127.0.0.1", "169.254.169.254"],  # one refused answer is enough
        ["8.8.8.8"],  # public, but this endpoint is plain http
        ["0.0.0.0"],  # noqa: S104 (this host)
        ["fe80::1"],
    ):
        _set_dns(hass, dns, *addresses)
        assert await _rows(hass) == {"Frank": REFUSED_ROW}, addresses
    # Refused before any connection, and not retried.
    assert receiver.requests == 1

    _set_dns(hass, dns, "127.0.0.1")
    assert await _rows(hass) == {"Frank": DELIVERED}
    assert len(receiver.messages_for(sub)) == 2
    # The log says why, never where: the endpoint is the device's secret.
    logged = "\n".join(
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("custom_components")
    )
    assert "Web Push endpoint refused: endpoint_metadata" in logged
    assert sub.id not in logged
    assert "169.254.169.254" not in logged


async def test_home_assistant_itself_is_refused(
    hass: HomeAssistant, dns: StaticResolver, load: Load, receiver: WebPushServer
) -> None:
    """Home Assistant's own server, by address or by a name that resolves to it."""
    # Direct Push sets http up; then Home Assistant "listens" on the port.
    assert await async_setup_component(hass, "http", {})
    hass.config.api = ApiConfig("127.0.0.1", "0.0.0.0", receiver.port, False)  # noqa: S104
    _set_dns(hass, dns, "127.0.0.1")
    by_name = receiver.subscribe("By name", application_server_key=VAPID_PUBLIC_KEY)
    by_address = by_name.endpoint.replace(PUSH_HOST, "127.0.0.1")
    localhost = by_name.endpoint.replace(PUSH_HOST, "localhost")
    entry = await load(
        [
            webpush_device("By name", by_name),
            webpush_device("By address", by_name, endpoint=by_address),
            webpush_device("Localhost", by_name, endpoint=localhost),
        ]
    )

    assert await _rows(hass) == dict.fromkeys(
        ("By name", "By address", "Localhost"), REFUSED_ROW
    )
    assert receiver.requests == 0

    # Without an HTTP server of its own, that port is just a local service.
    hass.config.api = None
    await hass.config_entries.async_reload(entry.entry_id)
    assert await _rows(hass, target="By name") == {"By name": DELIVERED}


async def test_self_registered_devices_get_public_services_only(
    hass: HomeAssistant, dns: StaticResolver, load: Load, receiver: WebPushServer
) -> None:
    sub = receiver.subscribe("Gina", application_server_key=VAPID_PUBLIC_KEY)
    _set_dns(hass, dns, "127.0.0.1")
    dns.table["push.example"] = ["127.0.0.1"]
    looks_public = sub.endpoint.replace(f"http://{PUSH_HOST}", "https://push.example")
    entry = await load(
        [
            webpush_device("Gina", sub, trust=Trust.SELF_REGISTERED),
            # A public-looking name that resolves to this machine.
            webpush_device("Hal", sub, endpoint=looks_public, trust="anything else"),
            webpush_device("Admin's", sub, trust=Trust.ADMIN),
        ]
    )
    assert await _rows(hass) == {
        "Gina": REFUSED_ROW,
        "Hal": REFUSED_ROW,
        "Admin's": DELIVERED,
    }
    assert receiver.requests == 1

    # The hub's option lets them use push services on the local network.
    hass.config_entries.async_update_entry(
        entry, options={CONF_ALLOW_LOCAL_PUSH_SERVICES: True}
    )
    await hass.async_block_till_done()
    rows = await _rows(hass, target=["Gina", "Admin's"])
    assert rows == {"Gina": DELIVERED, "Admin's": DELIVERED}


async def test_a_bad_stored_endpoint_fails_only_its_device(
    hass: HomeAssistant, dns: StaticResolver, load: Load, receiver: WebPushServer
) -> None:
    """Endpoints stored before the policy existed: one row each, never an exception.

    (Not one with a lone surrogate: Home Assistant cannot even save an entry
    holding one, which is why the forms refuse it.)
    """
    _set_dns(hass, dns, "127.0.0.1")
    sub = receiver.subscribe("Dana", application_server_key=VAPID_PUBLIC_KEY)
    bad = {
        "Credentials": sub.endpoint.replace("http://", "http://user:pass@"),
        "CRLF": sub.endpoint + "\r\nX-Injected: 1",
        "Metadata": "http://169.254.169.254/latest/meta-data/",
        "Decimal": "http://2130706433/api/",
        "Scheme": "ftp://ntfy.lan/x",
    }
    await load(
        [
            webpush_device("Dana", sub),
            *(webpush_device(name, sub, endpoint=url) for name, url in bad.items()),
        ]
    )

    assert await _rows(hass, target="all") == {
        "Dana": DELIVERED,
        **dict.fromkeys(bad, REFUSED_ROW),
    }
    assert receiver.requests == 1
