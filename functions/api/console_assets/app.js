// The console's shell: sign-in, navigation and a hash router (#/jobs, #/job/<id>, #/batches,
// #/batch/<name>, #/datasets, #/dataset/<slug>, #/webhooks). Each view is a module whose
// render(main, ...params) returns a function that stops its timers when the view is left.

import { ApiError, get, session } from "./api.js";
import { clear, h, message } from "./dom.js";
import * as jobs from "./jobs.js";
import * as job from "./job.js";
import * as batches from "./batches.js";
import * as datasets from "./datasets.js";
import * as webhooks from "./webhooks.js";

const main = document.getElementById("main");
let leave = () => {};

const routes = [
  [/^#\/jobs$/, jobs.render, "jobs"],
  [/^#\/job\/([\w-]+)$/, job.render, "jobs"],
  [/^#\/batches$/, batches.renderList, "batches"],
  [/^#\/batch\/(.+)$/, batches.renderBatch, "batches"],
  [/^#\/datasets$/, datasets.renderList, "datasets"],
  [/^#\/dataset\/(.+)$/, datasets.renderDataset, "datasets"],
  [/^#\/webhooks$/, webhooks.render, "webhooks"],
];

function signIn(error) {
  document.getElementById("nav").hidden = true;
  document.getElementById("who").hidden = true;
  const input = h("input", { id: "key", type: "password", name: "key", autocomplete: "current-password",
    required: true, placeholder: "shv_…", spellcheck: false });
  const status = h("div", { "aria-live": "polite" }, error ? message("error", error) : null);
  const form = h("form.card.signin", { onsubmit: async (event) => {
    event.preventDefault();
    session.key = input.value.trim();
    try {
      await start();
    } catch (err) {
      session.key = "";
      clear(status, message("error", err instanceof ApiError && err.status === 401
        ? "That API key is not valid." : err.message));
      input.focus();
    }
  } },
  h("h1", {}, "Sign in"),
  h("p", {}, "Use an API key of your tenant (make up writes one to .shenava/dev-api-key)."),
  h("label", { htmlFor: "key" }, "API key"), input,
  h("button.primary", { type: "submit" }, "Sign in"),
  status);
  clear(main, form);
  input.focus();
}

async function start() {
  const who = await get("/ui/api/session");
  session.tenant = who.tenant;
  document.getElementById("tenant").textContent = who.tenant;
  document.getElementById("nav").hidden = false;
  document.getElementById("who").hidden = false;
  if (!routes.some(([pattern]) => pattern.test(location.hash))) location.hash = "#/jobs";
  else route();
}

function route() {
  if (!session.key) return signIn();
  leave();
  const found = routes.find(([pattern]) => pattern.test(location.hash));
  if (!found) { location.hash = "#/jobs"; return; }
  const [pattern, render, section] = found;
  const params = location.hash.match(pattern).slice(1).map(decodeURIComponent);
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  main.replaceChildren();
  leave = render(main, ...params) || (() => {});
  main.focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);
function signOut(reason) {
  session.key = "";
  session.tenant = "";
  leave();
  leave = () => {};
  signIn(reason);
}

window.addEventListener("shenava:unauthorized", () => {
  // while signing in, the form says what went wrong itself
  if (session.tenant) signOut("Your API key was refused; sign in again.");
});
document.getElementById("sign-out").addEventListener("click", () => signOut());

if (session.key) start().catch((err) => signIn(err.message));
else signIn();
