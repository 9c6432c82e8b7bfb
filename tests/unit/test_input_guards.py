"""Bad input fails alone and cleanly: every URL entry point refuses a malformed or private URL
with a 4xx, bodies that are not UTF-8 or nest too deep are 400, sizes are refused from
Content-Length before reading and while streaming. Over in-memory stores, through the app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from functions.api.app import create_app
from functions.common.apikeys import create_key
from functions.common.settings import Settings
from functions.common.state_store import MemoryStateStore
from tests.fakes import DirMediaStore, MemoryBus

BAD_URL = "http://012.0.0.1/x.wav"  # httpx cannot send it (InvalidURL): this was a 500 everywhere
MAX_AUDIO = 20_000
MAX_JSON = 50_000
AUDIO = b"RIFF" + b"x" * 400


@dataclass
class Api:
    client: httpx.AsyncClient
    key: str
    upload_dir: Path

    def auth(self, scheme: str = "Bearer") -> dict[str, str]:
        return {"Authorization": f"{scheme} {self.key}"}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    settings = Settings(data_dir=tmp_path, secret_key=Fernet.generate_key().decode(), rate_limit_per_minute=0,
                        max_audio_bytes=MAX_AUDIO, max_json_bytes=MAX_JSON)  # fmt: skip
    state = MemoryStateStore()
    app = create_app(settings, state=state, media=DirMediaStore(tmp_path / "media"), bus=MemoryBus())
    key = await create_key(state, "acme")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shenava") as client:
            yield Api(client, key, tmp_path)


async def kashf_post(api: Api, path: str, body: dict) -> httpx.Response:
    return await api.client.post(path, json=body, headers=api.auth("Token"))


async def trd_create(api: Api, **fields: str) -> httpx.Response:
    files = {"upload_file": ("a.wav", AUDIO, "audio/wav")}
    return await api.client.post("/trd/v3/job/create", data=fields, files=files, headers=api.auth())


async def test_a_malformed_url_is_a_400_at_every_entry_point(api: Api) -> None:
    for kind in ("image", "text"):
        made = await kashf_post(
            api, "/api/create_dataset/", {"slug": f"d-{kind}", "title": "t", "type": kind}
        )
        assert made.status_code == 201, made.text
    tag = (await kashf_post(api, "/api/create_tag/", {"dataset": "d-image", "title": "cat"})).json()["tag_id"]
    register = {"callback_url": BAD_URL}
    harf = {"media_urls": [BAD_URL], "wait": False}
    answers = {
        "watson": await api.client.post("/v1/register_callback", params=register, headers=api.auth()),
        "trd": await trd_create(api, callback_urls=BAD_URL),
        "harf": await api.client.post("/api/transcribe_files/", json=harf, headers=api.auth("Token")),
        "kashf image_url": await kashf_post(
            api, "/api/report_image_tags/", {"image_url": BAD_URL, "tag_id": tag, "positive": True}
        ),
        "kashf image_urls": await kashf_post(
            api, "/api/tag_images/", {"dataset": "d-image", "image_urls": [BAD_URL]}
        ),
        "kashf video_urls": await kashf_post(
            api, "/api/tag_videos/", {"dataset": "d-image", "video_urls": [BAD_URL]}
        ),
        "kashf csv_url": await kashf_post(
            api, "/api/import_dataset/", {"dataset": "d-text", "csv_url": BAD_URL}
        ),
    }
    statuses = {name: response.status_code for name, response in answers.items()}
    assert statuses == dict.fromkeys(answers, 400), {n: r.text[:200] for n, r in answers.items()}


PRIVATE = ["http://127.0.0.1:9/hook", "http://[64:ff9b::a9fe:a9fe]/hook", "http://10.1.2.3/"]


@pytest.mark.parametrize("url", PRIVATE)
async def test_a_private_trd_callback_url_is_refused_at_submit(api: Api, url: str) -> None:
    response = await trd_create(api, callback_urls=url)
    assert response.status_code == 400 and "private" in response.json()["detail"], response.text


JSON_PATHS = ["/api/create_dataset/", "/api/tag_texts/", "/api/transcribe_files/", "/api/import_dataset/"]
BAD_JSON = [
    b'{"slug": "caf\xe9", "title": "\xff\xfe"}',
    b"[" * 40_000,
    b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
]


@pytest.mark.parametrize("path", JSON_PATHS)
@pytest.mark.parametrize("body", BAD_JSON)
async def test_json_that_is_not_utf8_or_nests_too_deep_is_400(api: Api, path: str, body: bytes) -> None:
    headers = {**api.auth("Token"), "Content-Type": "application/json"}
    response = await api.client.post(path, content=body, headers=headers)
    assert response.status_code == 400, response.text[:300]
    assert "UTF-8" in response.text or "nested" in response.text


async def test_deep_json_inside_a_form_field_is_400(api: Api) -> None:
    response = await trd_create(api, callback_urls="[" * 50_000)
    assert response.status_code == 400, response.text[:300]


async def test_a_declared_size_over_the_limit_is_refused_before_reading(api: Api) -> None:
    never_read = NeverRead(b"x" * 100)
    too_big = {"Content-Length": "2000000000"}
    for path, content_type in [
        ("/v1/recognitions", "audio/wav"),
        ("/trd/v3/job/create", "multipart/form-data; boundary=b"),
        ("/api/transcribe_files/", "multipart/form-data; boundary=b"),
        ("/api/tag_texts/", "application/json"),
    ]:
        headers = {**api.auth("Token"), **too_big, "Content-Type": content_type}
        response = await api.client.post(path, content=never_read.stream(), headers=headers)
        assert response.status_code == 413, (path, response.text)
    assert never_read.reads == 0
    headers = {**api.auth("Token"), "Content-Length": "12x"}
    assert (await api.client.post("/api/tag_texts/", content=b"{}", headers=headers)).status_code == 400


async def test_a_streamed_upload_is_cut_at_the_limit(api: Api) -> None:
    """No Content-Length (chunked): the multipart parser spools the file, the count stops it."""
    head = b'--b\r\nContent-Disposition: form-data; name="upload_file"; filename="a.wav"\r\n\r\n'
    chunks = NeverRead(head + b"x" * 64 * 1024, repeat=100)
    multipart = {**api.auth(), "Content-Type": "multipart/form-data; boundary=b"}
    response = await api.client.post("/trd/v3/job/create", content=chunks.stream(), headers=multipart)
    assert response.status_code == 413, response.text
    assert chunks.reads < 100  # it stopped reading long before the end
    oversized = NeverRead(b'{"dataset": "d", "contents": ["' + b"a" * MAX_JSON + b'"]}')
    json_headers = {**api.auth("Token"), "Content-Type": "application/json"}
    response = await api.client.post("/api/tag_texts/", content=oversized.stream(), headers=json_headers)
    assert response.status_code == 413


class NeverRead:
    """A request body as a stream, counting how much of it the server pulled."""

    def __init__(self, chunk: bytes, repeat: int = 1) -> None:
        self.chunk, self.repeat, self.reads = chunk, repeat, 0

    async def stream(self) -> AsyncIterator[bytes]:
        for _ in range(self.repeat):
            self.reads += 1
            yield self.chunk
