"""Where Home Assistant may post: one policy for push endpoints.

An endpoint is a URL that someone else chose, and HA posts to it and reports
the status code back: without a policy it reaches the cloud's metadata
service, HA's own API and anything else on the network. The policy is
checked twice: on the URL when a device is added (check_endpoint), and on
every address a name resolves to when a push is sent (PolicyResolver), so a
name that later resolves somewhere refused is caught before any connection.

Plain Python and aiohttp: no Home Assistant here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
import re
import socket
from typing import Final, override

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from .validation import InputError, check_storable

MAX_ENDPOINT: Final = 1000
"""Characters: push services issue URLs of 100 to 300."""

type IPAddress = IPv4Address | IPv6Address


class Trust(StrEnum):
    """Who added a device, which decides where its endpoint may point."""

    ADMIN = "admin"
    """An admin added it in Home Assistant: their own network is theirs to use."""
    SELF_REGISTERED = "self_registered"
    """The device registered itself: public push services only, by default."""


@dataclass(frozen=True, slots=True)
class OwnServer:
    """Home Assistant's own HTTP server, never a push endpoint."""

    port: int
    addresses: frozenset[IPAddress] = frozenset()
    """Where it listens besides loopback (its LAN address, say)."""


@dataclass(frozen=True, slots=True)
class AddressRule:
    """The addresses one kind of connection may reach (see EndpointPolicy.rule)."""

    public: bool
    local: bool
    """Loopback and private networks: 10/8, 172.16/12, 192.168/16, the
    shared 100.64/10 (Tailscale) and IPv6 unique local addresses."""
    own_server: OwnServer | None = None


@dataclass(frozen=True, slots=True)
class EndpointPolicy:
    """Where one device's pushes may go."""

    trust: Trust = Trust.ADMIN
    allow_local_network: bool = False
    """The hub's "allow push services on my network" option: lets
    self-registered devices use local hosts as admin-added ones do."""
    own_server: OwnServer | None = None
    allow_http: bool = True
    """Plain http, for a local host only; a backend may forbid it outright."""

    @property
    def local_allowed(self) -> bool:
        """Return True when the device may use hosts on the local network."""
        return self.trust is Trust.ADMIN or self.allow_local_network

    def rule(self, scheme: str) -> AddressRule:
        """Return the addresses a connection for this scheme may reach.

        Plain http to a public address would send the push unencrypted across
        the internet: only https may leave the local network.
        """
        return AddressRule(
            public=scheme == "https",
            local=self.local_allowed,
            own_server=self.own_server,
        )


class EndpointRefusedError(OSError):
    """A resolved address the policy refuses; `key` says why (for logs)."""

    def __init__(self, key: str) -> None:
        """Keep the reason; never the host or address, which may be secret."""
        super().__init__(key)
        self.key = key


# What an address or name is; a refusal is an error key instead.
_PUBLIC: Final = "public"
_LOCAL: Final = "local"
_NAME: Final = "name"
"""A DNS name that looks public: its addresses are checked at send time."""

_METADATA_ADDRESSES: Final = frozenset(
    ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, Oracle, DigitalOcean, OpenStack
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.0.23",  # Tencent Cloud
        "100.100.100.200",  # Alibaba Cloud, inside the shared 100.64/10
        "192.0.0.192",  # Oracle Cloud, legacy
    )
)
# AWS's instance services (metadata fd00:ec2::254, DNS, time) sit in a
# unique local range that would otherwise count as the user's own network.
_METADATA_NETWORKS: Final = (IPv6Network("fd00:ec2::/64"),)
_METADATA_NAMES: Final = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
    }
)
_LOCAL_NETWORKS: Final = (
    IPv4Network("10.0.0.0/8"),
    IPv4Network("172.16.0.0/12"),
    IPv4Network("192.168.0.0/16"),
    IPv4Network("100.64.0.0/10"),
    IPv6Network("fc00::/7"),
)
# Names that only a local resolver answers (RFC 6762, 8375 and common
# router defaults); a single-label name is local too.
_LOCAL_SUFFIXES: Final = (".local", ".lan", ".home", ".internal", ".home.arpa")
_LOOPBACK_NAME: Final = "localhost"
# IPv4 embedded in IPv6 that connects to the IPv4 host: mapped addresses
# (the kernel's dual-stack sockets) and NAT64's well-known prefix (RFC 6052).
_NAT64: Final = IPv6Network("64:ff9b::/96")
# 0.0.0.0/8 reaches this host; ::/96 is the deprecated IPv4-compatible form.
_THIS_NETWORK: Final = IPv4Network("0.0.0.0/8")
_IPV4_COMPATIBLE: Final = IPv6Network("::/96")

# The endpoint must be one token: no whitespace or control character inside.
_SPACE_OR_CONTROL_RE: Final = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
_LABEL_RE: Final = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
# WHATWG URL and inet_aton read a host whose last label is a number as IPv4.
_NUMBER_RE: Final = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")
_OCTAL_RE: Final = re.compile(r"0[0-7]+")


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    if (mapped := address.ipv4_mapped) is not None:
        return mapped
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def classify_address(address: IPAddress) -> str:
    """Return "public", "local", or the error key that refuses the address."""
    if isinstance(address, IPv6Address):
        if address.scope_id is not None:
            # A zone only means something for link-local addresses.
            return "endpoint_address"
        if (embedded := _embedded_ipv4(address)) is not None:
            return classify_address(embedded)
    if address in _METADATA_ADDRESSES or any(
        address in network for network in _METADATA_NETWORKS
    ):
        return "endpoint_metadata"
    if address.is_loopback:
        return _LOCAL
    if (
        address.is_unspecified
        or address.is_link_local
        or address.is_multicast
        or address in _THIS_NETWORK
        or address in _IPV4_COMPATIBLE
    ):
        return "endpoint_address"
    if any(address in network for network in _LOCAL_NETWORKS):
        return _LOCAL
    # Broadcast, documentation, benchmarking, reserved, 6to4, Teredo: no
    # push service lives there.
    return _PUBLIC if address.is_global else "endpoint_address"


def _is_own_server(address: IPAddress, port: int, own: OwnServer | None) -> bool:
    if own is None or port != own.port:
        return False
    if isinstance(address, IPv6Address) and (embedded := _embedded_ipv4(address)):
        address = embedded
    return address.is_loopback or address in own.addresses


def check_address(address: str, port: int, rule: AddressRule) -> str | None:
    """Return the error key that refuses a resolved address, or None."""
    try:
        ip = ip_address(address)
    except ValueError:
        return "endpoint_address"
    kind = classify_address(ip)
    if kind not in (_PUBLIC, _LOCAL):
        return kind
    if _is_own_server(ip, port, rule.own_server):
        return "endpoint_home_assistant"
    if kind == _PUBLIC:
        return None if rule.public else "endpoint_insecure"
    return None if rule.local else "endpoint_local_network"


def _parse_ipv4(host: str) -> IPv4Address | None:
    """Read IPv4 as inet_aton and browsers do: 127.1, 0x7f.1, 0177.0.0.1, 2130706433.

    Returns None for a host that is not a number; raises ValueError for one
    that is a number but no address (256.1.1.1), which no resolver answers
    the same way.
    """
    labels = host.split(".")
    if not _NUMBER_RE.fullmatch(labels[-1]):
        return None
    if len(labels) > 4:
        raise ValueError(host)
    numbers = []
    for label in labels:
        if not _NUMBER_RE.fullmatch(label):
            raise ValueError(host)
        if label[:2].lower() == "0x":
            numbers.append(int(label[2:] or "0", 16))
        elif _OCTAL_RE.fullmatch(label):
            numbers.append(int(label, 8))
        else:
            # A leading zero with an 8 or 9 is neither octal nor decimal.
            if len(label) > 1 and label[0] == "0":
                raise ValueError(host)
            numbers.append(int(label))
    *parts, last = numbers
    if any(part > 255 for part in parts) or last >= 256 ** (4 - len(parts)):
        raise ValueError(host)
    value = last
    for index, part in enumerate(parts):
        value += part << (8 * (3 - index))
    return IPv4Address(value)


def _classify_name(name: str) -> str:
    if name in _METADATA_NAMES:
        return "endpoint_metadata"
    if "." not in name or name.endswith(_LOCAL_SUFFIXES):
        return _LOCAL
    return _NAME


def _host(url: URL) -> tuple[str, IPAddress | None]:
    """Return the host's class and, for an IP literal, its address.

    A number spelled oddly (2130706433, 0x7f.1) is classified as the address
    it means, then refused unless it is written the usual way: libraries
    disagree on such spellings, so none may reach the network.
    """
    host = (url.raw_host or "").lower()
    if ":" in host:
        try:
            address: IPAddress = IPv6Address(url.host or "")
        except ValueError:
            return "invalid_endpoint", None
        return classify_address(address), address
    name = host.removesuffix(".")
    try:
        ipv4 = _parse_ipv4(name)
    except ValueError:
        return "invalid_endpoint", None
    if ipv4 is not None:
        kind = classify_address(ipv4)
        if kind in (_PUBLIC, _LOCAL) and str(ipv4) != host:
            return "invalid_endpoint", None
        return kind, ipv4
    if len(name) > 253 or not all(_LABEL_RE.fullmatch(x) for x in name.split(".")):
        return "invalid_endpoint", None
    if name == _LOOPBACK_NAME or name.endswith(f".{_LOOPBACK_NAME}"):
        # RFC 6761: always loopback, whatever a resolver says.
        return _LOCAL, IPv4Address("127.0.0.1")
    return _classify_name(name), None


def _authority(text: str) -> str:
    return re.split(r"[/?#]", text.partition("://")[2], maxsplit=1)[0]


def check_endpoint(
    endpoint: str, policy: EndpointPolicy, field: str = "endpoint"
) -> URL:
    """Check an endpoint URL against the policy; return it parsed, as aiohttp will use it.

    Surrounding whitespace (from copying) is dropped. A DNS name passes here
    if it may be fine; PolicyResolver checks its addresses when sending.
    """
    text = endpoint.strip()
    if len(text) > MAX_ENDPOINT:
        raise InputError(field, "invalid_endpoint")
    check_storable(text, field)
    if _SPACE_OR_CONTROL_RE.search(text):
        raise InputError(field, "endpoint_whitespace")
    if "@" in _authority(text):
        # Even an empty user: aiohttp would send it as Basic credentials.
        raise InputError(field, "endpoint_credentials")
    try:
        url = URL(text)
        port = url.port
        url.host  # noqa: B018 (decodes an international name, or raises)
    except ValueError:  # UnicodeError too: a bad international name
        raise InputError(field, "invalid_endpoint") from None
    if url.scheme not in ("https", "http") or (
        url.scheme == "http" and not policy.allow_http
    ):
        raise InputError(field, "endpoint_scheme")
    if not url.raw_host or not port:
        raise InputError(field, "invalid_endpoint")
    kind, address = _host(url)
    if kind not in (_PUBLIC, _LOCAL, _NAME):
        raise InputError(field, kind)
    if address is not None and _is_own_server(address, port, policy.own_server):
        raise InputError(field, "endpoint_home_assistant")
    if kind == _LOCAL and not policy.local_allowed:
        raise InputError(field, "endpoint_local_network")
    if kind != _LOCAL and url.scheme == "http":
        raise InputError(field, "endpoint_insecure")
    return url


class PolicyResolver(AbstractResolver):
    """Resolve with another resolver, refusing any answer the rule forbids.

    The connector connects only to addresses this returned, and caches only
    what it returned: what was checked is what is reached, with no gap for a
    name to change its answer. A single refused address refuses the name, so
    a name cannot mix a public answer with a private one.
    """

    def __init__(self, resolver: AbstractResolver, rule: AddressRule) -> None:
        """Wrap a resolver this does not own (it is not closed here)."""
        self._resolver = resolver
        self._rule = rule

    @override
    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        for result in results:
            if key := check_address(result["host"], port, self._rule):
                raise EndpointRefusedError(key)
        return results

    @override
    async def close(self) -> None:
        """Leave the wrapped resolver open: it is shared."""
