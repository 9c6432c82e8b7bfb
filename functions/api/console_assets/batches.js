// Drop-folder batches: the list, and one batch's files with their state, overall progress and
// ETA (TRD batch status), and the TRD batch API's start / stop / reset.

import { get } from "./api.js";
import { clear, clock, h, message, percent, progressBar, statusBadge, when } from "./dom.js";

const REFRESH_MS = 2000;

export function renderList(root) {
  const body = h("div", { "aria-live": "polite" }, h("p", {}, "Loading…"));
  clear(root, h("h1", {}, "Batches"),
    h("p", {}, "Files written to incoming/<batch>/<file> in the media bucket (the drop folder), by batch. ",
      "Push one with ", h("code", {}, "shenava batch push DIR --batch NAME"), "."),
    body);
  get("/ui/api/batches").then((found) => {
    if (!found.batches.length) { clear(body, message("info", "No batches yet.")); return; }
    clear(body, h("div.scroll", {}, h("table", {},
      h("caption.visually-hidden", {}, "Batches, newest first"),
      h("thead", {}, h("tr", {}, ["Batch", "Files", "States", "Latest file"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, found.batches.map((b) => h("tr", {},
        h("td", {}, h("a", { href: `#/batch/${encodeURIComponent(b.batch)}` }, b.batch)),
        h("td", {}, b.files),
        h("td", {}, Object.entries(b.statuses).map(([s, n]) => h("span.count", {}, statusBadge(s), ` ${n}`))),
        h("td", {}, when(b.last_created_at))))))));
  }).catch((err) => clear(body, message("error", err.message)));
  return () => {};
}

function fileRow(file) {
  return h("tr", { dataset: { id: file.id } },
    h("td", {}, h("a", { href: `#/job/${file.id}` }, file.filename),
      file.failure_reason ? h("div.reason", {}, file.failure_reason) : null),
    h("td", {}, file.control), h("td.hide-small", {}, file.stage),
    h("td", {}, statusBadge(file.status)),
    h("td", {}, h("span.progress", {}, progressBar(file.progress, `${file.filename} progress`),
      percent(file.progress))),
    h("td.hide-small", {}, file.duration ? clock(file.duration, 1) : "—"));
}

function overview(status) {
  const facts = [
    ["Files", status.total_files], ["Audio", clock(status.total_audio)],
    ["Speech", clock(status.total_speech)], ["Segments", status.total_segments],
    ["Estimated time left", status.progress >= 1 ? "done" : clock(status.ETA)],
  ];
  return h("div.card", {},
    h("p.big", {}, `${percent(status.progress)} done`),
    progressBar(status.progress, "Batch progress"),
    h("dl.meta", {}, facts.map(([name, value]) => [h("dt", {}, name), h("dd", {}, value)])));
}

export function renderBatch(root, name) {
  let timer = null;
  let alive = true;
  const state = h("div", { "aria-live": "polite" });
  const summary = h("div");
  const files = h("tbody");
  const act = async (verb, params = "") => {
    try {
      await get(`/trd/transcription/${verb}/batch/${encodeURIComponent(name)}${params}`);
      clear(state, message("info", `${verb[0].toUpperCase()}${verb.slice(1)} sent to the batch's files.`));
    } catch (err) {
      clear(state, message("error", err.message));
    }
    refresh();
  };
  const hard = h("input", { id: "hard-reset", type: "checkbox" });
  const controls = h("div.row", {},
    h("button.primary", { type: "button", onclick: () => act("start") }, "Start"),
    h("button", { type: "button", onclick: () => act("stop") }, "Stop"),
    h("button", { type: "button", onclick: () => {
      if (confirm(hard.checked ? "Reset every file of the batch, finished ones too?" : "Reset unfinished and failed files?")) {
        act("reset", hard.checked ? "?hard=true" : "");
      }
    } }, "Reset"),
    h("label.check", {}, hard, "including finished files"));

  async function refresh() {
    clearTimeout(timer);
    try {
      const found = await get(`/ui/api/batches/${encodeURIComponent(name)}`);
      if (!alive) return;
      clear(summary, overview(found.status));
      clear(files, found.files.map(fileRow));
      timer = setTimeout(refresh, found.status.progress >= 1 ? REFRESH_MS * 5 : REFRESH_MS);
    } catch (err) {
      if (alive) clear(summary, message("error", err.message));
    }
  }

  clear(root, h("p.back", {}, h("a", { href: "#/batches" }, "← All batches")),
    h("h1", {}, `Batch ${name}`), controls, state, summary,
    h("section.card", { "aria-labelledby": "files-title" }, h("h2", { id: "files-title" }, "Files"),
      h("div.scroll", {}, h("table", {},
        h("thead", {}, h("tr", {}, ["File", "Control", "Stage", "Status", "Progress", "Duration"].map(
          (t) => h("th", { scope: "col", class: ["Stage", "Duration"].includes(t) ? "hide-small" : null }, t)))),
        files))));
  refresh();
  return () => { alive = false; clearTimeout(timer); };
}
