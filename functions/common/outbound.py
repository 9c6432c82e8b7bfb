"""Outbound HTTP that cannot be pointed at the inside of the network (SSRF).

Callback URLs (and later media URLs) are user input. A request may only connect to a public
address, unless ``SHENAVA_OUTBOUND_ALLOWLIST`` lists the address's network or the host name.
The check runs on the address actually connected to: names are resolved once, inside the
connection, and the socket is opened to the address that was checked, so a DNS answer that
changes between a check and the connection (rebinding) cannot slip through. Redirects are
never followed here; callers that follow them (media URLs) re-enter this check per hop.

IPv6 addresses that carry an IPv4 address (IPv4-mapped and -compatible, NAT64 ``64:ff9b::/96``,
6to4 ``2002::/16``, Teredo ``2001::/32``) are judged by the IPv4 address they lead to as well:
``64:ff9b::a9fe:a9fe`` reaches 169.254.169.254 through a NAT64 gateway. Local-use NAT64
(``64:ff9b:1::/48``) is refused outright.

``check_target(url, policy)`` runs the whole guard (syntax, scheme, host, every resolved address)
without connecting: entry points call it when a URL is submitted, so a URL that would be refused
at delivery is refused at submit with a 400.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from functions.common.errors import OutboundRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to (mapped, compatible, NAT64, 6to4, Teredo)."""
    if isinstance(address, ipaddress.IPv4Address):
        return []
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address in NAT64_WELL_KNOWN or (address in IPV4_COMPATIBLE and int(address) > 1):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)  # (server, client)
    return found


def _public(address: IPAddress) -> bool:
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address in NAT64_LOCAL_USE:
        return False
    return all(inner.is_global and not inner.is_multicast for inner in embedded_ipv4(address))


@dataclass(frozen=True)
class OutboundPolicy:
    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, allowlist: str) -> OutboundPolicy:
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in (e.strip() for e in allowlist.split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    def allows(self, host: str, address: IPAddress) -> bool:
        if host.lower().rstrip(".") in self.hosts:
            return True
        if any(address in network for network in self.networks):
            return True
        return _public(address)


def check_url(url: str) -> str:
    """Refuse anything but well-formed absolute http(s) URLs with a host; return the host.

    The URL is parsed the way the HTTP client will parse it (httpx), so a URL it would refuse
    to send (``http://012.0.0.1/``: an ambiguous IPv4 address) is refused here, as a value."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise OutboundRefused(f"the URL is malformed: {exc}") from exc
    scheme = urlsplit(url).scheme
    if scheme not in {"http", "https"} or parsed.scheme not in {"http", "https"}:
        raise OutboundRefused(f"only http and https URLs are allowed, not {scheme or 'none'!r}")
    if not parsed.host:
        raise OutboundRefused("the URL has no host")
    return parsed.host


class Unresolvable(OutboundRefused):
    """The host has no address now (DNS may be down: a delivery retries, a submit accepts it)."""


async def check_target(url: str, policy: OutboundPolicy) -> None:
    """The guard a request to ``url`` would meet, run without connecting: a well-formed http(s)
    URL whose host resolves only to addresses the policy allows. Raises ``OutboundRefused``;
    a host that does not resolve now passes (it is refused, or not, when it is called).

    The connection is checked again when it is made (DNS may answer differently by then)."""
    host = check_url(url)
    parsed = httpx.URL(url)
    try:
        await resolve_allowed(policy, host, parsed.port or (443 if parsed.scheme == "https" else 80))
    except Unresolvable:
        return


async def resolve_allowed(policy: OutboundPolicy, host: str, port: int) -> str:
    """The first address of ``host`` that the policy allows; refuse if any address is refused."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as exc:  # gaierror; a name IDNA cannot encode
        raise Unresolvable(f"the host {host!r} cannot be resolved") from exc
    addresses = _unique(ipaddress.ip_address(info[4][0]) for info in infos)
    refused = [a for a in addresses if not policy.allows(host, a)]
    if not addresses:
        raise Unresolvable(f"the host {host!r} has no address")
    if refused:
        raise OutboundRefused(
            f"{host} resolves to a private, loopback or link-local address ({refused[0]}); "
            "allow it with SHENAVA_OUTBOUND_ALLOWLIST"
        )
    return str(addresses[0])


def _unique(addresses: Iterable[IPAddress]) -> list[IPAddress]:
    seen: list[IPAddress] = []
    for address in addresses:
        if address not in seen:
            seen.append(address)
    return seen


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks, then connects to the checked address."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        address = await resolve_allowed(self._policy, host, port)
        return await self._inner.connect_tcp(
            address,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise OutboundRefused("unix sockets are not an outbound target")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, policy: OutboundPolicy) -> None:
        super().__init__(retries=0)
        # httpx has no public hook for the network backend; its pool is the documented
        # httpcore one, so swap in a pool built on the guarded backend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=GuardedNetworkBackend(policy)
        )


def outbound_client(allowlist: str, timeout_s: float = 10.0) -> httpx.AsyncClient:
    """An HTTP client for user-given URLs: guarded, no redirects, no proxies from the env."""
    return httpx.AsyncClient(
        transport=GuardedTransport(OutboundPolicy.parse(allowlist)),
        follow_redirects=False,
        trust_env=False,
        timeout=timeout_s,
        headers={"User-Agent": "Shenava/0.1"},
    )
