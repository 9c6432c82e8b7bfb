// SRT, WebVTT and plain text from a transcript (Shenava JSON: media-time words), in the browser.
// A stopgap until the server renders subtitles itself (issue 13); the CLI's shenava_cli/subtitles.py
// follows the same rules: at most 42 characters a line, 2 lines and 7 s a cue, cut at word times,
// the speaker (or the channel of a stereo file) in front of each cue.

const MAX_LINE = 42;
const MAX_LINES = 2;
const MAX_CUE_S = 7.0;

// The speaker's name as shown: a bare number (TRD's speakers) reads "Speaker 2".
export function speakerName(speaker) {
  return /^\d+$/.test(speaker) ? `Speaker ${speaker}` : speaker;
}

export function speakerOf(segment, channels) {
  if (segment.speaker) return speakerName(segment.speaker);
  return channels > 1 ? `Channel ${segment.channel + 1}` : "";
}

// Words of a segment; a segment without word times shares its time out by characters.
function wordsOf(segment) {
  if (segment.words?.length) return segment.words;
  const texts = segment.text.trim().split(/\s+/);
  const total = texts.reduce((n, t) => n + t.length, 0) || 1;
  let at = segment.start;
  return texts.map((text, i) => {
    const span = ((segment.end - segment.start) * text.length) / total;
    const word = { text: (i ? " " : "") + text, start: at, end: at + span };
    at += span;
    return word;
  });
}

function joinWords(words) {
  const spaced = words.some((w) => /^\s/.test(w.text));
  return (spaced ? words.map((w) => w.text).join("") : words.map((w) => w.text).join(" ")).trim();
}

// Greedy wrap into lines of at most MAX_LINE characters (a longer single word stays whole).
export function wrap(text) {
  const lines = [];
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const last = lines.length - 1;
    if (last >= 0 && lines[last].length + 1 + word.length <= MAX_LINE) lines[last] += ` ${word}`;
    else lines.push(word);
  }
  return lines;
}

export function cues(transcript) {
  const found = [];
  const segments = [...transcript.segments].sort((a, b) => a.start - b.start || a.channel - b.channel);
  for (const segment of segments) {
    if (!segment.text.trim()) continue;
    const speaker = speakerOf(segment, transcript.channels);
    const prefix = speaker ? `${speaker}: ` : "";
    let current = [];
    const close = () => {
      if (!current.length) return;
      found.push({ start: current[0].start, end: current[current.length - 1].end, speaker,
        lines: wrap(joinWords(current)) });
      current = [];
    };
    for (const word of wordsOf(segment)) {
      const candidate = [...current, word];
      const tooLong = wrap(prefix + joinWords(candidate)).length > MAX_LINES;
      if (current.length && (tooLong || word.end - current[0].start > MAX_CUE_S)) close();
      current.push(word);
    }
    close();
  }
  return found;
}

function stamp(seconds, separator) {
  const ms = Math.round(Math.max(0, seconds) * 1000);
  const pad = (n, width = 2) => String(n).padStart(width, "0");
  return `${pad(Math.floor(ms / 3600000))}:${pad(Math.floor(ms / 60000) % 60)}:`
    + `${pad(Math.floor(ms / 1000) % 60)}${separator}${pad(ms % 1000, 3)}`;
}

function cueEnd(cue) {
  return Math.max(cue.end, cue.start + 0.001);
}

export function toSrt(transcript) {
  return cues(transcript).map((cue, i) => {
    const lines = wrap((cue.speaker ? `${cue.speaker}: ` : "") + cue.lines.join(" "));
    return `${i + 1}\n${stamp(cue.start, ",")} --> ${stamp(cueEnd(cue), ",")}\n${lines.join("\n")}\n`;
  }).join("\n");
}

export function toVtt(transcript) {
  const body = cues(transcript).map((cue) => {
    const voice = cue.speaker ? `<v ${cue.speaker.replace(/[<>&]/g, "")}>` : "";
    const text = cue.lines.map((line) => line.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"));
    return `${stamp(cue.start, ".")} --> ${stamp(cueEnd(cue), ".")}\n${voice}${text.join("\n")}\n`;
  });
  return ["WEBVTT\n", ...body].join("\n");
}

export function toText(transcript) {
  const lines = [];
  let speaker = null;
  for (const segment of [...transcript.segments].sort((a, b) => a.start - b.start)) {
    const text = segment.text.trim();
    if (!text) continue;
    const who = speakerOf(segment, transcript.channels);
    if (who && who !== speaker) lines.push(`${lines.length ? "\n" : ""}${who}:`);
    speaker = who;
    lines.push(text);
  }
  return `${lines.join("\n")}\n`;
}
