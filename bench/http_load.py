"""A small asynchronous HTTP/1.1 load generator for loopback servers (used by ``bench.api_load``).

Each client holds one keep-alive connection and sends its requests one after another, so N clients
keep N requests in flight. A run ends when its time is up or its request budget is spent, which
ever comes first. The client is a few lines over asyncio streams rather than an HTTP library: the
generator shares the machine's cores with the server it measures, and the less it costs per
request, the less it distorts what it measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

CHUNK_END = b"0\r\n\r\n"


@dataclass(frozen=True)
class Call:
    """One request: method, path (with its query), headers and body."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def encode(self, host: str) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.body or self.method in {"POST", "PUT"}:
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


@dataclass
class Outcome:
    """What one endpoint did under one load."""

    clients: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        """Seconds; ``fraction`` 0.5 is the median."""
        if not self.latencies:
            return float("nan")
        if len(self.latencies) == 1:
            return self.latencies[0]
        cuts = statistics.quantiles(self.latencies, n=1000, method="inclusive")
        return cuts[min(len(cuts) - 1, max(0, round(fraction * 1000) - 1))]

    def failures(self, expected: set[int]) -> int:
        return sum(count for status, count in self.statuses.items() if status not in expected)


def require_loopback(host: str) -> None:
    """The generator only loads this machine: a name must resolve to loopback addresses only."""
    addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    if not addresses or not all(ipaddress.ip_address(a).is_loopback for a in addresses):
        raise ValueError(f"{host} is not a loopback address; the load generator only loads this machine")


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def send(self, request: bytes) -> int:
        """Send one request and read its whole response; its status."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, chunked = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            await self._chunks()
        elif length:
            await self.reader.readexactly(length)
        return status

    async def _chunks(self) -> None:
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await self.reader.readexactly(size + 2)
            if size == 0:
                return

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


async def load(
    host: str, port: int, next_call: Callable[[int], Call], clients: int, seconds: float, budget: int
) -> Outcome:
    """``clients`` connections sending ``next_call(n)`` (n counts every request of the run) until
    ``seconds`` have passed or ``budget`` requests were sent."""
    require_loopback(host)
    outcome = Outcome(clients=clients)
    connections = [await Connection.open(host, port) for _ in range(clients)]
    encoded: dict[Call, bytes] = {}
    sent = 0
    started = time.perf_counter()
    deadline = started + seconds

    async def client(connection: Connection) -> None:
        nonlocal sent
        while sent < budget and time.perf_counter() < deadline:
            call = next_call(sent)
            sent += 1
            request = encoded.get(call) or encoded.setdefault(call, call.encode(host))
            begun = time.perf_counter()
            status = await connection.send(request)
            outcome.latencies.append(time.perf_counter() - begun)
            outcome.statuses[status] = outcome.statuses.get(status, 0) + 1

    try:
        await asyncio.gather(*(client(c) for c in connections))
    finally:
        outcome.seconds = time.perf_counter() - started
        for connection in connections:
            await connection.close()
    return outcome
