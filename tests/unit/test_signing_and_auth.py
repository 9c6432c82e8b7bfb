import base64
import hashlib
import hmac

import pytest

from functions.api.auth import key_from_header
from functions.common.errors import Unauthorized
from functions.common.signing import sign, verify


def test_signature_is_base64_hmac_sha1_of_the_exact_bytes() -> None:
    body = b'{"id": "1", "event": "recognitions.started", "user_token": ""}'
    expected = base64.b64encode(hmac.new(b"ThisIsMySecret", body, hashlib.sha1).digest()).decode()
    assert sign("ThisIsMySecret", body) == expected
    assert verify("ThisIsMySecret", body, expected)
    assert not verify("ThisIsMySecret", body + b" ", expected)


@pytest.mark.parametrize(
    "header",
    ["Bearer k1", "bearer k1", "Token k1", "Basic " + base64.b64encode(b"apikey:k1").decode()],
)
def test_every_documented_auth_scheme_gives_the_key(header: str) -> None:
    assert key_from_header(header) == "k1"


@pytest.mark.parametrize(
    "header", ["k1", "Bearer", "Digest k1", "Basic !!!", "Basic " + base64.b64encode(b"user:k1").decode()]
)
def test_malformed_authorization_is_refused(header: str) -> None:
    with pytest.raises(Unauthorized):
        key_from_header(header)
