"""The command line's own logic: subtitle rules, configuration, arguments and exit codes
(the commands against a running server are in tests/integration/test_cli_e2e.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shenava_cli.app import app, since_time
from shenava_cli.config import load_config
from shenava_cli.errors import ExitCode
from shenava_cli.subtitles import MAX_CUE_S, MAX_LINE, MAX_LINES, to_srt, to_text, to_vtt

SRT_TIME = re.compile(r"^(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)$")


def words(text: str, start: float, step: float = 0.4) -> list[dict[str, Any]]:
    return [{"text": f" {w}", "start": start + n * step, "end": start + n * step + 0.3, "confidence": 0.9}
            for n, w in enumerate(text.split())]  # fmt: skip


def transcript(*segments: dict[str, Any], channels: int = 1) -> dict[str, Any]:
    return {
        "job_id": "j",
        "language": "en",
        "duration": 60.0,
        "channels": channels,
        "segments": list(segments),
    }


def segment(
    text: str, start: float, speaker: str | None = None, channel: int = 0, timed: bool = True
) -> dict[str, Any]:
    ws = words(text, start) if timed else []
    end = ws[-1]["end"] if ws else start + 5.0
    return {"start": start, "end": end, "text": f" {text}", "speaker": speaker, "channel": channel,
            "confidence": 0.9, "words": ws, "flags": []}  # fmt: skip


def srt_cues(text: str) -> list[tuple[float, float, list[str]]]:
    cues = []
    for block in text.strip().split("\n\n"):
        number, times, *lines = block.split("\n")
        found = SRT_TIME.match(times)
        assert number.isdigit() and found, block
        h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(g) for g in found.groups())
        cues.append((h1 * 3600 + m1 * 60 + s1 + ms1 / 1000, h2 * 3600 + m2 * 60 + s2 + ms2 / 1000, lines))
    return cues


LONG = ("the quick brown fox jumps over the lazy dog while the farmer watches from the old wooden fence "
        "and the sun sets slowly behind the distant hills of the quiet green valley")  # fmt: skip


def test_srt_cues_respect_line_length_line_count_and_duration() -> None:
    rendered = to_srt(transcript(segment(LONG, 1.0, speaker="SPEAKER_00"), segment("short reply", 20.0)))
    cues = srt_cues(rendered)
    assert len(cues) >= 3
    for start, end, lines in cues:
        assert 1 <= len(lines) <= MAX_LINES and all(len(line) <= MAX_LINE for line in lines), lines
        assert 0 < end - start <= MAX_CUE_S
    assert [c[0] for c in cues] == sorted(c[0] for c in cues)
    assert cues[0][2][0].startswith("SPEAKER_00: the quick") and cues[0][0] == 1.0
    assert cues[-1][2] == ["short reply"]  # no speaker known: no label
    spoken = " ".join(" ".join(lines) for _, _, lines in cues).replace("SPEAKER_00: ", "")
    assert spoken == f"{LONG} short reply"  # every word, once, in order


def test_stereo_channels_label_cues_and_text_has_speaker_turns() -> None:
    stereo = transcript(segment("hello there", 0.5, channel=0), segment("hi", 1.0, channel=1), channels=2)
    assert [c[2] for c in srt_cues(to_srt(stereo))] == [["Channel 1: hello there"], ["Channel 2: hi"]]
    assert to_text(stereo) == "Channel 1:\nhello there\n\nChannel 2:\nhi\n"


def test_numbered_speakers_read_as_speakers() -> None:
    rendered = to_srt(
        transcript(segment("hello", 0.0, speaker="2"), segment("hi", 2.0, speaker="SPEAKER_01"))
    )
    assert [c[2] for c in srt_cues(rendered)] == [["Speaker 2: hello"], ["SPEAKER_01: hi"]]


def test_vtt_has_its_header_voices_and_escaped_text() -> None:
    rendered = to_vtt(transcript(segment("a <b> & c", 3.25, speaker="A")))
    assert rendered.startswith("WEBVTT\n\n00:00:03.250 --> 00:00:04.750\n<v A>a &lt;b&gt; &amp; c\n")


def test_a_segment_without_word_times_is_shared_out_and_silence_is_left_out() -> None:
    silent = {**segment("", 0.0, timed=False), "text": "", "flags": ["no_speech"]}
    cues = srt_cues(to_srt(transcript(silent, segment("words without times here", 10.0, timed=False))))
    assert [(c[0], c[1], c[2]) for c in cues] == [(10.0, 15.0, ["words without times here"])]


def test_configuration_comes_from_flags_then_environment_then_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file = tmp_path / "config.toml"
    config_file.write_text('url = "https://file.example/"\napi_key = "from-file"\n')
    monkeypatch.setenv("SHENAVA_CONFIG", str(config_file))
    monkeypatch.delenv("SHENAVA_URL", raising=False)
    monkeypatch.delenv("SHENAVA_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    assert (load_config().url, load_config().api_key) == ("https://file.example", "from-file")
    monkeypatch.setenv("SHENAVA_API_KEY", "from-env")
    assert load_config().api_key == "from-env"
    assert load_config(api_key="from-flag", url="http://flag").url == "http://flag"
    assert load_config(api_key="from-flag").api_key == "from-flag"


def test_since_accepts_durations_and_dates() -> None:
    assert since_time("2024-03-01") == "2024-03-01T00:00:00+00:00"
    assert since_time("30m") is not None and since_time(None) is None


def run_cli(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env={"SHENAVA_CONFIG": "/nonexistent", **(env or {})})


def test_usage_errors_and_missing_keys_have_their_exit_codes(tmp_path: Path) -> None:
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"RIFF")
    unknown = run_cli("--key", "k", "transcribe", str(audio), "--format", "docx")
    assert unknown.exit_code == ExitCode.USAGE and "unknown format docx" in unknown.output
    missing = run_cli("--key", "k", "--url", "http://127.0.0.1:9", "transcribe", str(tmp_path / "nope.wav"))
    assert missing.exit_code == ExitCode.USAGE and "is not a file" in missing.output
    keyless = run_cli("jobs", env={"SHENAVA_API_KEY": ""})
    assert keyless.exit_code == ExitCode.AUTH and "no API key" in keyless.output
    since = run_cli("--key", "k", "jobs", "--since", "last tuesday")
    assert since.exit_code == ExitCode.USAGE


def test_an_unreachable_server_is_exit_code_3_also_in_json() -> None:
    result = run_cli("--url", "http://127.0.0.1:9", "--key", "k", "jobs", "--json")
    assert result.exit_code == ExitCode.UNREACHABLE
    assert '"code": 3' in result.stdout and "cannot reach http://127.0.0.1:9" in result.stdout


def test_the_drop_folder_needs_endpoints(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    result = run_cli(
        "batch", "push", str(tmp_path), "--batch", "b1", "--endpoints", str(tmp_path / "none.json")
    )
    assert result.exit_code == ExitCode.USAGE and "does not exist" in result.output
