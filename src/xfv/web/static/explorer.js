// The explorer (the paper's Fig. 8): pair columns, then one group of columns per model under a two-level header,
// a search under every column, column and model visibility, "models disagree" / "all models wrong", server-side
// filters, sort and paging over /api/pairs. Everything lives in the URL; a row opens the viewer.
"use strict";

const form = document.getElementById("filters");
const state = { sort: "id", model: "", page: 1, models: [], shown: [], hidden: new Set(), where: new Map() };
const DEFAULT_HIDDEN = ["fold", "threshold"]; // the threshold is shown once, in the model's header; the fold in the viewer
const FORM_KEYS = ["dataset", "compare", "page_size"];

const PAIR_COLUMNS = [
  { key: "id", title: "id", sort: "id", search: { name: "id", type: "number", placeholder: "id", label: "pair id" } },
  { key: "faces", title: "faces" },
  { key: "label", title: "label", sort: "label",
    search: { name: "label", label: "label", options: [["", "any"], ["same", "same"], ["different", "diff."]] } },
  { key: "fold", title: "fold", sort: "fold", search: { name: "fold", label: "fold", options: [["", "any"]] } },
  { key: "identities", title: "identities", sort: "identity1",
    search: { name: "identity", type: "search", label: "identity (either image)" } },
  { key: "files", title: "files", sort: "image1", help: "the image files, relative to the dataset's folder",
    search: { name: "path", type: "search", placeholder: "file name", label: "file path (either image)" } },
  { key: "quality", title: "quality", sort: "quality1",
    help: "image quality for the model: how stable its embedding stays under small shifts, zooms, a mirror and occlusions (1 − mean distance; higher is better; docs/quality.md)" },
  { key: "found", title: "face", menu: "face found", help: "face found: whether every model's pipeline found a face in both images",
    search: { name: "face_found", label: "face found (✓ in both images, ⚠ not found in one)",
      options: [["", "any"], ["true", "✓"], ["false", "⚠"]] } },
];
const MODEL_COLUMNS = [
  { key: "prediction", title: "prediction", help: "same or different person; ✓ right, ✗ wrong" },
  { key: "distance", title: "distance", help: "cosine distance d (Eq. 1); same if d ≤ t (the header's t)" },
  { key: "threshold", title: "t", help: "the threshold the pair was judged with (its fold's, or the shipped calibration's)" },
  { key: "confidence", title: "confidence",
    help: "C-Score (Eq. 3): the estimated probability that the decision is right; 0.5 = no information; below 0.5 (quality-aware C-Score): more likely wrong than right" },
];
const MODEL_SEARCH = {
  prediction: [
    ["prediction", "prediction", [["", "any"], ["same", "same"], ["different", "diff."]]],
    ["correct", "right or wrong", [["", "✓ ✗"], ["true", "✓ right"], ["false", "✗ wrong"]]],
  ],
};

function datasetOption() {
  return document.getElementById("dataset").selectedOptions[0];
}

function modelsOfDataset() {
  const option = datasetOption();
  return option && option.dataset.models ? option.dataset.models.split(",").filter(Boolean) : [];
}

function visible(key) {
  return !state.hidden.has(key);
}

// "t = 0.3920" when one threshold judged every pair (the shipped calibration), else the range over the folds.
function thresholdNote(model) {
  const option = datasetOption();
  const byFold = option ? JSON.parse(option.dataset.thresholds || "{}")[model] || {} : {};
  const values = Object.values(byFold);
  if (!values.length) return ["", ""];
  const low = Math.min(...values), high = Math.max(...values);
  const list = Object.entries(byFold).map(([fold, t]) => `fold ${fold}: ${t.toFixed(4)}`).join("\n");
  if (high - low < 5e-5) return [`t = ${low.toFixed(4)}`, `every pair judged with t = ${low.toFixed(4)}: same if d ≤ t`];
  return [`t ${low.toFixed(3)}–${high.toFixed(3)}`, `each fold's threshold (fitted on the other folds):\n${list}`];
}

function sortHeader(title, sortKey, model, help) {
  const active = state.sort.replace(/^-/, "") === sortKey && (!model || model === state.model);
  const th = el("th", { class: "sortable", "data-sort": sortKey }, title);
  if (help) th.title = help;
  if (model) th.dataset.model = model;
  if (active) th.append(el("span", { class: "sort-arrow" }, state.sort.startsWith("-") ? "▼" : "▲"));
  th.addEventListener("click", () => {
    if (model) state.model = model;
    state.sort = active && !state.sort.startsWith("-") ? `-${sortKey}` : sortKey;
    state.page = 1;
    load();
  });
  return th;
}

// A labelled search control under a column: its name travels in the URL as the API's parameter.
function searchControl(spec, value) {
  const attributes = { name: spec.name, form: "filters", "aria-label": spec.label, title: `search: ${spec.label}`,
    "data-search": spec.name };
  const control = spec.options
    ? el("select", attributes, ...spec.options.map(([v, text]) => el("option", { value: v }, text)))
    : el("input", { ...attributes, type: spec.type, placeholder: spec.placeholder || "", ...(spec.type === "number" ? { min: 1, step: 1 } : {}) });
  control.value = value || "";
  return control;
}

function modelSearch(model, column) {
  const controls = (MODEL_SEARCH[column] || []).map(([field, label, options]) => {
    const select = el("select", { "data-model": model, "data-field": field, "aria-label": `${model}: ${label}`,
      title: `${model}: ${label}` }, ...options.map(([value, text]) => el("option", { value }, text)));
    select.value = state.where.get(`${model}:${field}`) || "";
    select.addEventListener("change", () => setWhere(model, field, select.value));
    return select;
  });
  if (column === "confidence") {
    const minimum = el("input", { type: "number", min: "0.5", max: "1", step: "0.01", placeholder: "C ≥",
      "data-model": model, "data-field": "confidence_min", "aria-label": `${model}: lowest confidence`,
      title: `${model}: lowest confidence (0.5 to 1)` });
    minimum.value = state.where.get(`${model}:confidence_min`) || "";
    minimum.addEventListener("change", () => setWhere(model, "confidence_min", minimum.value));
    controls.push(minimum);
  }
  return controls;
}

// The two header rows (groups, sortable titles): rebuilt on every load, for the sort arrows.
function buildHeader() {
  const pairColumns = PAIR_COLUMNS.filter((c) => visible(c.key));
  const modelColumns = MODEL_COLUMNS.filter((c) => visible(c.key));
  const groups = [el("th", { colspan: pairColumns.length, class: "group pair-group fixed" }, "pair")];
  const header = [];
  for (const c of pairColumns) {
    const th = c.sort ? sortHeader(c.title, c.sort, null, c.help) : el("th", {}, c.title);
    th.classList.add("fixed");
    th.dataset.col = c.key;
    if (c.help && !c.sort) th.title = c.help;
    header.push(th);
  }
  for (const model of state.shown) {
    const [note, noteHelp] = thresholdNote(model);
    groups.push(el("th", { colspan: modelColumns.length, class: "group model-group", "data-model": model },
      el("span", { class: "model-name" }, model), note ? el("span", { class: "threshold-note", title: noteHelp }, note) : ""));
    modelColumns.forEach((c, i) => {
      const th = sortHeader(c.title, c.key, model, c.help);
      th.dataset.col = c.key;
      if (i === 0) th.classList.add("group-start");
      header.push(th);
    });
  }
  document.getElementById("groups").replaceChildren(...groups);
  document.getElementById("header").replaceChildren(...header);
}

// The search row: rebuilt only when the columns change (dataset, shown models or columns), so that typing in a
// search box keeps its focus while the table reloads.
let searchLayout = "";
function buildSearchRow() {
  const layout = JSON.stringify([form.elements.dataset.value, state.shown, [...state.hidden]]);
  if (layout === searchLayout) return;
  searchLayout = layout;
  const params = new URLSearchParams(location.search);
  const searches = PAIR_COLUMNS.filter((c) => visible(c.key)).map((c) => {
    const cell = el("th", { class: "fixed", "data-col": c.key });
    if (c.search) cell.append(searchControl(searchSpec(c.search), params.get(c.search.name)));
    return cell;
  });
  for (const model of state.shown) {
    MODEL_COLUMNS.filter((c) => visible(c.key)).forEach((c, i) => {
      const cell = el("th", { "data-model": model, "data-col": c.key }, ...modelSearch(model, c.key));
      if (i === 0) cell.classList.add("group-start");
      searches.push(cell);
    });
  }
  document.getElementById("column-filters").replaceChildren(...searches);
  for (const control of document.querySelectorAll("#column-filters [name]")) {
    control.addEventListener(control.tagName === "SELECT" ? "change" : "input", filterChanged);
  }
}

// The dataset decides the fold list and the identity placeholder (an identity it holds).
function searchSpec(spec) {
  const option = datasetOption();
  if (spec.name === "fold") {
    const folds = Number(option ? option.dataset.folds : 0);
    return { ...spec, options: [["", "any"], ...Array.from({ length: folds }, (_, k) => [String(k), String(k)])] };
  }
  if (spec.name === "identity") {
    const example = option && option.dataset.example;
    return { ...spec, placeholder: example ? `e.g. ${example.split("_").pop()}` : "name" };
  }
  return spec;
}

function buildColumnMenu() {
  const box = (key, text, checked, onChange) => {
    const input = el("input", { type: "checkbox", "data-column": key });
    input.checked = checked;
    input.addEventListener("change", () => onChange(input.checked));
    return el("label", {}, input, ` ${text}`);
  };
  const toggle = (key) => (checked) => {
    if (checked) state.hidden.delete(key); else state.hidden.add(key);
    state.columnsChanged = true;
    load();
  };
  document.getElementById("pair-columns").replaceChildren(el("legend", {}, "pair"),
    ...PAIR_COLUMNS.map((c) => box(c.key, c.menu || c.title, visible(c.key), toggle(c.key))));
  document.getElementById("model-columns").replaceChildren(el("legend", {}, "per model"),
    ...MODEL_COLUMNS.map((c) => box(c.key, c.key === "threshold" ? "t (threshold)" : c.title, visible(c.key), toggle(c.key))));
  document.getElementById("model-choice").replaceChildren(el("legend", {}, "models"),
    ...state.models.map((m) => box(`model:${m}`, m, state.shown.includes(m), (checked) => {
      state.shown = state.models.filter((name) => (name === m ? checked : state.shown.includes(name)));
      if (!checked) for (const key of [...state.where.keys()]) if (key.startsWith(`${m}:`)) state.where.delete(key);
      if (!state.shown.includes(state.model)) state.model = state.shown[0] || "";
      state.page = 1;
      load();
    })));
}

function setWhere(model, field, value) {
  const key = `${model}:${field}`;
  if (value === "") state.where.delete(key); else state.where.set(key, value);
  state.page = 1;
  load();
}

function foundCell(item) {
  const lost = new Map();
  let unknown = false;
  for (const [model, r] of Object.entries(item.results)) {
    if (r.face_found === null) unknown = true;
    for (const i of lostFaces(r)) lost.set(i, [...(lost.get(i) || []), model]);
  }
  if (lost.size) {
    const text = [...lost].map(([i, models]) => `no face found in image ${i} by ${models.join(", ")}'s pipeline`).join("; ");
    return el("span", { class: "face-lost", title: `${text}: the centre of the photo was compared` },
      `⚠ ${[...lost.keys()].join(", ")}`);
  }
  return unknown ? el("span", { title: "not recorded: run xfv precompute again" }, "?")
    : el("span", { class: "ok", title: "every model's pipeline found a face in both images" }, "✓");
}

function fileName(path) {
  return el("span", { title: path }, ...breakable(path.split("/").pop()));
}

function renderRow(item) {
  const columns = {
    id: () => el("a", { href: viewerUrl(item.id, state.model), class: "pair-link" }, item.id),
    faces: () => el("span", { class: "thumbs" },
      el("img", { src: item.thumbnail1, alt: item.identity1, loading: "lazy", width: 40, height: 40 }),
      el("img", { src: item.thumbnail2, alt: item.identity2, loading: "lazy", width: 40, height: 40 })),
    label: () => item.label,
    fold: () => item.fold,
    identities: () => el("span", { class: "identities" },
      el("span", {}, ...breakable(item.identity1)), el("span", {}, ...breakable(item.identity2))),
    files: () => el("span", { class: "stacked files" }, fileName(item.image1), fileName(item.image2)),
    quality: () => el("span", { class: "stacked" }, ...[item.quality1, item.quality2].map(
      (q) => el("span", {}, q === null || q === undefined ? "–" : q.toFixed(3)))),
    found: () => foundCell(item),
  };
  const cells = PAIR_COLUMNS.filter((c) => visible(c.key))
    .map((c) => el("td", { class: "fixed", "data-col": c.key }, columns[c.key]()));
  const modelColumns = MODEL_COLUMNS.filter((c) => visible(c.key));
  for (const model of state.shown) {
    const r = item.results[model];
    if (!r) {
      cells.push(el("td", { colspan: modelColumns.length, class: "group-start", "data-model": model }, "not computed"));
      continue;
    }
    const lost = lostFaces(r);
    const content = {
      prediction: () => el("span", { class: r.correct ? "ok" : "wrong" }, `${r.prediction} ${r.correct ? "✓" : "✗"}`),
      distance: () => r.distance.toFixed(4),
      threshold: () => r.threshold.toFixed(4),
      confidence: () => (r.confidence === null ? "–" : confidenceView(r.confidence, r.face_found, lost, true)),
    };
    modelColumns.forEach((c, i) => {
      const td = el("td", { "data-model": model, "data-col": c.key }, content[c.key]());
      if (i === 0) td.classList.add("group-start");
      if (c.key === "confidence") {
        td.dataset.value = r.confidence === null ? "" : r.confidence;
        if (r.calibration) td.dataset.calibration = r.calibration;
        const title = td.querySelector("[title]");
        if (title && r.calibration) title.title += `\ncalibration: ${r.calibration}`;
      }
      cells.push(td);
    });
  }
  const row = el("tr", { "data-id": item.id, class: "pair-row", title: "open in the viewer" }, ...cells);
  row.addEventListener("click", (event) => {
    if (event.target.closest("a")) return;
    const model = event.target.closest("td[data-model]");
    location.href = viewerUrl(item.id, model ? model.dataset.model : state.model);
  });
  return row;
}

// The viewer of a pair, carrying this table's filter and sort (for previous / next and the way back); comparing
// models, it opens them side by side.
function viewerUrl(id, model) {
  const params = pageParams();
  params.delete("page");
  params.set("model", model || "");
  params.set("sort_model", state.model);
  if (params.get("compare") && state.shown.length >= 2) {
    params.set("models", [model, ...state.shown.filter((m) => m !== model)].slice(0, 2).join(","));
  }
  return `/viewer/${id}?${params}`;
}

// The page's own URL: the form, the searches, the model filters, sort, page, shown columns and models.
function pageParams() {
  const params = new URLSearchParams();
  for (const element of form.elements) {
    if (element.name && element.value !== "") params.set(element.name, element.value);
  }
  if (state.model) params.set("model", state.model);
  for (const [key, value] of state.where) params.append("where", `${key}:${value}`);
  params.set("sort", state.sort);
  params.set("page", state.page);
  if (state.columnsChanged || [...state.hidden].join(",") !== DEFAULT_HIDDEN.join(",")) {
    params.set("hide", [...state.hidden].join(","));
  }
  if (state.shown.length !== state.models.length) params.set("shown", state.shown.join(","));
  return params;
}

// The API's parameters: the same filters; "compare" becomes disagree= / all_wrong= over the shown models.
function apiParams() {
  const params = pageParams();
  for (const key of ["compare", "hide", "shown"]) params.delete(key);
  const compare = form.elements.compare.value;
  const note = document.getElementById("compare-note");
  note.textContent = "";
  if (compare && state.shown.length >= 2) {
    params.set(compare, state.shown.join(","));
    note.textContent = `· ${compare === "disagree" ? "predictions differ among" : "wrong for every one of"} ${state.shown.join(", ")}`;
  } else if (compare) {
    note.textContent = "· comparing needs two or more models shown";
  }
  return params;
}

// Two models fit 1366 px; with more, only the model groups scroll: the pair columns stay fixed.
function pinPairColumns() {
  const scroller = document.getElementById("table-scroll");
  const pinned = scroller.scrollWidth > scroller.clientWidth;
  for (const row of document.querySelectorAll("#pairs thead tr, #pairs tbody tr.pair-row")) {
    let left = 0;
    for (const cell of row.querySelectorAll(".fixed")) {
      cell.style.left = pinned ? `${left}px` : "";
      cell.classList.toggle("pinned", pinned);
      left += cell.offsetWidth;
    }
  }
}

function emptyRow(datasetTotal) {
  const columns = document.querySelectorAll("#header th").length || 1;
  const clear = el("button", { type: "button", class: "clear-inline" }, "clear filters");
  clear.addEventListener("click", clearFilters);
  return el("tr", { class: "empty-result" }, el("td", { colspan: columns },
    `No pair matches these filters (the dataset has ${datasetTotal} pairs). `, clear));
}

async function load() {
  const params = pageParams();
  history.replaceState(null, "", `?${params}`);
  buildHeader();
  buildSearchRow();
  buildColumnMenu();
  const error = document.getElementById("error");
  try {
    const page = await fetchJSON(`/api/pairs?${apiParams()}`);
    error.textContent = "";
    state.model = page.model || state.model;
    buildHeader();
    const body = document.querySelector("#pairs tbody");
    body.replaceChildren(...(page.items.length ? page.items.map(renderRow) : [emptyRow(page.dataset_total)]));
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

// Filters named in the URL that are not in the form yet (the column searches are built by buildHeader).
function restore() {
  const params = new URLSearchParams(location.search);
  for (const key of FORM_KEYS) {
    if (params.has(key)) form.elements[key].value = params.get(key);
  }
  state.models = modelsOfDataset();
  const shown = params.has("shown") ? params.get("shown").split(",").filter((m) => state.models.includes(m)) : [];
  state.shown = shown.length ? shown : [...state.models];
  state.hidden = new Set(params.has("hide") ? params.get("hide").split(",").filter(Boolean) : DEFAULT_HIDDEN);
  state.columnsChanged = params.has("hide");
  const model = params.get("model");
  state.model = state.shown.includes(model) ? model : (state.shown.includes("dlib") ? "dlib" : state.shown[0] || "");
  state.where = new Map(params.getAll("where").map((item) => {
    const i = item.lastIndexOf(":");
    return [item.slice(0, i), item.slice(i + 1)];
  }));
  state.sort = params.get("sort") || "id";
  state.page = Number(params.get("page")) || 1;
  buildSearchRow(); // from this URL's searches, before the first load writes the URL again
}

let debounce = null;
function filterChanged(event) {
  if (event.target.id === "dataset") {
    state.models = modelsOfDataset();
    state.shown = [...state.models];
    state.where.clear();
    for (const control of document.querySelectorAll("#column-filters [name]")) control.value = "";
    searchLayout = "";
    if (!state.models.includes(state.model)) state.model = state.models.includes("dlib") ? "dlib" : state.models[0] || "";
  }
  clearTimeout(debounce);
  debounce = setTimeout(() => { state.page = 1; load(); }, event.target.tagName === "SELECT" ? 0 : 300);
}

function clearFilters() {
  for (const element of form.elements) {
    if (element.name && !["dataset", "page_size"].includes(element.name)) element.value = "";
  }
  state.where.clear();
  state.page = 1;
  load();
}

for (const key of FORM_KEYS) form.elements[key].addEventListener("change", filterChanged);
form.addEventListener("submit", (event) => event.preventDefault());
document.getElementById("clear").addEventListener("click", clearFilters);
document.getElementById("prev").addEventListener("click", () => { state.page -= 1; load(); });
document.getElementById("next").addEventListener("click", () => { state.page += 1; load(); });
window.addEventListener("resize", pinPairColumns);

restore();
load();
