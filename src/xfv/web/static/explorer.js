// The explorer: server-side filters, sort and paging over /api/pairs; column visibility.
"use strict";

const state = { sort: "id", page: 1, models: [], hidden: new Set(["image1", "image2", "distance"]) };
const form = document.getElementById("filters");
const FIXED = [
  ["id", "id", true], ["thumbs", "faces", false], ["label", "label", true], ["fold", "fold", true],
  ["identity1", "identity 1", true], ["identity2", "identity 2", true], ["image1", "file 1", true],
  ["image2", "file 2", true], ["quality1", "quality 1", true], ["quality2", "quality 2", true],
];
const PER_MODEL = [["confidence", "confidence"], ["prediction", "prediction"], ["correct", "correct"], ["distance", "distance"]];

function modelsOfDataset() {
  const option = document.getElementById("dataset").selectedOptions[0];
  return option && option.dataset.models ? option.dataset.models.split(",").filter(Boolean) : [];
}

function fillModels(preferred) {
  const select = document.getElementById("model");
  state.models = modelsOfDataset();
  select.replaceChildren(...state.models.map((m) => el("option", {}, m)));
  const choice = state.models.includes(preferred) ? preferred : (state.models.includes("dlib") ? "dlib" : state.models[0]);
  if (choice) select.value = choice;
}

function columns() {
  const list = FIXED.map(([key, title, sortable]) => ({ key, title, sortable, group: key }));
  for (const model of state.models) {
    for (const [key, title] of PER_MODEL) list.push({ key, title: `${model} ${title}`, sortable: true, model, group: key });
  }
  list.push({ key: "view", title: "", sortable: false, group: "view" });
  return list;
}

function buildToggles() {
  const box = document.getElementById("column-toggles");
  const groups = [...FIXED.map(([key, title]) => [key, title]), ...PER_MODEL];
  box.replaceChildren(...groups.map(([key, title]) => {
    const input = el("input", { type: "checkbox", "data-column": key });
    input.checked = !state.hidden.has(key);
    input.addEventListener("change", () => {
      if (input.checked) state.hidden.delete(key); else state.hidden.add(key);
      applyVisibility();
    });
    return el("label", {}, input, ` ${title}`);
  }));
}

function applyVisibility() {
  for (const cell of document.querySelectorAll("#pairs [data-group]")) {
    cell.hidden = state.hidden.has(cell.dataset.group);
  }
}

function buildHeader() {
  const current = document.getElementById("model").value;
  const row = document.getElementById("header");
  row.replaceChildren(...columns().map((column) => {
    const th = el("th", { "data-group": column.group }, column.title);
    if (column.sortable) {
      const active = state.sort.replace(/^-/, "") === column.key && (!column.model || column.model === current);
      th.dataset.sort = column.key;
      if (column.model) th.dataset.model = column.model;
      th.classList.add("sortable");
      if (active) th.append(state.sort.startsWith("-") ? " ▼" : " ▲");
      th.addEventListener("click", () => {
        if (column.model) document.getElementById("model").value = column.model;
        state.sort = active && !state.sort.startsWith("-") ? `-${column.key}` : column.key;
        state.page = 1;
        load();
      });
    }
    return th;
  }));
}

function cell(group, ...children) { return el("td", { "data-group": group }, ...children); }
function modelCell(group, model, ...children) { return el("td", { "data-group": group, "data-model": model }, ...children); }

function renderRow(item) {
  const thumbs = el("span", { class: "thumbs" },
    el("img", { src: item.thumbnail1, alt: item.identity1, loading: "lazy", width: 48, height: 48 }),
    el("img", { src: item.thumbnail2, alt: item.identity2, loading: "lazy", width: 48, height: 48 }));
  const cells = [
    cell("id", item.id), cell("thumbs", thumbs), cell("label", item.label), cell("fold", item.fold),
    cell("identity1", item.identity1), cell("identity2", item.identity2),
    cell("image1", item.image1), cell("image2", item.image2),
    cell("quality1", item.quality1.toFixed(0)), cell("quality2", item.quality2.toFixed(0)),
  ];
  for (const model of state.models) {
    const r = item.results[model];
    cells.push(modelCell("confidence", model, r ? el("span", { class: "stars", title: r.confidence === null ? "" : r.confidence.toFixed(3) }, stars(r.confidence)) : "–"));
    cells.push(modelCell("prediction", model, r ? r.prediction : "–"));
    cells.push(modelCell("correct", model, r ? el("span", { class: r.correct ? "ok" : "wrong" }, r.correct ? "✓" : "✗") : "–"));
    cells.push(modelCell("distance", model, r ? r.distance.toFixed(4) : "–"));
  }
  const model = document.getElementById("model").value;
  cells.push(cell("view", el("a", { href: `/viewer/${item.id}?model=${encodeURIComponent(model)}`, class: "view" }, "view")));
  return el("tr", { "data-id": item.id }, ...cells);
}

function query() {
  const params = new URLSearchParams();
  for (const element of form.elements) {
    if (element.name && element.value !== "") params.set(element.name, element.value);
  }
  params.set("sort", state.sort);
  params.set("page", state.page);
  return params;
}

async function load() {
  const params = query();
  history.replaceState(null, "", `?${params}`);
  buildHeader();
  const error = document.getElementById("error");
  try {
    const page = await fetchJSON(`/api/pairs?${params}`);
    error.textContent = "";
    document.querySelector("#pairs tbody").replaceChildren(...page.items.map(renderRow));
    const pages = Math.max(1, Math.ceil(page.total / page.page_size));
    document.getElementById("total").textContent = `${page.total} pairs`;
    document.getElementById("page-info").textContent = `page ${page.page} of ${pages}`;
    document.getElementById("prev").disabled = page.page <= 1;
    document.getElementById("next").disabled = page.page >= pages;
    applyVisibility();
  } catch (e) {
    error.textContent = e.message;
  }
}

function restore() {
  const params = new URLSearchParams(location.search);
  for (const element of form.elements) {
    if (element.name && params.has(element.name) && element.name !== "model") element.value = params.get(element.name);
  }
  fillModels(params.get("model"));
  state.sort = params.get("sort") || "id";
  state.page = Number(params.get("page")) || 1;
}

let debounce = null;
function filterChanged(event) {
  if (event.target.id === "dataset") fillModels(document.getElementById("model").value);
  clearTimeout(debounce);
  debounce = setTimeout(() => { state.page = 1; load(); }, event.target.tagName === "SELECT" ? 0 : 300);
}
form.addEventListener("input", (event) => { if (event.target.tagName !== "SELECT") filterChanged(event); });
form.addEventListener("change", (event) => { if (event.target.tagName === "SELECT") filterChanged(event); });
form.addEventListener("submit", (event) => event.preventDefault());
document.getElementById("prev").addEventListener("click", () => { state.page -= 1; load(); });
document.getElementById("next").addEventListener("click", () => { state.page += 1; load(); });

restore();
buildToggles();
load();
