"""Secrets never reach a log line: credentials in URLs, query strings and headers are masked.

Applied by the JSON log formatter to every text it writes (the message, the exception, context
fields), so it covers uvicorn's access log (which keeps query strings: Watson's
``register_callback?…&user_secret=…``), exceptions that quote a URL, and child-process output
the supervisor relays.
"""

from __future__ import annotations

import re

MASK = "[REDACTED]"

SECRET_PARAMS = (
    "user_secret", "secret", "password", "passwd", "token", "access_token", "api_key", "apikey",
    "key", "signature", "challenge_string", "x-amz-signature", "x-amz-credential", "x-amz-security-token",
)  # fmt: skip
_PARAM = re.compile(r"(?i)((?<![\w-])(?:" + "|".join(map(re.escape, SECRET_PARAMS)) + r")=)[^&\s\"'#]*")
_FLAG = re.compile(r"(?i)(--?(?:password|pass|secret|token)[= ])\S+")
_HEADER = re.compile(
    r"(?i)\b(authorization|proxy-authorization|x-api-key|x-callback-signature|cookie)"
    r"([\"']?\s*[:=]\s*[\"']?)[^\"'\r\n,}]+"
)
_SCHEME_CREDENTIAL = re.compile(r"(?i)\b(Bearer|Token|Basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@\"']+):[^/\s@\"']+@")
_API_KEY = re.compile(r"\bshv_[A-Za-z0-9_-]{16,}")


def redact(text: str) -> str:
    text = _PARAM.sub(rf"\1{MASK}", text)
    text = _FLAG.sub(rf"\1{MASK}", text)
    text = _HEADER.sub(rf"\1\2{MASK}", text)
    text = _SCHEME_CREDENTIAL.sub(rf"\1 {MASK}", text)
    text = _URL_PASSWORD.sub(rf"\1:{MASK}@", text)
    return _API_KEY.sub(f"shv_{MASK}", text)
