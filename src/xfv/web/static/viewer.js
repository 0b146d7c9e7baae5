// The viewer: both faces with the X-Map of the chosen model, method and map; or two models side by side
// (?models=M1,M2: both verdicts, confidences and the same method's maps). X-Maps that are not stored are computed
// on request, after the page has said what that costs. Previous / next follow the explorer's filter; the state
// lives in the URL.
"use strict";

const root = document.getElementById("viewer");
const pairId = root.dataset.pair;
const controls = { model: document.getElementById("model"), compare: document.getElementById("compare"),
  method: document.getElementById("method"), scale: document.getElementById("scale"),
  opacity: document.getElementById("opacity") };
const VIEWER_KEYS = ["model", "models", "method", "scale", "opacity", "sort_model"];
const progress = document.getElementById("progress");
let detail = null;
let generation = 0; // the newest update(); an older one that finishes late draws nothing

function verdictRows(model) {
  const r = detail.pair.results[model];
  const p = detail.pair;
  const rows = [["label", p.label], ["dataset", `${p.dataset}, fold ${p.fold}, #${p.position + 1}`]];
  if (r) {
    rows.push(["model", model], ["distance", r.distance.toFixed(4)], ["threshold", r.threshold.toFixed(4)],
      ["prediction", el("span", { class: r.correct ? "ok" : "wrong" }, `${r.prediction} ${r.correct ? "✓ right" : "✗ wrong"}`)],
      ["confidence", r.confidence === null ? "–" : confidenceView(r.confidence, r.face_found, lostFaces(r))],
      ["calibration", r.calibration || `out of fold: fitted on the other folds of ${p.dataset}`]);
  }
  document.querySelector("#verdict tbody").replaceChildren(
    ...rows.map(([k, v]) => el("tr", { "data-key": k }, el("th", {}, k), el("td", {}, v))));
}

function metadata(image, model, detector) {
  const stability = (image.qualities || {})[model];
  const items = [["identity", image.identity], ["file", image.path], ["size", `${image.width} × ${image.height} px`],
    ["quality", stability === undefined ? "–" : `${stability.toFixed(3)} (${model})`],
    ["image statistics", `${image.quality.toFixed(0)} / 100`], ["face", detectorText(detector)]];
  return items.flatMap(([k, v]) => [el("dt", {}, k),
    el("dd", { class: k === "face" && detector === "centre" ? "face-lost" : "", "data-key": k }, ...(k === "file" ? breakable(v) : [v]))]);
}

// A warning above the faces for every shown model whose pipeline found no face: its confidence does not hold.
function showFlags(models) {
  const flags = models.flatMap((model) => {
    const r = detail.pair.results[model];
    const lost = r ? lostFaces(r) : [];
    if (!lost.length) return [];
    const confidence = r.confidence === null ? "" : ` Its C-Score (${formatConfidence(r.confidence)}) is calibrated on found faces and does not hold here.`;
    return [el("p", { class: "warning face-warning", "data-model": model },
      `⚠ ${model} found no face in image ${lost.join(" and ")}: it compared the centre of the photo.${confidence}`)];
  });
  document.getElementById("flags").replaceChildren(...flags);
}

function setOpacity() {
  document.getElementById("opacity-value").textContent = `${controls.opacity.value} %`;
  for (const img of document.querySelectorAll(".overlay")) img.style.opacity = controls.opacity.value / 100;
}

// version: a partial map's stage, so that a refined map gets a new URL (the server never lets them be cached).
function mapUrl(model, method, image, suffix, kind, version) {
  const params = new URLSearchParams();
  if (controls.scale.value) params.set("scale", controls.scale.value);
  if (kind) params.set("kind", kind);
  if (version) params.set("v", version);
  const query = params.toString();
  return `/api/pairs/${pairId}/xmaps/${encodeURIComponent(model)}/${method}/${image}.${suffix}${query ? `?${query}` : ""}`;
}

function faceUrl(model, image) {
  return `/api/pairs/${pairId}/faces/${image}.png?model=${encodeURIComponent(model)}`;
}

function scaleName() {
  return controls.scale.value || "final";
}

// The explorer's parameters this page was opened with (its filter and sort), and this page's own.
function explorerParams() {
  const params = new URLSearchParams(location.search);
  const sortModel = params.get("sort_model");
  for (const key of VIEWER_KEYS) params.delete(key);
  if (sortModel) params.set("model", sortModel);
  return params;
}

function shownModels() {
  const second = controls.compare.value;
  return second && second !== controls.model.value ? [controls.model.value, second] : [controls.model.value];
}

function writeUrl() {
  const params = new URLSearchParams(location.search);
  for (const key of ["model", "method", "scale", "opacity"]) params.set(key, controls[key].value);
  const models = shownModels();
  if (models.length > 1) params.set("models", models.join(",")); else params.delete("models");
  history.replaceState(null, "", `?${params}`);
}

async function neighbours() {
  const params = explorerParams();
  params.delete("id");
  params.delete("page");
  const around = await fetchJSON(`/api/pairs/${pairId}/neighbours?${params}`);
  for (const [key, target] of [["previous", around.previous], ["next", around.next]]) {
    const button = document.getElementById(key);
    button.disabled = target === null;
    button.onclick = () => { location.href = `/viewer/${target}${location.search}`; };
  }
  document.getElementById("position").textContent = around.position
    ? `pair ${around.position} of ${around.total} in the explorer's filter`
    : `not in the explorer's filter (${around.total} pairs)`;
  const back = explorerParams();
  const size = Number(back.get("page_size")) || 20;
  if (around.position) back.set("page", Math.ceil(around.position / size));
  document.getElementById("back").href = `/explorer?${back}`;
}

// Method 4 uses no patches: only its final map exists, so the map choice is off while it is shown.
function syncScale() {
  const patchless = controls.method.value === "4";
  if (patchless) controls.scale.value = "";
  controls.scale.disabled = patchless;
  controls.scale.title = patchless ? "method 4 uses no patches: one map" : "";
}

// Start computing a model's X-Maps (after the user asked) and follow them: every status polled goes to onStatus (the
// maps so far, partial or final: method 4 first, then methods 1-3 from coarse to fine), with the time left and a
// Cancel button. Resolves once they are stored (or another update() took over), rejects if the task failed or was
// cancelled (nothing of it is kept).
async function computeMaps(model, token, onStatus = () => {}) {
  const url = `/api/pairs/${pairId}/xmaps/${encodeURIComponent(model)}`;
  let status = await fetchJSON(url, { method: "POST" });
  const cancel = document.getElementById("cancel");
  showProgress(progress, 0, 0);
  progress.querySelector(".text").textContent = `${model}: starting…`;
  cancel.hidden = false;
  cancel.disabled = false;
  cancel.onclick = () => {
    cancel.disabled = true;  // the polling below then reports the cancel
    fetchJSON(status.cancel, { method: "DELETE" }).catch((e) => { document.getElementById("error").textContent = e.message; });
  };
  let task = status.task;
  while (!status.ready && status.task && ["queued", "running"].includes(status.task.state) && token === generation) {
    task = status.task;
    showProgress(progress, task.done, task.total, status.eta_seconds);
    progress.querySelector(".text").textContent = `${model}: ${progress.querySelector(".text").textContent}`;
    onStatus(status);
    await new Promise((resolve) => setTimeout(resolve, 250));
    status = await fetchJSON(url);
  }
  if (token !== generation) return status;  // a newer update() follows the task now
  progress.hidden = true;
  cancel.hidden = true;
  if (status.ready) return status;
  onStatus({ ...status, map_states: {} });  // the partial maps are gone
  const ended = status.task || (task ? await fetchJSON(`/api/tasks/${task.id}`) : { state: "error", error: "no task" });
  throw new Error(ended.state === "cancelled"
    ? "Cancelled: the X-Maps were stopped before they were complete; nothing of them was kept."
    : `The X-Maps could not be computed: ${ended.error}`);
}

// A stored pair's maps, or what computing them costs and a button that starts it; resolves once they are stored.
// While they are computed, onStatus gets each status (see computeMaps); after a cancel or a failure the button
// starts them again.
function whenStored(model, status, box, { short = false, token = generation, onStatus } = {}) {
  if (status.ready) return Promise.resolve(status);
  if (status.task) return computeMaps(model, token, onStatus); // already running (another visitor, or an earlier click)
  box.hidden = false;
  const cost = short ? `Not stored yet: ${estimateText(status.estimate, true)}.`
    : `The X-Maps of ${model} for this pair are not stored yet. Computing them: ${estimateText(status.estimate)}.`;
  box.querySelector(".estimate").textContent = cost;
  const button = box.querySelector(".compute");
  button.disabled = false;
  return new Promise((resolve, reject) => {
    button.onclick = () => {
      button.disabled = true;
      box.hidden = Boolean(onStatus);  // the maps themselves show the progress
      computeMaps(model, token, onStatus).then((done) => { box.hidden = true; resolve(done); }, (e) => {
        if (!/^(Cancelled|The X-Maps could not)/.test(e.message)) { reject(e); return; }
        box.querySelector(".estimate").textContent = `${e.message} ${cost}`;
        box.hidden = false;
        button.disabled = false;
      });
    };
  });
}

// While the model's X-Maps are computed: the chosen method's latest map over both faces, replaced in place as it
// improves, and what it is built on so far.
function showPartial(model, method, status) {
  const caption = document.getElementById("map-stage");
  const state = status.map_states[`${method}-1`];
  for (const i of [1, 2]) {
    const face = document.getElementById(`face${i}`);
    const overlay = face.querySelector(".overlay");
    const raw = face.querySelector(".rawmap");
    if (!state) {
      overlay.removeAttribute("src");
      raw.removeAttribute("src");
      continue;
    }
    for (const [img, src] of [[overlay, mapUrl(model, method, i, "png", "", state.stage)],
      [raw, mapUrl(model, method, i, "png", "map", state.stage)]]) {
      if (img.getAttribute("src") === src) continue;
      img.onerror = () => { img.hidden = true; };  // a patch size not computed yet
      img.onload = () => { img.hidden = false; };
      img.src = src;
    }
  }
  caption.textContent = !state
    ? (status.task ? `Method ${method}: not computed yet (method 4 comes first, then methods 1-3 from coarse to fine).` : "")
    : state.state === "final" ? "" : `Partial map (${state.stage}); it is refined as the computation goes on.`;
  root.dataset.stage = state ? state.stage : "";
}

async function showSingle(token) {
  const model = controls.model.value;
  const method = controls.method.value;
  verdictRows(model);
  detail.images.forEach((image, index) => {
    const face = document.getElementById(`face${index + 1}`);
    face.querySelector(".base").src = faceUrl(model, index + 1);
    const r = detail.pair.results[model];
    face.querySelector(".meta").replaceChildren(...metadata(image, model, r ? r.faces[index] : null));
    for (const img of face.querySelectorAll(".overlay, .rawmap")) img.removeAttribute("src");
  });
  const pending = document.getElementById("pending");
  pending.hidden = true;
  const status = await fetchJSON(`/api/pairs/${pairId}/xmaps/${encodeURIComponent(model)}`);
  if (token !== generation) return;
  await whenStored(model, status, pending, { token, onStatus: (s) => showPartial(model, method, s) });
  if (token !== generation) return;
  for (const i of [1, 2]) {
    const face = document.getElementById(`face${i}`);
    for (const img of face.querySelectorAll(".overlay, .rawmap")) {
      img.onerror = null;
      img.onload = null;
      img.hidden = false;
    }
    face.querySelector(".overlay").src = mapUrl(model, method, i, "png");
    face.querySelector(".rawmap").src = mapUrl(model, method, i, "png", "map");
    face.querySelector(".npy").href = mapUrl(model, method, i, "npy");
  }
  document.getElementById("map-stage").textContent = "";
  root.dataset.stage = "final";
  root.dataset.shown = `${model}/${method}/${scaleName()}`;
}

function compactVerdict(view) {
  const r = view.result;
  return el("div", { class: "compact-verdict", "data-model": view.model },
    el("span", { class: r.correct ? "ok" : "wrong" }, `${r.prediction} ${r.correct ? "✓" : "✗"}`),
    el("span", { class: "numbers" }, `d = ${r.distance.toFixed(4)}, t = ${r.threshold.toFixed(4)}`),
    el("span", { class: "confidence-line" }, "C-Score ",
      r.confidence === null ? "–" : confidenceView(r.confidence, r.face_found, lostFaces(r))),
    el("span", { class: "calibration-line", title: r.calibration || "" }, (r.calibration || "").split(" (")[0]));
}

async function showComparison(token) {
  const models = shownModels();
  const method = controls.method.value;
  const params = new URLSearchParams({ models: models.join(","), method });
  if (controls.scale.value) params.set("scale", controls.scale.value);
  const comparison = await fetchJSON(`/api/pairs/${pairId}/compare?${params}`);
  if (token !== generation) return;
  const agreement = document.getElementById("agreement");
  const predictions = comparison.models.map((v) => `${v.model} “${v.result.prediction}”`).join(", ");
  agreement.textContent = comparison.agree
    ? `Both models predict “${comparison.models[0].result.prediction}”; the label is “${comparison.label}”.`
    : `The models disagree: ${predictions}; the label is “${comparison.label}”.`;
  agreement.className = comparison.agree ? "agreement agree" : "agreement disagree";
  // One row per model, one column per image: the same face's maps sit one above the other.
  const head = document.querySelector("#compare-grid thead tr");
  head.replaceChildren(el("th", {}, "model"), ...[1, 2].map((i) => el("th", { "data-image": i }, `image ${i} `,
    el("small", { title: detail.images[i - 1].path }, detail.images[i - 1].path.split("/").pop()))));
  const cells = {};
  const rows = comparison.models.map((view) => {
    const box = el("div", { class: "maps-pending", hidden: "" }, el("p", { class: "estimate" }),
      el("button", { type: "button", class: "compute", "data-model": view.model }, "Compute them"));
    cells[view.model] = box;
    const row = el("tr", { "data-model": view.model },
      el("th", { class: "model-cell" }, el("div", { class: "model-title" }, view.model), compactVerdict(view), box));
    for (const i of [1, 2]) {
      const detector = view.result.faces[i - 1];
      const stack = el("div", { class: "stack" }, el("img", { class: "base", src: view.faces[i], alt: `${view.model}: aligned face ${i}` }),
        el("img", { class: "overlay", alt: `${view.model}: X-Map over face ${i}` }));
      const raw = el("img", { class: "rawmap", alt: `${view.model}: X-Map ${i} alone` });
      const found = el("small", { class: detector === "centre" ? "face-lost" : "face-note" }, `face ${detectorText(detector)}`);
      cells[`${view.model}-${i}`] = { stack, raw };
      row.append(el("td", { "data-image": i }, el("div", { class: "pair-maps" }, stack,
        el("div", { class: "raw-column" }, raw, el("span", { class: "raw-caption" }, "the map alone"), found))));
    }
    return row;
  });
  document.querySelector("#compare-grid tbody").replaceChildren(...rows);
  setOpacity();
  const shown = [];
  await Promise.all(comparison.models.map(async (view) => {
    await whenStored(view.model, view.xmaps, cells[view.model], { short: true, token });
    if (token !== generation) return;
    for (const i of [1, 2]) {
      cells[`${view.model}-${i}`].stack.querySelector(".overlay").src = view.maps[i];
      cells[`${view.model}-${i}`].raw.src = mapUrl(view.model, method, i, "png", "map");
    }
    shown.push(view.model);
    if (shown.length === comparison.models.length) {
      root.dataset.shown = `${models.join("+")}/${method}/${scaleName()}`;
    }
    setOpacity();
  }));
}

// The model shown first cannot be compared with itself.
function syncCompare() {
  for (const option of controls.compare.options) option.disabled = option.value === controls.model.value;
  if (controls.compare.value === controls.model.value) controls.compare.value = "";
}

async function update() {
  syncScale();
  syncCompare();
  writeUrl();
  const token = ++generation;
  root.dataset.shown = "";
  root.dataset.stage = "";
  document.getElementById("map-stage").textContent = "";
  const models = shownModels();
  const comparing = models.length > 1;
  document.getElementById("single").hidden = comparing;
  document.getElementById("comparison").hidden = !comparing;
  const legend = document.getElementById("legend");
  document.querySelector(comparing ? "#compare-side" : "#single .side").append(legend);
  showFlags(models);
  const error = document.getElementById("error");
  error.textContent = "";
  try {
    await (comparing ? showComparison(token) : showSingle(token));
  } catch (e) {
    progress.hidden = true;
    if (token === generation) error.textContent = e.message;
  }
}

async function start() {
  detail = await fetchJSON(`/api/pairs/${pairId}`);
  if (!controls.model.options.length) {
    throw new Error("No model has results for this pair yet: run 'xfv precompute' on its dataset.");
  }
  document.getElementById("pair-label").textContent = `${detail.pair.label} · ${detail.pair.identity1} vs ${detail.pair.identity2}`;
  const params = new URLSearchParams(location.search);
  for (const key of ["model", "method", "scale", "opacity"]) {
    const value = params.get(key);
    const known = controls[key].tagName !== "SELECT" || [...controls[key].options].some((o) => o.value === value);
    if (value !== null && known) controls[key].value = value;
  }
  const pair = (params.get("models") || "").split(",").filter((m) => m in detail.pair.results);
  if (pair.length >= 2) {
    controls.model.value = pair[0];
    controls.compare.value = pair[1];
  }
  setOpacity();
  update();
  neighbours().catch((e) => { document.getElementById("position").textContent = e.message; });
}

for (const key of ["model", "compare", "method", "scale"]) controls[key].addEventListener("change", update);
controls.opacity.addEventListener("input", () => { setOpacity(); writeUrl(); });
document.addEventListener("keydown", (event) => {
  if (event.target.closest("input, select")) return;
  const button = document.getElementById(event.key === "ArrowLeft" ? "previous" : event.key === "ArrowRight" ? "next" : "");
  if (button && !button.disabled) button.click();
});
start().catch((e) => { document.getElementById("error").textContent = e.message; });
