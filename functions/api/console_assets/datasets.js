// Kashf datasets through Kashf's own endpoints: the list (list_datasets), one dataset's per-tag
// precision/recall/F1 as a chart (dataset_info), and a tag's reports and predictions, 50 a page.

import { get, post } from "./api.js";
import { clear, h, message, when } from "./dom.js";

const MEASURES = [["precision", "Precision"], ["recall", "Recall"], ["f1", "F1"]];

export function renderList(root) {
  const body = h("div", { "aria-live": "polite" }, h("p", {}, "Loading…"));
  clear(root, h("h1", {}, "Datasets"), body);
  get("/api/list_datasets/").then((found) => {
    if (!found.length) { clear(body, message("info", "No Kashf datasets yet (POST /api/create_dataset/).")); return; }
    clear(body, h("div.scroll", {}, h("table", {},
      h("thead", {}, h("tr", {}, ["Dataset", "Type", "State", "Tags", "Reports", "Precision / recall", "Trained"].map(
        (t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, found.map((d) => h("tr", {},
        h("td", {}, h("a", { href: `#/dataset/${encodeURIComponent(d.slug)}` }, d.title || d.slug)),
        h("td", {}, d.type), h("td", {}, d.state), h("td", {}, d.tag_count), h("td", {}, d.report_count),
        h("td", {}, d.evaluation ? `${d.evaluation.precision} / ${d.evaluation.recall}` : "—"),
        h("td", {}, when(d.trained_at))))))));
  }).catch((err) => clear(body, message("error", err.message)));
  return () => {};
}

// One group of bars per tag, 0-100 %: <meter>s, so the chart reflows on any screen and reads
// out as numbers (the table below has them too).
function chart(tags) {
  const rated = tags.filter((t) => t.evaluation);
  if (!rated.length) return message("info", "No tag has an evaluation yet: train the dataset first.");
  return h("figure.chart", { "aria-label": "Precision, recall and F1 per tag, in percent" },
    rated.map((tag) => h("div.chart-group", {},
      h("div.chart-tag", { dir: "auto" }, tag.title),
      MEASURES.map(([key, name]) => {
        const value = tag.evaluation[key] || 0;
        return h("div.chart-row", {},
          h("span.chart-name", {}, name),
          h(`meter.bar-${key}`, { min: 0, max: 100, value, "aria-label": `${tag.title}: ${name} ${value}%` }),
          h("span.chart-value", {}, value.toFixed(1)));
      }))),
    h("figcaption.legend.chart-legend", {}, MEASURES.map(([key, name]) => h(`span.bar-${key}`, {}, name))));
}

function evaluationTable(tags) {
  return h("div.scroll", {}, h("table", {},
    h("caption", {}, "Per tag (percent, out-of-fold)"),
    h("thead", {}, h("tr", {}, ["Tag", "Active", "Reports", "Positive", "Predictions", "Not sure",
      ...MEASURES.map(([, n]) => n)].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, tags.map((t) => h("tr", {},
      h("th", { scope: "row" }, t.title), h("td", {}, t.active ? "yes" : "no"), h("td", {}, t.reports),
      h("td", {}, t.positive_reports), h("td", {}, t.predictions), h("td", {}, t.notsure_reports),
      MEASURES.map(([key]) => h("td", {}, t.evaluation ? t.evaluation[key] : "—")))))));
}

function itemText(row) {
  const item = row.text || row.image || row;
  return item.content ?? item.url ?? `#${item.id}`;
}

function listing(title, load) {
  const body = h("div", { "aria-live": "polite" });
  const show = async (page) => {
    try {
      const found = await load(page);
      const pager = h("div.row", {},
        h("button", { type: "button", disabled: !found.previous, onclick: () => show(page - 1) }, "Previous"),
        h("span", {}, `page ${page}, ${found.count} in all`),
        h("button", { type: "button", disabled: !found.next, onclick: () => show(page + 1) }, "Next"));
      clear(body, found.results.length ? h("ul.items", {}, found.results.map((row) => h("li", { dir: "auto" },
        itemText(row),
        row.probability !== undefined ? h("span.count", {}, ` ${(row.probability * 100).toFixed(0)}%`) : null,
        row.positive !== undefined ? h("span.count", {}, row.positive ? " positive" : " negative") : null)))
        : message("info", "None."), pager);
    } catch (err) { clear(body, message("error", err.message)); }
  };
  show(1);
  return h("section.card", {}, h("h3", {}, title), body);
}

function tagLists(slug, tags) {
  const target = h("div.lists");
  const select = h("select", { id: "tag-choice" }, tags.map((t) => h("option", { value: t.id }, t.title)));
  const choose = () => {
    const tagId = Number(select.value);
    clear(target,
      listing("Reports", (page) => post("/api/list_tag_reports/", { tag_id: tagId }, { page })),
      listing("Predictions", (page) => post("/api/list_tag_predictions/", { dataset: slug, tag_id: tagId }, { page })));
  };
  select.addEventListener("change", choose);
  if (tags.length) choose();
  return h("section", { "aria-labelledby": "lists-title" }, h("h2", { id: "lists-title" }, "Reports and predictions"),
    h("div.row", {}, h("label", { htmlFor: "tag-choice" }, "Tag"), select), target);
}

export function renderDataset(root, slug) {
  const body = h("div", { "aria-live": "polite" }, h("p", {}, "Loading…"));
  clear(root, h("p.back", {}, h("a", { href: "#/datasets" }, "← All datasets")), body);
  post("/dataset_info/", { dataset: slug, tags: true }).then((info) => {
    const tags = info.tags || [];
    const overall = info.evaluation ? `precision ${info.evaluation.precision}, recall ${info.evaluation.recall}, `
      + `F1 ${info.evaluation.f1}` : "not evaluated yet";
    clear(body, h("h1", {}, info.title || slug),
      h("p", {}, `${info.type} dataset, ${info.state}; ${info.data_count} items, ${info.report_count} reports; `
        + `overall ${overall}.`),
      info.failure_reason ? message("error", info.failure_reason) : null,
      h("section.card", { "aria-labelledby": "quality-title" }, h("h2", { id: "quality-title" }, "Quality per tag"),
        chart(tags), evaluationTable(tags)),
      tags.length ? tagLists(slug, tags) : message("info", "This dataset has no tags yet."));
  }).catch((err) => clear(body, message("error", err.message)));
  return () => {};
}
