import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from functions.common.errors import OutboundRefused
from functions.common.outbound import OutboundPolicy, check_target, check_url, outbound_client


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "0.0.0.0",
        "fc00::1",
    ],
)
def test_inside_addresses_are_refused_by_default(address: str) -> None:
    assert not OutboundPolicy.parse("").allows("example.org", ipaddress.ip_address(address))


def test_public_addresses_pass_and_the_allowlist_opens_networks_and_names() -> None:
    policy = OutboundPolicy.parse("127.0.0.0/8, receiver.internal")
    assert policy.allows("x", ipaddress.ip_address("93.184.216.34"))
    assert policy.allows("x", ipaddress.ip_address("127.0.0.5"))
    assert policy.allows("receiver.internal", ipaddress.ip_address("10.0.0.7"))
    assert not policy.allows("other.internal", ipaddress.ip_address("10.0.0.7"))


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/a", "gopher://x", "http://"])
def test_only_http_urls_with_a_host(url: str) -> None:
    with pytest.raises(OutboundRefused):
        check_url(url)


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:1/")
            self.end_headers()
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_loopback_is_refused_on_connect_unless_allowed(local_server: str) -> None:
    async with outbound_client("") as client:
        with pytest.raises(OutboundRefused):
            await client.get(local_server)
    async with outbound_client("localhost") as client:  # a name resolving to loopback
        with pytest.raises(OutboundRefused):
            await client.get(local_server)
    async with outbound_client("127.0.0.0/8") as client:
        assert (await client.get(local_server)).text == "hello"


async def test_redirects_are_not_followed(local_server: str) -> None:
    async with outbound_client("127.0.0.0/8") as client:
        response = await client.get(local_server + "/redirect")
    assert response.status_code == 302


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b:1::a9fe:a9fe",  # local-use NAT64
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "2002:0a00:0001::1",  # 6to4 of 10.0.0.1
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::127.0.0.1",  # IPv4-compatible
    ],
)
def test_ipv6_addresses_that_lead_to_private_ipv4_are_refused(address: str) -> None:
    assert not OutboundPolicy.parse("").allows("example.org", ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["64:ff9b::808:808", "2002:808:808::1", "2606:4700::1111"])
def test_ipv6_addresses_that_lead_to_public_ipv4_pass(address: str) -> None:
    assert OutboundPolicy.parse("").allows("example.org", ipaddress.ip_address(address))


@pytest.mark.parametrize("url", ["http://012.0.0.1/", "http://999.1.1.1/x", "http://[::1/", "https://[zz]/"])
def test_a_url_the_http_client_cannot_send_is_refused_as_a_value(url: str) -> None:
    with pytest.raises(OutboundRefused, match="malformed"):
        check_url(url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1/", "http://localhost:8080/x", "http://[64:ff9b::a9fe:a9fe]/", "http://10.0.0.1/"]
)
async def test_check_target_refuses_private_targets_without_connecting(url: str) -> None:
    with pytest.raises(OutboundRefused, match="private"):
        await check_target(url, OutboundPolicy.parse(""))


async def test_check_target_passes_allowlisted_and_unresolvable_hosts() -> None:
    await check_target("http://127.0.0.1:9/", OutboundPolicy.parse("127.0.0.0/8"))
    await check_target("https://no-such-host.invalid/hook", OutboundPolicy.parse(""))  # DNS decides later
