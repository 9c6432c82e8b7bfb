"""The OpenAI-compatible renderings of a transcript (``/v1/audio/transcriptions`` and
``/translations``) and the notification an async job sends when it ends.

``json`` is ``{"text"}``; ``verbose_json`` has ``task``, ``language`` (Whisper's English name of
it, as OpenAI answers), ``duration``, ``text``, and ``segments`` and/or ``words`` as
``timestamp_granularities`` ask; ``text``, ``srt`` and ``vtt`` are plain text (the subtitles are
Shenava's one renderer, ``render_subtitles``). A segment with empty text (Shenava's explicit
"no speech here") is left out, as OpenAI lists only what was said.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from functions.common.jobs import JobDocument, JobStatus
from functions.common.reasons import public_reason
from functions.common.render_subtitles import to_srt, to_vtt
from functions.common.transcript import Segment, Transcript

RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
GRANULARITIES = ("word", "segment")
TEXT_TYPES = {"text": "text/plain; charset=utf-8", "srt": "text/plain; charset=utf-8",
              "vtt": "text/plain; charset=utf-8"}  # fmt: skip  # as OpenAI serves them
_LANGUAGE_NAMES = (
    "en:english,zh:chinese,de:german,es:spanish,ru:russian,ko:korean,fr:french,ja:japanese,pt:portugu"
    "ese,tr:turkish,pl:polish,ca:catalan,nl:dutch,ar:arabic,sv:swedish,it:italian,id:indonesian,hi:hi"
    "ndi,fi:finnish,vi:vietnamese,he:hebrew,uk:ukrainian,el:greek,ms:malay,cs:czech,ro:romanian,da:da"
    "nish,hu:hungarian,ta:tamil,no:norwegian,th:thai,ur:urdu,hr:croatian,bg:bulgarian,lt:lithuanian,l"
    "a:latin,mi:maori,ml:malayalam,cy:welsh,sk:slovak,te:telugu,fa:persian,lv:latvian,bn:bengali,sr:s"
    "erbian,az:azerbaijani,sl:slovenian,kn:kannada,et:estonian,mk:macedonian,br:breton,eu:basque,is:i"
    "celandic,hy:armenian,ne:nepali,mn:mongolian,bs:bosnian,kk:kazakh,sq:albanian,sw:swahili,gl:galic"
    "ian,mr:marathi,pa:punjabi,si:sinhala,km:khmer,sn:shona,yo:yoruba,so:somali,af:afrikaans,oc:occit"
    "an,ka:georgian,be:belarusian,tg:tajik,sd:sindhi,gu:gujarati,am:amharic,yi:yiddish,lo:lao,uz:uzbe"
    "k,fo:faroese,ht:haitian creole,ps:pashto,tk:turkmen,nn:nynorsk,mt:maltese,sa:sanskrit,lb:luxembo"
    "urgish,my:myanmar,bo:tibetan,tl:tagalog,mg:malagasy,as:assamese,tt:tatar,haw:hawaiian,ln:lingala"
    ",ha:hausa,ba:bashkir,jw:javanese,su:sundanese,yue:cantonese"
)
LANGUAGE_NAMES = dict(pair.split(":") for pair in _LANGUAGE_NAMES.split(","))


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


def _spoken(transcript: Transcript) -> list[Segment]:
    return [s for s in sorted(transcript.segments, key=lambda s: (s.start, s.channel)) if s.text.strip()]


def text_of(transcript: Transcript) -> str:
    return " ".join(" ".join(s.text.split()) for s in _spoken(transcript))


def _avg_logprob(segment: Segment) -> float:
    return round(math.log(max(segment.confidence, 1e-6)), 4)


def _segment(n: int, segment: Segment, temperature: float) -> dict[str, Any]:
    return {
        "id": n, "seek": int(segment.start * 100), "start": round(segment.start, 3),
        "end": round(segment.end, 3),
        "text": " " + " ".join(segment.text.split()), "tokens": [], "temperature": temperature,
        "avg_logprob": _avg_logprob(segment), "compression_ratio": 0.0,
        "no_speech_prob": 0.0,
    }  # fmt: skip


def render_verbose(
    transcript: Transcript, task: str, granularities: list[str], temperature: float = 0.0
) -> dict[str, Any]:
    spoken = _spoken(transcript)
    body: dict[str, Any] = {
        "task": task,
        "language": "english" if task == "translate" else language_name(transcript.language),
        "duration": round(transcript.duration, 3),
        "text": text_of(transcript),
    }
    if "segment" in granularities:
        body["segments"] = [_segment(n, s, temperature) for n, s in enumerate(spoken)]
    if "word" in granularities:
        body["words"] = [
            {"word": w.text.strip(), "start": round(w.start, 3), "end": round(w.end, 3)}
            for s in spoken
            for w in s.words
        ]
    return body


def render(
    transcript: Transcript,
    response_format: str,
    task: str,
    granularities: list[str],
    temperature: float = 0.0,
) -> dict[str, Any] | str:
    """The body in ``response_format``: a dict (JSON) or text."""
    if response_format == "verbose_json":
        return render_verbose(transcript, task, granularities, temperature)
    if response_format == "srt":
        return to_srt(transcript)
    if response_format == "vtt":
        return to_vtt(transcript)
    if response_format == "text":
        return text_of(transcript) + "\n"
    return {"text": text_of(transcript)}


STATUSES = {"QUEUED": "queued", "IN_PROGRESS": "in_progress", "COMPLETED": "completed", "FAILED": "failed",
            "STOPPED": "cancelled"}  # fmt: skip


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def job_status(job: JobDocument, base_url: str) -> dict[str, Any]:
    """An async job as ``GET /v1/audio/jobs/{id}`` answers it while it is not completed."""
    status = STATUSES.get(job.status.value, job.status.value.lower())
    body: dict[str, Any] = {
        "id": job.id, "object": "audio.job", "status": status,
        "task": job.openai.task if job.openai else "transcribe",
        "created_at": _when(job.created_at), "completed_at": _when(job.completed_at),
        "url": f"{base_url}/v1/audio/jobs/{job.id}",
    }  # fmt: skip
    if job.status == JobStatus.FAILED:
        body["error"] = {"message": public_reason(job.failure_reason), "type": "server_error"}
    return body


EVENTS = {
    "job.completed": "audio.job.completed",
    "job.failed": "audio.job.failed",
    "job.stopped": "audio.job.cancelled",
}


def webhook_payload(
    job: JobDocument, event: str, transcript: Transcript | None, base_url: str
) -> dict[str, Any]:
    """Standard Webhooks' shape: ``type``, ``timestamp`` and ``data`` (the job; a completed one's
    result in the JSON format it asked for, ``verbose_json`` when it asked for text)."""
    data = job_status(job, base_url)
    request = job.openai
    if transcript is not None and job.status == JobStatus.COMPLETED and request is not None:
        wanted = request.response_format if request.response_format == "json" else "verbose_json"
        data["result"] = render(transcript, wanted, request.task, request.timestamp_granularities,
                                request.temperature)  # fmt: skip
    return {"type": event, "timestamp": _when(job.completed_at or job.updated_at), "data": data}
