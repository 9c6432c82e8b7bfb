"""Frame sampling with ffmpeg on generated videos: a still part followed by fast-moving stripes, and
hard cuts between the public-domain pictures in tests/data/kashf (see its LICENSE.md)."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest

from functions.api.kashf_tag_answers import frame_clock as clock
from functions.train.features.image import FeatureError, decode_image
from functions.train.features.video import frame_difference, sample_frames
from tests.media_fixtures import slideshow_video, static_then_moving_video

FPS = 30
STILL_SECONDS = 2.0
MOVING_SECONDS = 2.0
PICTURES = [Path(__file__).parent.parent / "data" / "kashf" / name for name in
            ("astronaut.jpg", "grace_hopper.jpg", "chelsea.jpg")]  # fmt: skip


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "still_then_moving.mp4"
    return static_then_moving_video(path, STILL_SECONDS, MOVING_SECONDS, fps=FPS)


def test_frames_come_every_every_ms_with_source_frame_numbers(video: Path) -> None:
    frames = sample_frames(video, every_ms=100, min_frame_diff=0)
    assert len(frames) == 40  # 4 s, one sample per 100 ms
    for k, frame in enumerate(frames):
        assert frame.seconds == pytest.approx(k * 0.1, abs=1e-3)
        assert frame.index == 3 * k  # 100 ms is 3 frames at 30 fps
    wider = sample_frames(video, every_ms=200, min_frame_diff=0)
    assert [frame.seconds for frame in wider] == pytest.approx([k * 0.2 for k in range(20)], abs=1e-3)
    assert [frame.index for frame in wider] == [6 * k for k in range(20)]


def test_frames_are_jpegs_of_the_video_size(video: Path) -> None:
    frames = sample_frames(video, every_ms=500, min_frame_diff=0)
    assert all(frame.jpeg[:2] == b"\xff\xd8" for frame in frames)
    assert {decode_image(frame.jpeg).size for frame in frames} == {(160, 120)}


def test_raising_min_frame_diff_keeps_fewer_frames(video: Path) -> None:
    every = sample_frames(video, min_frame_diff=0)
    changes = sample_frames(video, min_frame_diff=0.01)
    big_changes = sample_frames(video, min_frame_diff=0.6)  # the stripes differ ~0.5 every 100 ms
    assert len(every) > len(changes) > len(big_changes) >= 1
    # The still part yields only its first frame; each moving sample differs from the last kept one.
    assert [frame.seconds for frame in changes][:2] == pytest.approx([0.0, STILL_SECONDS], abs=1e-3)
    assert len(changes) == 1 + int(MOVING_SECONDS * 10)
    # The first frame is always kept, whatever the threshold.
    assert sample_frames(video, min_frame_diff=1.0)[0].index == 0


@pytest.fixture(scope="module")
def cuts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three pictures, one second each at 25 fps: hard cuts at 1 s (frame 25) and 2 s (frame 50)."""
    return slideshow_video(tmp_path_factory.mktemp("cuts") / "cuts.mp4", PICTURES, seconds=1.0, fps=25)


@pytest.mark.parametrize(
    "parameters",
    [{}, {"every_ms": 50, "duration": 25, "min_frame_diff": 0.4}],  # the defaults; the document's sample
)
def test_each_hard_cut_starts_a_kept_frame_at_the_documented_defaults(
    cuts: Path, parameters: dict[str, float]
) -> None:
    frames = sample_frames(cuts, **parameters)  # type: ignore[arg-type]
    assert [frame.index for frame in frames] == [0, 25, 50]
    assert [frame.seconds for frame in frames] == pytest.approx([0.0, 1.0, 2.0], abs=1e-3)


def test_a_hard_cut_differs_near_one_and_a_still_shot_near_zero(cuts: Path) -> None:
    frames = sample_frames(cuts, every_ms=250, min_frame_diff=0)
    pairs = list(itertools.pairwise(frames))
    # the picture changes each whole second: a pair straddles a cut when its seconds' floors differ
    across = [frame_difference(a.jpeg, b.jpeg) for a, b in pairs if int(a.seconds) != int(b.seconds)]
    within = [frame_difference(a.jpeg, b.jpeg) for a, b in pairs if int(a.seconds) == int(b.seconds)]
    assert len(across) == 2 and min(across) > 0.9
    assert len(within) == 9 and max(within) < 0.05


def test_duration_limits_the_frames(video: Path) -> None:
    frames = sample_frames(video, every_ms=100, min_frame_diff=0, duration=1.0)
    assert len(frames) == 10
    assert max(frame.seconds for frame in frames) < 1.0


def test_frames_of_a_video_off_the_grid_stay_within_one_source_frame(tmp_path: Path) -> None:
    """At 25 fps the 100 ms grid falls between frames: each sample is the first frame at or after it."""
    path = static_then_moving_video(tmp_path / "pal.mp4", 1.0, 1.0, fps=25)
    frames = sample_frames(path, every_ms=100, min_frame_diff=0)
    assert len(frames) == 20
    for k, frame in enumerate(frames):
        assert k * 0.1 - 1e-3 <= frame.seconds < k * 0.1 + 1 / 25
        assert frame.index == round(frame.seconds * 25)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0:00:00"), (59.99, "0:00:59"), (83.4, "0:01:23"), (3600, "1:00:00"), (36000 + 61, "10:01:01")],
)
def test_clock_formats_h_mm_ss(seconds: float, text: str) -> None:
    assert clock(seconds) == text


def test_clock_rejects_negative_time() -> None:
    with pytest.raises(ValueError):
        clock(-1)


def test_non_video_file_raises_feature_error_with_ffmpeg_reason(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    with pytest.raises(FeatureError, match="Invalid data found"):
        sample_frames(text)
    with pytest.raises(FeatureError, match="No such file"):
        sample_frames(tmp_path / "absent.mp4")


def test_audio_only_file_raises_feature_error(tmp_path: Path) -> None:
    audio = tmp_path / "tone.wav"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
         "-f", "lavfi", "-i", "sine=frequency=440:duration=0.5", str(audio)],
        check=True,
    )  # fmt: skip
    with pytest.raises(FeatureError, match="no video stream"):
        sample_frames(audio)


@pytest.mark.parametrize(
    "kwargs",
    [{"every_ms": 0}, {"every_ms": -100}, {"min_frame_diff": -0.1}, {"min_frame_diff": 1.5},
     {"duration": 0}, {"duration": -2.0}],
)  # fmt: skip
def test_bad_parameters_raise_value_error(video: Path, kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        sample_frames(video, **kwargs)  # type: ignore[arg-type]
