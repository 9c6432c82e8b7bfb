// Jobs: upload by drag and drop (TRD v3 job/create, with a progress bar per file) and the list,
// filtered, refreshed while anything is unfinished.

import { ApiError, get, post, upload } from "./api.js";
import { clear, h, message, percent, progressBar, statusBadge, when } from "./dom.js";

export const LANGUAGES = [
  ["auto", "Detect"], ["en", "English"], ["pt", "Portuguese"], ["fa", "Persian"], ["es", "Spanish"],
  ["fr", "French"], ["it", "Italian"], ["de", "German"], ["ru", "Russian"], ["ar", "Arabic"],
];
const STATUSES = ["", "QUEUED", "IN_PROGRESS", "COMPLETED", "FAILED", "STOPPED"];
const REFRESH_MS = 2000;

function uploadPanel(onUploaded) {
  const files = h("input", { id: "files", type: "file", multiple: true, accept: "audio/*,video/*",
    class: "visually-hidden" });
  const language = h("select", { id: "language" },
    LANGUAGES.map(([code, name]) => h("option", { value: code }, name)));
  const speakers = h("input", { id: "speakers", type: "checkbox" });
  const list = h("ul.uploads", { "aria-live": "polite" });
  const zone = h("div.dropzone", {},
    h("p", {}, "Drop audio or video files here, or ",
      h("label.button", { htmlFor: "files" }, "choose files")), files);

  async function send(file) {
    const bar = progressBar(0, `Uploading ${file.name}`);
    const state = h("span.state", {}, "uploading");
    const item = h("li", {}, h("span.name", {}, file.name), bar, state);
    list.prepend(item);
    const form = new FormData();
    form.append("upload_file", file, file.name);
    form.append("config", JSON.stringify({
      recognition: { language: language.value },
      diarization: { clustering: { enabled: speakers.checked } },
    }));
    try {
      const answer = await upload("/trd/v3/job/create", form, (fraction) => {
        bar.value = fraction;
        state.textContent = percent(fraction);
      });
      bar.value = 1;
      clear(state, "sent — ", h("a", { href: `#/job/${answer.job.id}` }, "open"));
      onUploaded();
    } catch (err) {
      item.classList.add("failed");
      bar.replaceWith(h("span", {}, "not sent"));  // a full bar would read as success
      clear(state, message("error", err.message));
    }
  }

  const take = (chosen) => { for (const file of chosen) send(file); };
  files.addEventListener("change", () => { take(files.files); files.value = ""; });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => { event.preventDefault(); zone.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) zone.addEventListener(name, () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => { event.preventDefault(); take(event.dataTransfer.files); });
  return h("section.card", { "aria-labelledby": "upload-title" },
    h("h2", { id: "upload-title" }, "Transcribe files"),
    zone,
    h("div.row", {},
      h("span.field", {}, h("label", { htmlFor: "language" }, "Language"), language),
      h("label.check", {}, speakers, "Label speakers")),
    list);
}

function filterBar(onChange) {
  const status = h("select", { id: "filter-status" },
    STATUSES.map((s) => h("option", { value: s }, s ? s.replace("_", " ").toLowerCase() : "any status")));
  const since = h("input", { id: "filter-since", type: "date" });
  const search = h("input", { id: "filter-q", type: "search", placeholder: "file name, tag or id" });
  let typing = null;
  const changed = () => onChange({ status: status.value, since: since.value, q: search.value.trim() });
  status.addEventListener("change", changed);
  since.addEventListener("change", changed);
  search.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(changed, 300); });
  return h("form.filters", { role: "search", onsubmit: (e) => { e.preventDefault(); changed(); } },
    h("span.field", {}, h("label", { htmlFor: "filter-status" }, "Status"), status),
    h("span.field", {}, h("label", { htmlFor: "filter-since" }, "Since"), since),
    h("span.field", {}, h("label", { htmlFor: "filter-q" }, "Search"), search));
}

function jobRow(job, refresh, report) {
  const running = job.status === "IN_PROGRESS" || job.status === "QUEUED";
  const stop = running ? h("button.quiet", { type: "button", "aria-label": `Stop ${job.filename}`,
    onclick: async () => {
      try { await post(`/trd/v3/job/stop/${job.id}`); refresh(); } catch (err) { report(err); }
    } }, "Stop") : null;
  const progress = job.status === "IN_PROGRESS"
    ? h("span.progress", {}, progressBar(job.progress?.fraction, `${job.filename} progress`),
      percent(job.progress?.fraction)) : null;
  return h("tr", { dataset: { id: job.id, status: job.status } },
    h("td", {}, h("a", { href: `#/job/${job.id}` }, job.filename || job.id),
      job.failure_reason ? h("div.reason", {}, job.failure_reason) : null),
    h("td", {}, statusBadge(job.status), progress),
    h("td.hide-small", {}, when(job.created_at)),
    h("td.hide-small", {}, job.batch ? h("a", { href: `#/batch/${encodeURIComponent(job.batch)}` }, job.batch)
      : job.source),
    h("td", {}, stop));
}

export function render(root) {
  let filters = { status: "", since: "", q: "" };
  let timer = null;
  let alive = true;
  const body = h("tbody");
  const summary = h("p.summary", { "aria-live": "polite" });
  const table = h("table.jobs", {},
    h("caption.visually-hidden", {}, "Your jobs, newest first"),
    h("thead", {}, h("tr", {}, ["File", "Status", "Created", "Batch / source", ""].map(
      (title) => h("th", { scope: "col", class: ["Created", "Batch / source"].includes(title) ? "hide-small" : null },
        title)))),
    body);

  const report = (err) => summary.replaceChildren(message("error", err.message));

  async function refresh() {
    clearTimeout(timer);
    try {
      const since = filters.since ? new Date(filters.since).toISOString() : "";
      const found = await get("/ui/api/jobs", { status: filters.status, since, q: filters.q, limit: 100 });
      if (!alive) return;
      clear(body, found.jobs.map((job) => jobRow(job, refresh, report)));
      summary.textContent = found.total ? `${found.total} job${found.total === 1 ? "" : "s"}` : "No jobs yet.";
      const busy = found.jobs.some((job) => job.status === "QUEUED" || job.status === "IN_PROGRESS");
      timer = setTimeout(refresh, busy ? REFRESH_MS : REFRESH_MS * 5);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) report(err);
      if (alive) timer = setTimeout(refresh, REFRESH_MS * 5);
    }
  }

  clear(root,
    h("h1", {}, "Jobs"),
    uploadPanel(refresh),
    h("section.card", { "aria-labelledby": "jobs-title" },
      h("h2", { id: "jobs-title" }, "Your jobs"),
      filterBar((chosen) => { filters = chosen; refresh(); }),
      summary, h("div.scroll", {}, table)));
  refresh();
  return () => { alive = false; clearTimeout(timer); };
}

