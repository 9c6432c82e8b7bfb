"""Assembling the bundled model, on small stand-in parts (the real join is 145 MB)."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from functions.transcribe import model_cache
from functions.transcribe.model_cache import ModelCacheError, bundled_model_dir, find_package_files

PART1, PART2 = b"first part " * 1000, b"second part " * 700


@pytest.fixture
def fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Small parts and side files, with the pinned size and hash made to match them."""
    source = tmp_path / "site-packages"
    source.mkdir()
    files = {
        "model.bin.part1": PART1,
        "model.bin.part2": PART2,
        "config.json": b"{}",
        "tokenizer.json": b'{"t": 1}',
        "vocabulary.json": b"[]",
    }
    paths = {}
    for name, data in files.items():
        (source / name).write_bytes(data)
        paths[name] = source / name
    monkeypatch.setattr(model_cache, "find_package_files", lambda: paths)
    monkeypatch.setattr(model_cache, "MODEL_SIZE", len(PART1 + PART2))
    monkeypatch.setattr(model_cache, "MODEL_SHA256", hashlib.sha256(PART1 + PART2).hexdigest())
    return paths


def test_the_parts_are_joined_verified_and_copied(fake_parts: dict[str, Path], tmp_path: Path) -> None:
    target = bundled_model_dir(tmp_path / "cache")

    assert target == tmp_path / "cache" / "whisper-base"
    assert (target / "model.bin").read_bytes() == PART1 + PART2
    assert (target / "tokenizer.json").read_bytes() == b'{"t": 1}'
    assert (target / model_cache.MARKER_NAME).read_text() == model_cache.MODEL_SHA256
    assert not list(target.glob(".*.tmp"))


def test_a_ready_cache_is_not_rebuilt(
    fake_parts: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled_model_dir(tmp_path)

    def no_packages() -> dict[str, Path]:
        raise AssertionError("the packages were read again")

    monkeypatch.setattr(model_cache, "find_package_files", no_packages)
    assert bundled_model_dir(tmp_path) == tmp_path / "whisper-base"


def test_a_truncated_model_is_rebuilt(fake_parts: dict[str, Path], tmp_path: Path) -> None:
    target = bundled_model_dir(tmp_path)
    (target / "model.bin").write_bytes(PART1)

    bundled_model_dir(tmp_path)

    assert (target / "model.bin").read_bytes() == PART1 + PART2


def test_a_wrong_hash_is_refused_and_leaves_nothing(
    fake_parts: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model_cache, "MODEL_SHA256", "0" * 64)

    with pytest.raises(ModelCacheError, match="sha256"):
        bundled_model_dir(tmp_path)

    target = tmp_path / "whisper-base"
    assert not (target / "model.bin").exists()
    assert not (target / model_cache.MARKER_NAME).exists()
    assert not list(target.glob(".*.tmp"))


def test_concurrent_preparations_agree(fake_parts: dict[str, Path], tmp_path: Path) -> None:
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: bundled_model_dir(tmp_path), range(8)))

    assert set(results) == {tmp_path / "whisper-base"}
    assert (tmp_path / "whisper-base" / "model.bin").read_bytes() == PART1 + PART2
    assert not list((tmp_path / "whisper-base").glob(".*.tmp"))


def test_missing_packages_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_cache, "PART_DISTRIBUTIONS", ("shenava-no-such-model-part",))

    with pytest.raises(ModelCacheError, match="shenava-no-such-model-part is not installed"):
        find_package_files()


def test_the_installed_packages_hold_every_file() -> None:
    found = find_package_files()

    assert set(found) == set(model_cache.MODEL_PARTS) | set(model_cache.SIDE_FILES)
    sizes = sum(found[name].stat().st_size for name in model_cache.MODEL_PARTS)
    assert sizes == model_cache.MODEL_SIZE
