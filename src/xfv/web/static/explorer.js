// The explorer: pair columns, then one group of columns per model (two-level header, per-model filters),
// server-side filters, sort and paging over /api/pairs; the state lives in the URL; rows open the viewer.
"use strict";

const state = { sort: "id", model: "", page: 1, models: [], where: new Map() };
const form = document.getElementById("filters");
const PAIR_COLUMNS = [
  { key: "id", title: "id", sort: "id" }, { key: "faces", title: "faces" },
  { key: "label", title: "label", sort: "label" }, { key: "fold", title: "fold", sort: "fold" },
  { key: "identities", title: "identities", sort: "identity1" }, { key: "quality", title: "quality", sort: "quality1",
    help: "image quality for the model: how stable its embedding stays under small shifts, zooms, a mirror and occlusions (1 − mean distance; higher is better; docs/quality.md)" },
];
const MODEL_COLUMNS = [
  { key: "prediction", title: "prediction", help: "same or different person; ✓ right, ✗ wrong" },
  { key: "distance", title: "distance", help: "cosine distance d (Eq. 1)" },
  { key: "threshold", title: "t", help: "the threshold of the pair's fold (or the shipped calibration's, see the confidence's tooltip): same if d ≤ t" },
  { key: "confidence", title: "confidence", help: "C-Score (Eq. 3): probability the decision is right; 0.5 = no information; below 0.5 (quality-aware C-Score): more likely wrong than right" },
];
const MODEL_FILTERS = [
  ["prediction", [["", "all"], ["same", "same"], ["different", "different"]]],
  ["correct", [["", "all"], ["true", "✓ right"], ["false", "✗ wrong"]]],
];

function modelsOfDataset() {
  const option = document.getElementById("dataset").selectedOptions[0];
  return option && option.dataset.models ? option.dataset.models.split(",").filter(Boolean) : [];
}

function sortHeader(title, sortKey, model, help) {
  const active = state.sort.replace(/^-/, "") === sortKey && (!model || model === state.model);
  const th = el("th", { class: "sortable", "data-sort": sortKey }, title);
  if (help) th.title = help;
  if (model) th.dataset.model = model;
  if (active) th.append(state.sort.startsWith("-") ? " ▼" : " ▲");
  th.addEventListener("click", () => {
    if (model) state.model = model;
    state.sort = active && !state.sort.startsWith("-") ? `-${sortKey}` : sortKey;
    state.page = 1;
    load();
  });
  return th;
}

function buildHeader() {
  const groups = [el("th", { colspan: PAIR_COLUMNS.length, class: "group pair-group fixed" }, "pair")];
  const header = PAIR_COLUMNS.map((c) => {
    const th = c.sort ? sortHeader(c.title, c.sort, null, c.help) : el("th", {}, c.title);
    th.classList.add("fixed");
    return th;
  });
  const filters = [el("th", { colspan: PAIR_COLUMNS.length, class: "fixed" })];
  for (const model of state.models) {
    groups.push(el("th", { colspan: MODEL_COLUMNS.length, class: "group model-group", "data-model": model }, model));
    MODEL_COLUMNS.forEach((c, i) => {
      const th = sortHeader(c.title, c.key, model, c.help);
      if (i === 0) th.classList.add("group-start");
      header.push(th);
    });
    const controls = MODEL_FILTERS.map(([field, options]) => {
      const select = el("select", { "data-model": model, "data-field": field, title: `${model}: ${field}` },
        ...options.map(([value, text]) => el("option", { value }, text)));
      select.value = state.where.get(`${model}:${field}`) || "";
      select.addEventListener("change", () => setWhere(model, field, select.value));
      return select;
    });
    const minimum = el("input", { type: "number", min: "0.5", max: "1", step: "0.05", placeholder: "conf ≥",
      "data-model": model, "data-field": "confidence_min", title: `${model}: lowest confidence` });
    minimum.value = state.where.get(`${model}:confidence_min`) || "";
    minimum.addEventListener("change", () => setWhere(model, "confidence_min", minimum.value));
    filters.push(el("th", { colspan: MODEL_COLUMNS.length, class: "group-start", "data-model": model }, ...controls, minimum));
  }
  document.getElementById("groups").replaceChildren(...groups);
  document.getElementById("header").replaceChildren(...header);
  document.getElementById("model-filters").replaceChildren(...filters);
}

function setWhere(model, field, value) {
  const key = `${model}:${field}`;
  if (value === "") state.where.delete(key); else state.where.set(key, value);
  state.page = 1;
  load();
}

function confidenceCell(r) {
  return r.confidence === null ? "–" : confidenceView(r.confidence);
}

function renderRow(item) {
  const fixed = (col, ...children) => el("td", { class: "fixed", "data-col": col }, ...children);
  const cells = [
    fixed("id", el("a", { href: viewerUrl(item.id, state.model), class: "pair-link" }, item.id)),
    fixed("faces", el("span", { class: "thumbs" },
      el("img", { src: item.thumbnail1, alt: item.identity1, loading: "lazy", width: 40, height: 40 }),
      el("img", { src: item.thumbnail2, alt: item.identity2, loading: "lazy", width: 40, height: 40 }))),
    fixed("label", item.label), fixed("fold", item.fold),
    fixed("identities", el("span", { class: "identities", title: `${item.image1}\n${item.image2}` },
      el("span", {}, ...breakable(item.identity1)), el("span", {}, ...breakable(item.identity2)))),
    fixed("quality", el("span", { class: "stacked" }, ...[item.quality1, item.quality2].map(
      (q) => el("span", {}, q === null ? "–" : q.toFixed(3))))),
  ];
  for (const model of state.models) {
    const r = item.results[model];
    const cell = (col, ...children) => el("td", { "data-model": model, "data-col": col }, ...children);
    if (!r) {
      cells.push(el("td", { colspan: MODEL_COLUMNS.length, class: "group-start", "data-model": model }, "not computed"));
      continue;
    }
    const prediction = cell("prediction", el("span", { class: r.correct ? "ok" : "wrong" }, `${r.prediction} ${r.correct ? "✓" : "✗"}`));
    prediction.classList.add("group-start");
    const confidence = cell("confidence", confidenceCell(r));
    confidence.dataset.value = r.confidence === null ? "" : r.confidence;
    if (r.calibration) confidence.title = `calibration: ${r.calibration}`;
    cells.push(prediction, cell("distance", r.distance.toFixed(4)), cell("threshold", r.threshold.toFixed(4)), confidence);
  }
  const row = el("tr", { "data-id": item.id, class: "pair-row", title: "open in the viewer" }, ...cells);
  row.addEventListener("click", (event) => {
    if (event.target.closest("a")) return;
    const model = event.target.closest("td[data-model]");
    location.href = viewerUrl(item.id, model ? model.dataset.model : state.model);
  });
  return row;
}

// The viewer of a pair, carrying this table's filter and sort (for previous / next and the way back).
function viewerUrl(id, model) {
  const params = query();
  params.delete("page");
  params.set("model", model || "");
  params.set("sort_model", state.model);
  return `/viewer/${id}?${params}`;
}

function query() {
  const params = new URLSearchParams();
  for (const element of form.elements) {
    if (element.name && element.value !== "") params.set(element.name, element.value);
  }
  if (state.model) params.set("model", state.model);
  for (const [key, value] of state.where) params.append("where", `${key}:${value}`);
  params.set("sort", state.sort);
  params.set("page", state.page);
  return params;
}

// Two models fit 1366 px; with more, only the model groups scroll: the pair columns stay fixed.
function pinPairColumns() {
  const scroller = document.getElementById("table-scroll");
  const pinned = scroller.scrollWidth > scroller.clientWidth;
  for (const row of document.querySelectorAll("#pairs tr")) {
    let left = 0;
    for (const cell of row.querySelectorAll(".fixed")) {
      cell.style.left = pinned ? `${left}px` : "";
      cell.classList.toggle("pinned", pinned);
      left += cell.offsetWidth;
    }
  }
}

async function load() {
  const params = query();
  history.replaceState(null, "", `?${params}`);
  buildHeader();
  const error = document.getElementById("error");
  try {
    const page = await fetchJSON(`/api/pairs?${params}`);
    error.textContent = "";
    state.model = page.model || state.model;
    buildHeader();
    document.querySelector("#pairs tbody").replaceChildren(...page.items.map(renderRow));
    const pages = Math.max(1, Math.ceil(page.total / page.page_size));
    document.getElementById("total").textContent = `${page.total} of ${page.dataset_total} pairs`;
    document.getElementById("page-info").textContent = `page ${page.page} of ${pages}`;
    document.getElementById("prev").disabled = page.page <= 1;
    document.getElementById("next").disabled = page.page >= pages;
    pinPairColumns();
  } catch (e) {
    error.textContent = e.message;
  }
}

function restore() {
  const params = new URLSearchParams(location.search);
  for (const element of form.elements) {
    if (element.name && params.has(element.name)) element.value = params.get(element.name);
  }
  state.models = modelsOfDataset();
  state.model = params.get("model") || (state.models.includes("dlib") ? "dlib" : state.models[0] || "");
  state.where = new Map(params.getAll("where").map((item) => {
    const i = item.lastIndexOf(":");
    return [item.slice(0, i), item.slice(i + 1)];
  }));
  state.sort = params.get("sort") || "id";
  state.page = Number(params.get("page")) || 1;
}

let debounce = null;
function filterChanged(event) {
  if (event.target.id === "dataset") {
    state.models = modelsOfDataset();
    state.where.clear();
    if (!state.models.includes(state.model)) state.model = state.models[0] || "";
  }
  clearTimeout(debounce);
  debounce = setTimeout(() => { state.page = 1; load(); }, event.target.tagName === "SELECT" ? 0 : 300);
}
form.addEventListener("input", (event) => { if (event.target.tagName !== "SELECT") filterChanged(event); });
form.addEventListener("change", (event) => { if (event.target.tagName === "SELECT") filterChanged(event); });
form.addEventListener("submit", (event) => event.preventDefault());
document.getElementById("clear").addEventListener("click", () => {
  for (const element of form.elements) if (element.name && element.name !== "dataset" && element.name !== "page_size") element.value = "";
  state.where.clear();
  state.page = 1;
  load();
});
document.getElementById("prev").addEventListener("click", () => { state.page -= 1; load(); });
document.getElementById("next").addEventListener("click", () => { state.page += 1; load(); });
window.addEventListener("resize", pinPairColumns);

restore();
load();
