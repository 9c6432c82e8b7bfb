"""Byte ranges of stored media (the console's player, Harf's ``media_url``): what a ``Range``
header asks for, and that only that range is read from the bucket."""

from __future__ import annotations

import pytest

from functions.api.media_responses import RangeNotSatisfiable, byte_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-3", (0, 3)),
        ("bytes=4-", (4, 9)),
        ("bytes=-4", (6, 9)),
        ("bytes=-40", (0, 9)),
        ("bytes=2-400", (2, 9)),
        ("bytes=0-1,4-5", None),  # several ranges: the whole object
        ("items=0-3", None),
        ("bytes=-", None),
        ("bytes=" + "9" * 5000 + "-", None),  # no size is that long: not a range, the whole object
    ],
)
def test_a_range_header_is_read_within_the_size(header: str | None, expected: tuple[int, int] | None) -> None:
    assert byte_range(header, 10) == expected


@pytest.mark.parametrize("header", ["bytes=10-", "bytes=12-20", "bytes=5-2", "bytes=-0"])
def test_a_range_outside_the_media_is_not_satisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        byte_range(header, 10)
