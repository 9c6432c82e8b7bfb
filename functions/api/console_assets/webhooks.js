// Webhooks: the tenant's delivery log (every attempt, newest first, failed only on demand, paged),
// the deliveries whose retries ran out (dead letters) with a Replay button each, and the URLs
// disabled by a 410 Gone answer. All from Shenava's own API (/shenava/v1).

import { get, post } from "./api.js";
import { clear, h, message, when } from "./dom.js";

const LIMIT = 25;
const API = "/shenava/v1";

function status(attempt) {
  if (attempt.status_code !== null && attempt.status_code !== undefined) return String(attempt.status_code);
  return attempt.outcome || "no answer";
}

function attemptRow(a) {
  return h("tr", { dataset: { outcome: a.outcome } },
    h("td", {}, when(a.at)),
    h("td", {}, h("a", { href: `#/job/${a.job_id}` }, a.job_id.slice(0, 8)), a.replay ? " (replay)" : ""),
    h("td", {}, a.event), h("td.url", {}, a.url), h("td", {}, status(a)),
    h("td.hide-small", {}, a.latency_ms !== null ? `${Math.round(a.latency_ms)} ms` : "—"),
    h("td", {}, a.error || ""), h("td.hide-small", {}, a.next_retry_at ? when(a.next_retry_at) : "—"));
}

function attemptsTable(found) {
  return h("div.scroll", {}, h("table", {},
    h("caption.visually-hidden", {}, "Delivery attempts, newest first"),
    h("thead", {}, h("tr", {}, ["Time", "Job", "Event", "URL", "Status", "Latency", "Error", "Next retry"]
      .map((t, i) => h(i === 5 || i === 7 ? "th.hide-small" : "th", { scope: "col" }, t)))),
    h("tbody", {}, found.attempts.map(attemptRow))));
}

function deadRow(letter, done) {
  const state = h("span", { "aria-live": "polite" });
  const replay = h("button.quiet", { type: "button", onclick: async () => {
    replay.disabled = true;
    try {
      await post(`${API}/jobs/${letter.job_id}/deliveries/${letter.delivery_id}/replay`);
      clear(state, "sent again");
      done();
    } catch (err) {
      clear(state, message("error", err.message));
      replay.disabled = false;
    }
  } }, "Replay");
  return h("tr", {},
    h("td", {}, h("a", { href: `#/job/${letter.job_id}` }, letter.job_id.slice(0, 8))),
    h("td", {}, letter.event), h("td.url", {}, letter.url), h("td", {}, letter.attempts),
    h("td", {}, letter.last_error), h("td.hide-small", {}, when(letter.given_up_at)),
    h("td", {}, replay, state));
}

export function render(root) {
  let page = 1;
  let alive = true;
  const failed = h("input", { id: "failed-only", type: "checkbox" });
  const attempts = h("div", { "aria-live": "polite" }, h("p", {}, "Loading…"));
  const pager = h("nav.pager", { "aria-label": "Pages of attempts" });
  const dead = h("div", { "aria-live": "polite" });
  const disabled = h("div");

  async function loadAttempts() {
    try {
      const found = await get(`${API}/webhooks/deliveries`, { failed: failed.checked, page, limit: LIMIT });
      if (!alive) return;
      clear(attempts, found.attempts.length ? attemptsTable(found)
        : message("info", failed.checked ? "No failed attempts." : "No webhook has been sent yet."));
      const pages = Math.max(1, Math.ceil(found.total / LIMIT));
      clear(pager,
        h("button.quiet", { type: "button", disabled: page <= 1, onclick: () => { page -= 1; loadAttempts(); } }, "Newer"),
        h("span", {}, ` page ${page} of ${pages} (${found.total} attempts) `),
        h("button.quiet", { type: "button", disabled: page >= pages, onclick: () => { page += 1; loadAttempts(); } }, "Older"));
    } catch (err) { clear(attempts, message("error", err.message)); }
  }

  async function loadDead() {
    try {
      const found = await get(`${API}/webhooks/dead-letters`, { limit: 100 });
      if (!alive) return;
      clear(dead, found.dead_letters.length ? h("div.scroll", {}, h("table", {},
        h("caption.visually-hidden", {}, "Deliveries whose retries ran out"),
        h("thead", {}, h("tr", {}, ["Job", "Event", "URL", "Attempts", "Last error", "Given up", "Replay"]
          .map((t, i) => h(i === 5 ? "th.hide-small" : "th", { scope: "col" }, t)))),
        h("tbody", {}, found.dead_letters.map((d) => deadRow(d, () => setTimeout(refresh, 1000)))))) :
        message("info", "No delivery has run out of retries."));
      const off = await get(`${API}/webhooks/endpoints/disabled`);
      clear(disabled, off.endpoints.length ? h("ul", {}, off.endpoints.map((e) => h("li", {},
        h("code", {}, e.url), ` — ${e.reason} `,
        h("button.quiet", { type: "button", onclick: async () => {
          await post(`${API}/webhooks/endpoints/enable`, undefined, { url: e.url });
          refresh();
        } }, "Enable")))) : null);
    } catch (err) { clear(dead, message("error", err.message)); }
  }

  function refresh() { loadAttempts(); loadDead(); }

  failed.addEventListener("change", () => { page = 1; loadAttempts(); });
  clear(root, h("h1", {}, "Webhooks"),
    h("p", {}, "Every notification is signed with Standard Webhooks headers (webhook-id, webhook-timestamp, ",
      "webhook-signature) beside the dialect's own; your secret: ", h("code", {}, `GET ${API}/webhooks/secret`), "."),
    h("section", { "aria-labelledby": "attempts-title" }, h("h2", { id: "attempts-title" }, "Delivery attempts"),
      h("label.check", {}, failed, "Failed only"), attempts, pager),
    h("section", { "aria-labelledby": "dead-title" }, h("h2", { id: "dead-title" }, "Retries exhausted"),
      dead, disabled));
  refresh();
  return () => { alive = false; };
}
