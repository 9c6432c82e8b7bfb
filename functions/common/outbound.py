"""Outbound HTTP that cannot be pointed at the inside of the network (SSRF).

Callback URLs (and later media URLs) are user input. A request may only connect to a public
address, unless ``SHENAVA_OUTBOUND_ALLOWLIST`` lists the address's network or the host name.
The check runs on the address actually connected to: names are resolved once, inside the
connection, and the socket is opened to the address that was checked, so a DNS answer that
changes between a check and the connection (rebinding) cannot slip through. Redirects are
never followed here; callers that follow them (media URLs) re-enter this check per hop.
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
        return address.is_global and not address.is_multicast


def check_url(url: str) -> str:
    """Refuse anything but absolute http(s) URLs with a host; return the host."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"}:
        raise OutboundRefused(f"only http and https URLs are allowed, not {parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise OutboundRefused("the URL has no host")
    return parts.hostname


async def resolve_allowed(policy: OutboundPolicy, host: str, port: int) -> str:
    """The first address of ``host`` that the policy allows; refuse if any address is refused."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OutboundRefused(f"the host {host!r} cannot be resolved") from exc
    addresses = _unique(ipaddress.ip_address(info[4][0]) for info in infos)
    refused = [a for a in addresses if not policy.allows(host, a)]
    if refused or not addresses:
        raise OutboundRefused(
            f"{host} resolves to a private, loopback or link-local address ({refused[0]}); "
            "allow it with SHENAVA_OUTBOUND_ALLOWLIST"
            if refused
            else f"the host {host!r} has no address"
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
