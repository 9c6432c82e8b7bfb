// Small DOM and formatting helpers shared by the console's views.

// h("button.primary", {type: "button", onclick: f}, "Save") → an element; children may be
// strings, nodes, arrays or null (skipped). Attributes starting with "on" become listeners.
export function h(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name in el && !name.includes("-") && name !== "list") el[name] = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// 75.5 → "1:15.5"; 3725 → "1:02:05"
export function clock(seconds, decimals = 0) {
  const s = Math.max(0, seconds || 0);
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const rest = (s % 60).toFixed(decimals).padStart(decimals ? 3 + decimals : 2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${rest}` : `${minutes}:${rest}`;
}

export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function bytes(n) {
  if (!n) return "—";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function percent(fraction) {
  return `${Math.round((fraction || 0) * 100)}%`;
}

const STATUS_LABELS = {
  QUEUED: "Queued", IN_PROGRESS: "Processing", COMPLETED: "Completed", FAILED: "Failed",
  STOPPED: "Stopped", DELETED: "Deleted",
};

export function statusBadge(status) {
  return h(`span.badge.status-${(status || "").toLowerCase()}`, {}, STATUS_LABELS[status] || status);
}

// A labelled progress bar (the label is what a screen reader announces).
export function progressBar(fraction, label) {
  return h("progress", { max: 1, value: fraction || 0, "aria-label": label, title: percent(fraction) });
}

export function message(kind, text) {
  return h(`p.message.${kind}`, { role: kind === "error" ? "alert" : "status" }, text);
}

// Save a Blob as a file through a temporary link (downloads need no second request).
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
