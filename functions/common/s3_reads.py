"""Reads of state documents for the API's polls, with a quarter of botocore's CPU.

A poll of a job that no copy answers reads its document. Through aiobotocore that read costs about
1.1 ms of CPU in the API process (its request pipeline: events, parameter checks, parsing, retry
bookkeeping), twice what the web framework spends on the whole request; a plain GET signed here
(AWS Signature V4 over aiohttp, whose session aiobotocore itself uses) costs about 0.3 ms.

``SignedReads`` wraps the state store and does only that GET (200 is the document and its etag,
404 ``NoSuchKey`` is None) and the listing of keys with their etags (``versions``, what the API's
index view asks for every poll max age); anything else (an error status, a refused connection, a
timeout, a body it cannot parse) is handed to the wrapped store, whose client retries and raises
as it always has. Writes go to the wrapped store. It applies to an S3 endpoint given with
static credentials (the embedded SeaweedFS, MinIO); on AWS the role's rotating credentials stay
with botocore.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from urllib.parse import quote
from xml.etree import ElementTree

import aiohttp  # aiobotocore's own HTTP client: installed with it
from yarl import URL

from functions.common.settings import Settings
from functions.common.state_store import Document, StateStore

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
S3_XML = "{http://s3.amazonaws.com/doc/2006-03-01/}"
SIGNED_HEADERS = "host;x-amz-content-sha256;x-amz-date"
TIMEOUT_S = 10.0
CONNECTIONS = 64


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


class SigV4:
    """Signature V4 for a GET without a body or a query (path-style S3)."""

    def __init__(self, access_key: str, secret_key: str, region: str) -> None:
        self.access_key, self._secret, self.region = access_key, secret_key, region
        self._day, self._key = "", b""

    def _signing_key(self, day: str) -> bytes:
        if day != self._day:
            key = _hmac(f"AWS4{self._secret}".encode(), day)
            for part in (self.region, "s3", "aws4_request"):
                key = _hmac(key, part)
            self._day, self._key = day, key
        return self._key

    def headers(self, host: str, path: str, now: datetime, query: str = "") -> dict[str, str]:
        """``path`` and ``query`` as sent (URI-encoded; the query's parameters in order)."""
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        canonical = (
            f"GET\n{path}\n{query}\nhost:{host}\nx-amz-content-sha256:{EMPTY_SHA256}\nx-amz-date:{stamp}\n\n"
        )
        canonical += f"{SIGNED_HEADERS}\n{EMPTY_SHA256}"
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._signing_key(day), to_sign.encode(), hashlib.sha256).hexdigest()
        authorization = (
            f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, SignedHeaders={SIGNED_HEADERS}, "
            f"Signature={signature}"
        )
        return {
            "Host": host,
            "x-amz-date": stamp,
            "x-amz-content-sha256": EMPTY_SHA256,
            "Authorization": authorization,
        }


class SignedReads:
    def __init__(self, inner: StateStore, endpoint_url: str, bucket: str, signer: SigV4) -> None:
        self.inner = inner
        endpoint = URL(endpoint_url)
        self._base = endpoint.origin()
        host = endpoint.host or ""
        self._host = host if endpoint.is_default_port() else f"{host}:{endpoint.port}"
        self._bucket = bucket
        self._signer = signer
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def applies(cls, settings: Settings) -> bool:
        """An S3 endpoint with static credentials and no path of its own."""
        url = settings.s3_endpoint_url
        return bool(url and settings.s3_access_key and settings.s3_secret_key and URL(url).path in {"", "/"})

    @classmethod
    def for_settings(cls, inner: StateStore, settings: Settings) -> SignedReads:
        signer = SigV4(settings.s3_access_key, settings.s3_secret_key, settings.s3_region)
        return cls(inner, settings.s3_endpoint_url, settings.state_bucket, signer)

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=CONNECTIONS)
            timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get(self, key: str) -> tuple[Document, str] | None:
        path = quote(f"/{self._bucket}/{key}")
        headers = self._signer.headers(self._host, path, datetime.now(UTC))
        try:
            async with self._open().get(
                self._base.with_path(path, encoded=True), headers=headers
            ) as response:
                body = await response.read()
                if response.status == 200 and "ETag" in response.headers:
                    return json.loads(body), response.headers["ETag"]
                if response.status == 404 and b"NoSuchKey" in body:
                    return None
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError):
            pass
        return await self.inner.get(key)  # the full client: its retries, its errors

    async def create(self, key: str, doc: Document) -> str:
        return await self.inner.create(key, doc)

    async def replace(self, key: str, doc: Document, etag: str) -> str:
        return await self.inner.replace(key, doc, etag)

    async def put(self, key: str, doc: Document) -> str:
        return await self.inner.put(key, doc)

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)

    async def list_keys(self, prefix: str) -> list[str]:
        return await self.inner.list_keys(prefix)

    async def versions(self, prefix: str) -> dict[str, str]:
        """The listing (ListObjectsV2, page by page), parsed by ElementTree: a tenth of botocore's
        CPU for the index's few hundred keys, listed every poll max age."""
        found: dict[str, str] = {}
        token: str | None = ""
        try:
            while token is not None:
                token = await self._list_page(prefix, token, found)
        except (aiohttp.ClientError, TimeoutError, ElementTree.ParseError, LookupError):
            return await self.inner.versions(prefix)
        return found

    async def _list_page(self, prefix: str, token: str, found: dict[str, str]) -> str | None:
        """One page into ``found``; the next page's token, or None after the last."""
        params = {"list-type": "2", "prefix": prefix} | ({"continuation-token": token} if token else {})
        query = "&".join(
            f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items())
        )
        path = quote(f"/{self._bucket}")
        headers = self._signer.headers(self._host, path, datetime.now(UTC), query)
        url = self._base.with_path(path, encoded=True).with_query(query)
        async with self._open().get(url, headers=headers) as response:
            body = await response.read()
        if response.status != 200:
            raise LookupError(f"listing answered {response.status}")
        root = ElementTree.fromstring(body)
        for item in root.iterfind(f"{S3_XML}Contents"):
            found[item.findtext(f"{S3_XML}Key", "")] = item.findtext(f"{S3_XML}ETag", "")
        if root.findtext(f"{S3_XML}IsTruncated", "false") != "true":
            return None
        return root.findtext(f"{S3_XML}NextContinuationToken") or None
