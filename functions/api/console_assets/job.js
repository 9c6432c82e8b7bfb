// One job: its state while it runs (progress), then the transcript next to an audio player.
// Click a word (or a segment's time) to play from there; the word being spoken is highlighted;
// speakers have colours, low-confidence words are shaded, quality flags are shown; downloads in
// every format the server renders (subtitles too: one renderer on the server for every client).

import { ApiError, blob, get, post } from "./api.js";
import { clear, clock, h, message, percent, progressBar, saveBlob, statusBadge, when } from "./dom.js";

const REFRESH_MS = 2000;
const LOW_CONFIDENCE = 0.5;
const FLAG_LABELS = {
  repetition: "repetition", low_confidence: "low confidence", broken_text: "broken text", no_speech: "no speech",
};

// The speaker's name as shown: a bare number (TRD's speakers) reads "Speaker 2"; a stereo file's
// channel when no speaker is known (as the server's subtitles label them).
function speakerOf(segment, channels) {
  if (segment.speaker) return /^\d+$/.test(segment.speaker) ? `Speaker ${segment.speaker}` : segment.speaker;
  return channels > 1 ? `Channel ${segment.channel + 1}` : "";
}

function meta(job) {
  const rows = [
    ["Status", statusBadge(job.status)],
    ["Duration", job.media.duration ? clock(job.media.duration, 1) : "—"],
    ["Language", job.language || "detected"],
    ["Channels", job.media.channels || "—"],
    ["Created", when(job.created_at)],
    ["Source", job.batch ? `drop folder, batch ${job.batch}` : job.source],
  ];
  return h("dl.meta", {}, rows.map(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]));
}

function baseName(job) {
  return (job.filename || job.id).replace(/\.[^.]+$/, "");
}

function downloads(job) {
  const base = baseName(job);
  const served = job.downloads.map((d) => h("li", {}, h("button", { type: "button",
    dataset: { format: d.suffix }, onclick: async (event) => {
      event.target.disabled = true;
      try { saveBlob(await blob(d.path), `${base}${d.suffix}`); } finally { event.target.disabled = false; }
    } }, d.label)));
  return h("section.downloads", { "aria-labelledby": "downloads-title" },
    h("h2", { id: "downloads-title" }, "Download"), h("ul", {}, served));
}

function speakerIndex(transcript) {
  const index = new Map();
  for (const segment of transcript.segments) {
    const who = speakerOf(segment, transcript.channels);
    if (who && !index.has(who)) index.set(who, index.size % 8);
  }
  return index;
}

function wordSpans(segment, words) {
  const parts = [];
  for (const word of segment.words) {
    const lead = word.text.match(/^\s*/)[0];
    if (lead || parts.length) parts.push(lead || " ");
    const low = word.confidence < LOW_CONFIDENCE;
    const span = h(`span.w${low ? ".low" : ""}`, { dataset: { start: word.start, end: word.end },
      title: `${clock(word.start, 2)} · confidence ${percent(word.confidence)}` }, word.text.trim());
    words.push({ start: word.start, end: word.end, el: span });
    parts.push(span);
  }
  return parts;
}

function segmentBlock(segment, speakers, channels, words, seek) {
  const who = speakerOf(segment, channels);
  const text = segment.text.trim();
  const flags = segment.flags.map((flag) => h(`span.flag.flag-${flag}`, {}, FLAG_LABELS[flag] || flag));
  const body = !text ? h("p.words.silent", {}, "No speech recognised here.")
    : h("p.words", { dir: "auto" }, segment.words.length ? wordSpans(segment, words) : text);
  return h(`article.segment${who ? `.spk-${speakers.get(who)}` : ""}`, { dataset: { start: segment.start } },
    h("header", {},
      h("button.time", { type: "button", "aria-label": `Play from ${clock(segment.start)}`,
        onclick: () => seek(segment.start) }, clock(segment.start)),
      who ? h("span.speaker", {}, who) : null, flags),
    body);
}

// The word playing at `time`: the last one starting at or before it, if it has not ended.
function wordAt(words, time) {
  let lo = 0;
  let hi = words.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (words[mid].start <= time) { found = mid; lo = mid + 1; } else hi = mid - 1;
  }
  return found >= 0 && time < words[found].end + 0.05 ? words[found] : null;
}

async function loadMedia(audio, job, status) {
  for (const variant of ["original", "normalized"]) {
    try {
      const media = await blob(`/ui/api/jobs/${job.id}/media?variant=${variant}`);
      audio.src = URL.createObjectURL(media);
      const playable = await new Promise((resolve) => {
        audio.addEventListener("loadedmetadata", () => resolve(true), { once: true });
        audio.addEventListener("error", () => resolve(false), { once: true });
      });
      if (playable) return;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) continue;
      clear(status, message("error", `The audio could not be loaded: ${err.message}`));
      return;
    }
  }
  clear(status, message("error", "The audio is no longer stored, or this browser cannot play it."));
}

function transcriptView(root, job, transcript, cleanup) {
  const audio = h("audio", { id: "player", controls: true, preload: "auto", "aria-label": `Audio of ${job.filename}` });
  const status = h("div", { "aria-live": "polite" });
  const follow = h("input", { id: "follow", type: "checkbox", checked: true });
  const words = [];
  const speakers = speakerIndex(transcript);
  const seek = (time) => {
    audio.currentTime = time;
    audio.play().catch(() => {});
  };
  const segments = h("section.transcript", { "aria-label": "Transcript", dataset: { words: "" } },
    transcript.segments.length ? transcript.segments.map(
      (s) => segmentBlock(s, speakers, transcript.channels, words, seek)) : message("info", "No speech was found."));
  words.sort((a, b) => a.start - b.start);
  segments.addEventListener("click", (event) => {
    const word = event.target.closest("span.w");
    if (word) seek(Number(word.dataset.start));
  });
  let current = null;
  let frame = 0;
  const highlight = () => {
    const found = wordAt(words, audio.currentTime);
    if (found !== current) {
      current?.el.classList.remove("current");
      found?.el.classList.add("current");
      if (found && follow.checked && !audio.paused) found.el.scrollIntoView({ block: "nearest" });
      current = found;
    }
    if (!audio.paused) frame = requestAnimationFrame(highlight);
  };
  for (const name of ["play", "seeked", "timeupdate"]) audio.addEventListener(name, () => {
    cancelAnimationFrame(frame);
    highlight();
  });
  const keys = (event) => {
    if (event.target.closest("input, select, textarea, button, a")) return;
    const actions = { k: () => (audio.paused ? audio.play() : audio.pause()), " ": () => (audio.paused ? audio.play() : audio.pause()),
      j: () => { audio.currentTime -= 5; }, l: () => { audio.currentTime += 5; } };
    if (actions[event.key]) { event.preventDefault(); actions[event.key](); }
  };
  document.addEventListener("keydown", keys);
  cleanup.push(() => {
    document.removeEventListener("keydown", keys);
    cancelAnimationFrame(frame);
    audio.pause();
    if (audio.src) URL.revokeObjectURL(audio.src);
  });
  const legend = speakers.size ? h("ul.legend", { "aria-label": "Speakers" },
    [...speakers].map(([who, n]) => h(`li.spk-${n}`, {}, h("span.speaker", {}, who)))) : null;
  clear(root, h("div.job-layout", {},
    h("aside.player-panel", {}, audio, status,
      h("p.hint", {}, "Click a word to play from it. Keys: k or space play/pause, j/l 5 s back/forward."),
      h("label.check", {}, follow, "Follow playback"), legend,
      h("p.hint", {}, h("span.w.low", {}, "shaded"), " words: confidence under 50%."),
      downloads(job)),
    segments));
  loadMedia(audio, job, status);
}

export function render(root, id) {
  const cleanup = [];
  let timer = null;
  let alive = true;
  const head = h("div.job-head");
  const body = h("div");
  clear(root, h("p.back", {}, h("a", { href: "#/jobs" }, "← All jobs")), head, body);

  async function refresh() {
    let job;
    try {
      job = await get(`/ui/api/jobs/${id}`);
    } catch (err) {
      if (alive) clear(body, message("error", err.message));
      return;
    }
    if (!alive) return;
    const running = job.status === "QUEUED" || job.status === "IN_PROGRESS";
    const stop = running ? h("button.quiet", { type: "button", onclick: async () => {
      try { await post(`/trd/v3/job/stop/${id}`); refresh(); } catch (err) { clear(body, message("error", err.message)); }
    } }, "Stop") : null;
    clear(head, h("h1", {}, job.filename || job.id), meta(job), stop);
    if (running) {
      const fraction = job.progress?.fraction || 0;
      clear(body, h("div.card.waiting", {},
        h("p", {}, job.status === "QUEUED" ? "Waiting for a transcriber…"
          : `Transcribing: ${percent(fraction)} of the audio${job.progress ? `, ${job.progress.segments} segments` : ""}`),
        progressBar(fraction, "Transcription progress")));
      timer = setTimeout(refresh, REFRESH_MS);
    } else if (job.status === "COMPLETED") {
      try {
        transcriptView(body, job, await get(`/ui/api/jobs/${id}/transcript`), cleanup);
      } catch (err) { clear(body, message("error", err.message)); }
    } else {
      clear(body, message(job.status === "FAILED" ? "error" : "info",
        job.failure_reason || `This job is ${job.status.toLowerCase()}.`));
    }
  }

  refresh();
  return () => { alive = false; clearTimeout(timer); cleanup.forEach((f) => f()); };
}
