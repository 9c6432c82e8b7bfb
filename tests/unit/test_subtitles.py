"""Subtitles and plain formats: the one server-side renderer, read back with the parsers a user
would use (``srt``, ``webvtt-py``), and every door that serves it (TRD v3, the TRD batch API and
its ZIP, Watson, Harf, the console's JSON) with its media type and file name."""

from __future__ import annotations

import html
import io
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import srt
import webvtt
from cryptography.fernet import Fernet

from functions.api.app import create_app
from functions.common.apikeys import create_key
from functions.common.bootstrap import Deps
from functions.common.jobs import JobDocument, JobStatus, MediaFacts, new_job_id, result_key
from functions.common.render_subtitles import MAX_CUE_S, MAX_LINE, MAX_LINES, to_srt, to_text, to_tsv, to_vtt
from functions.common.settings import Settings
from functions.common.state_store import MemoryStateStore
from functions.common.transcript import Segment, Transcript, Word
from tests.fakes import DirMediaStore, MemoryBus

LONG = ("the quick brown fox jumps over the lazy dog while the farmer watches from the old wooden fence "
        "and the sun sets slowly behind the distant hills of the quiet green valley")  # fmt: skip


def segment(
    text: str, start: float, speaker: str | None = None, channel: int = 0, timed: bool = True
) -> Segment:
    words = tuple(
        Word(text=f" {w}", start=start + n * 0.4, end=start + n * 0.4 + 0.3, confidence=0.9)
        for n, w in enumerate(text.split())
    )
    end = words[-1].end if timed and words else start + 5.0
    return Segment(start=start, end=end, text=f" {text}", speaker=speaker, channel=channel, confidence=0.9,
                   words=words if timed else ())  # fmt: skip


def transcript(*segments: Segment, channels: int = 1) -> Transcript:
    return Transcript(job_id="j", language="en", duration=60.0, channels=channels, segments=segments)


def parsed_srt(text: str) -> list[srt.Subtitle]:
    return list(srt.parse(text, ignore_errors=False))


def test_srt_parses_and_keeps_to_42_characters_2_lines_and_7_seconds() -> None:
    rendered = to_srt(transcript(segment(LONG, 1.0, speaker="SPEAKER_00"), segment("short reply", 20.0)))
    cues = parsed_srt(rendered)
    assert len(cues) >= 3
    for cue in cues:
        lines = cue.content.split("\n")
        assert 1 <= len(lines) <= MAX_LINES and all(len(line) <= MAX_LINE for line in lines), lines
        assert 0 < (cue.end - cue.start).total_seconds() <= MAX_CUE_S
    assert [c.start for c in cues] == sorted(c.start for c in cues)
    assert cues[0].content.startswith("SPEAKER_00: the quick") and cues[0].start.total_seconds() == 1.0
    assert cues[-1].content == "short reply"  # no speaker known: no label
    spoken = " ".join(c.content.replace("\n", " ") for c in cues).replace("SPEAKER_00: ", "")
    assert spoken == f"{LONG} short reply"  # every word, once, in order
    assert srt.compose(cues) == rendered  # nothing the parser had to repair


def test_cues_are_cut_at_word_times() -> None:
    long = segment(LONG, 1.0)
    word_starts = {round(w.start, 3) for w in long.words}
    word_ends = {round(w.end, 3) for w in long.words}
    for cue in parsed_srt(to_srt(transcript(long))):
        assert round(cue.start.total_seconds(), 3) in word_starts
        assert round(cue.end.total_seconds(), 3) in word_ends


def test_webvtt_parses_with_voices_escaped_text_and_the_same_limits() -> None:
    rendered = to_vtt(transcript(segment("a <b> & c", 3.25, speaker="A"), segment(LONG, 10.0, speaker="2")))
    assert rendered.startswith("WEBVTT\n\n00:00:03.250 --> 00:00:04.750\n<v A>a &lt;b&gt; &amp; c\n")
    captions = webvtt.from_buffer(io.StringIO(rendered)).captions
    assert captions[0].voice == "A" and html.unescape(captions[0].text) == "a <b> & c"  # as a player shows it
    assert captions[1].voice == "Speaker 2"
    for caption in captions:
        shown = html.unescape(caption.text).split("\n")  # the voice is not text on screen
        assert len(shown) <= MAX_LINES and all(len(line) <= MAX_LINE for line in shown)
        assert 0 < caption.end_in_seconds - caption.start_in_seconds <= MAX_CUE_S


def test_stereo_channels_label_cues_and_text_has_turns() -> None:
    stereo = transcript(segment("hello there", 0.5, channel=0), segment("hi", 1.0, channel=1), channels=2)
    assert [c.content for c in parsed_srt(to_srt(stereo))] == ["Channel 1: hello there", "Channel 2: hi"]
    assert to_text(stereo) == "Channel 1:\nhello there\n\nChannel 2:\nhi\n"
    rows = [line.split("\t") for line in to_tsv(stereo).splitlines()]
    assert rows == [["start", "end", "text", "speaker", "channel"], ["500", "1200", "hello there", "", "0"],
                    ["1000", "1300", "hi", "", "1"]]  # fmt: skip


def test_no_speech_renders_nothing_and_untimed_segments_share_their_time() -> None:
    silent = Segment(start=0.0, end=3.0, text="", confidence=0.0, flags=("no_speech",))
    cues = parsed_srt(to_srt(transcript(silent, segment("words without times here", 10.0, timed=False))))
    assert [(c.start.total_seconds(), c.end.total_seconds(), c.content) for c in cues] == [
        (10.0, 15.0, "words without times here")
    ]
    assert to_srt(transcript(silent)) == "" and to_text(transcript(silent)) == ""
    assert to_tsv(transcript(silent)) == "start\tend\ttext\tspeaker\tchannel\n"


@dataclass
class Served:
    client: httpx.AsyncClient
    deps: Deps

    async def job(self, status: JobStatus = JobStatus.COMPLETED, **fields: object) -> JobDocument:
        job = JobDocument(id=new_job_id(), tenant="acme", status=status, filename="call 1.wav",
                          media=MediaFacts(duration=30.0, channels=1), **fields)  # type: ignore[arg-type]  # fmt: skip
        await self.deps.jobs.create(job)
        if status == JobStatus.COMPLETED:
            said = Transcript(job_id=job.id, language="en", duration=30.0, channels=1,
                              segments=(segment(LONG, 1.0, speaker="1"),))  # fmt: skip
            await self.deps.state.put(result_key("acme", job.id), said.model_dump(mode="json"))
        return job


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    settings = Settings(data_dir=tmp_path, secret_key=Fernet.generate_key().decode(), drop_tenant="acme")
    state = MemoryStateStore()
    app = create_app(settings, state=state, media=DirMediaStore(tmp_path / "media"), bus=MemoryBus())
    key = await create_key(state, "acme")
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://s", headers=headers) as client,
    ):
        yield Served(client, app.state.deps)


@pytest.mark.parametrize(
    ("fmt", "media_type"),
    [("srt", "application/x-subrip"), ("vtt", "text/vtt"), ("txt", "text/plain"),
     ("tsv", "text/tab-separated-values")],
)  # fmt: skip
async def test_every_door_serves_the_same_file_with_its_type_and_name(
    served: Served, fmt: str, media_type: str
) -> None:
    job = await served.job(batch="b1")
    paths = [
        f"/trd/v3/job/result/{job.id}?format={fmt}",
        f"/trd/transcription/result/audiofile/{job.id}?format={fmt.upper()}",
        f"/v1/recognitions/{job.id}?format={fmt}",
        f"/api/transcribe_files/result/{job.id}?format={fmt}",
        f"/ui/api/jobs/{job.id}/transcript?format={fmt}",
    ]
    bodies = set()
    for path in paths:
        answer = await served.client.get(path)
        assert answer.status_code == 200, (path, answer.text)
        assert answer.headers["content-type"] == f"{media_type}; charset=utf-8", path
        assert answer.headers["content-disposition"] == f'attachment; filename="call 1.{fmt}"', path
        bodies.add(answer.text)
    assert len(bodies) == 1 and "the quick" in bodies.pop()


async def test_defaults_are_unchanged_and_unknown_formats_are_refused_by_name(served: Served) -> None:
    job = await served.job()
    watson = await served.client.get(f"/v1/recognitions/{job.id}")
    assert watson.json()["status"] == "completed" and "results" in watson.json()
    assert "segments" in (await served.client.get(f"/trd/v3/job/result/{job.id}")).json()
    for path, status in [(f"/trd/v3/job/result/{job.id}?format=docx", 422),
                         (f"/v1/recognitions/{job.id}?format=docx", 400),
                         (f"/api/transcribe_files/result/{job.id}?format=docx", 400)]:  # fmt: skip
        refused = await served.client.get(path)
        assert refused.status_code == status and "srt" in refused.text, path


async def test_an_unfinished_job_has_no_subtitles(served: Served) -> None:
    job = await served.job(JobStatus.IN_PROGRESS)
    trd = await served.client.get(f"/trd/v3/job/result/{job.id}?format=srt")
    assert trd.status_code == 400 and "IN_PROGRESS" in trd.json()["detail"]
    watson = await served.client.get(f"/v1/recognitions/{job.id}?format=vtt")
    assert watson.status_code == 409 and "processing" in watson.json()["error"]


async def test_the_batch_zip_holds_each_finished_files_subtitles(served: Served) -> None:
    job = await served.job(batch="b2")
    await served.job(JobStatus.IN_PROGRESS, batch="b2")
    answer = await served.client.get("/trd/transcription/result/batch/b2?format=srt")
    assert answer.headers["content-disposition"] == 'attachment; filename="b2-srt.zip"'
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    assert archive.namelist() == ["call 1.wav.srt"]
    cues = parsed_srt(archive.read("call 1.wav.srt").decode())
    assert cues and all(len(c.content.split("\n")) <= MAX_LINES for c in cues)
    listed = (await served.client.get(f"/ui/api/jobs/{job.id}")).json()["downloads"]
    assert {d["suffix"] for d in listed} >= {".srt", ".vtt", ".txt", ".tsv"}
