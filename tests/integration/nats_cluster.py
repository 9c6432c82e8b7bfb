"""A three-node JetStream cluster on loopback: the ``nats-server`` binary from the venv, three
processes with their own client port, route port and store, one cluster name, routes to one
another, and a user and password, as a production cluster would have (routes need no password
here: they listen on loopback only)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

import nats

from events.bus import nats_servers
from infra.ports import free_port
from infra.probes import jetstream_ready
from infra.processes import spawn, terminate, venv_executable

USER, PASSWORD = "shenava", "cluster-password"
READY_TIMEOUT_S = 60.0


@dataclass
class Node:
    name: str
    port: int
    route_port: int
    store: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"nats://{USER}:{PASSWORD}@127.0.0.1:{self.port}"

    def config(self, routes: list[int]) -> str:
        user = f"{{ user: {json.dumps(USER)}, password: {json.dumps(PASSWORD)} }}"
        route_urls = ", ".join(json.dumps(f"nats-route://127.0.0.1:{port}") for port in routes)
        return "\n".join([
            f'listen: "127.0.0.1:{self.port}"', f"server_name: {self.name}",
            f"jetstream {{ store_dir: {json.dumps(str(self.store))} }}",
            f"authorization {{ users = [ {user} ] }}",
            f'cluster {{ name: shenava, listen: "127.0.0.1:{self.route_port}", routes: [ {route_urls} ] }}',
        ])  # fmt: skip


@dataclass
class NatsCluster:
    root: Path
    nodes: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        taken: set[int] = set()
        for n in range(3):
            port, route = free_port(taken=taken), free_port(taken=taken)
            self.nodes.append(Node(f"n{n + 1}", port, route, self.root / f"n{n + 1}"))

    @property
    def url(self) -> str:
        """Every member, as ``SHENAVA_NATS_URL`` takes them."""
        return ",".join(node.url for node in self.nodes)

    async def start(self) -> None:
        routes = [node.route_port for node in self.nodes]
        for node in self.nodes:
            node.store.mkdir(parents=True, exist_ok=True)
            conf = self.root / f"{node.name}.conf"
            conf.write_text(node.config([r for r in routes if r != node.route_port]))
            node.process = await spawn(
                [venv_executable("nats-server"), "-c", str(conf)], self.root / f"{node.name}.log"
            )
        await asyncio.wait_for(self._meta_leader(), READY_TIMEOUT_S)

    async def _meta_leader(self) -> None:
        """JetStream answers on every node (the cluster elected its meta leader)."""
        while not all([await jetstream_ready(node.url) for node in self.nodes]):
            await asyncio.sleep(0.2)

    async def stream_leader(self, stream: str) -> Node:
        nc = await nats.connect(nats_servers(self.url))
        try:
            info = await nc.jetstream().stream_info(stream)
        finally:
            await nc.close()
        assert info.cluster is not None and info.config.num_replicas == 3, info
        return next(node for node in self.nodes if node.name == info.cluster.leader)

    def kill(self, node: Node) -> None:
        assert node.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(node.process.pid, signal.SIGKILL)

    async def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None:
                await terminate(node.process, 10)
