// The viewer: both faces with the X-Map of the chosen model, method and map (computed on demand if needed),
// previous / next within the explorer's filter and the way back to it; the state lives in the URL.
"use strict";

const root = document.getElementById("viewer");
const pairId = root.dataset.pair;
const controls = { model: document.getElementById("model"), method: document.getElementById("method"),
  scale: document.getElementById("scale"), opacity: document.getElementById("opacity") };
const VIEWER_KEYS = ["model", "method", "scale", "opacity", "sort_model"];
let detail = null;

function verdictRows(model) {
  const r = detail.pair.results[model];
  const p = detail.pair;
  const rows = [["label", p.label], ["dataset", `${p.dataset}, fold ${p.fold}, #${p.position}`]];
  if (r) {
    rows.push(["model", model], ["distance", r.distance.toFixed(4)], ["threshold", r.threshold.toFixed(4)],
      ["prediction", el("span", { class: r.correct ? "ok" : "wrong" }, `${r.prediction} ${r.correct ? "✓ right" : "✗ wrong"}`)],
      ["confidence", r.confidence === null ? "–" : confidenceView(r.confidence)],
      ["calibration", r.calibration || `out of fold: fitted on the other folds of ${p.dataset}`]);
  }
  document.querySelector("#verdict tbody").replaceChildren(
    ...rows.map(([k, v]) => el("tr", { "data-key": k }, el("th", {}, k), el("td", {}, v))));
}

function metadata(image, model) {
  const stability = (image.qualities || {})[model];
  const items = [["identity", image.identity], ["file", image.path], ["size", `${image.width} × ${image.height} px`],
    ["quality", stability === undefined ? "–" : `${stability.toFixed(3)} (${model})`],
    ["image statistics", `${image.quality.toFixed(0)} / 100`], ["face found", image.aligned ? "yes" : "no: centre of the photo"]];
  return items.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, ...(k === "file" ? breakable(v) : [v]))]);
}

function setOpacity() {
  document.getElementById("opacity-value").textContent = `${controls.opacity.value} %`;
  for (const img of document.querySelectorAll(".overlay")) img.style.opacity = controls.opacity.value / 100;
}

function mapUrl(model, method, image, suffix, kind) {
  const params = new URLSearchParams();
  if (controls.scale.value) params.set("scale", controls.scale.value);
  if (kind) params.set("kind", kind);
  const query = params.toString();
  return `/api/pairs/${pairId}/xmaps/${encodeURIComponent(model)}/${method}/${image}.${suffix}${query ? `?${query}` : ""}`;
}

function showMaps(model, method) {
  for (const i of [1, 2]) {
    const face = document.getElementById(`face${i}`);
    face.querySelector(".overlay").src = mapUrl(model, method, i, "png");
    face.querySelector(".rawmap").src = mapUrl(model, method, i, "png", "map");
    face.querySelector(".npy").href = mapUrl(model, method, i, "npy");
  }
  root.dataset.shown = `${model}/${method}/${controls.scale.value || "final"}`;
}

// The explorer's parameters this page was opened with (its filter and sort), and this page's own.
function explorerParams() {
  const params = new URLSearchParams(location.search);
  const sortModel = params.get("sort_model");
  for (const key of VIEWER_KEYS) params.delete(key);
  if (sortModel) params.set("model", sortModel);
  return params;
}

function writeUrl() {
  const params = new URLSearchParams(location.search);
  for (const key of ["model", "method", "scale", "opacity"]) params.set(key, controls[key].value);
  history.replaceState(null, "", `?${params}`);
}

async function neighbours() {
  const params = explorerParams();
  params.delete("id");
  params.delete("page");
  const around = await fetchJSON(`/api/pairs/${pairId}/neighbours?${params}`);
  const here = new URLSearchParams(location.search);
  for (const [key, target] of [["previous", around.previous], ["next", around.next]]) {
    const button = document.getElementById(key);
    button.disabled = target === null;
    button.onclick = () => { location.href = `/viewer/${target}?${here}`; };
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

async function update() {
  syncScale();
  const model = controls.model.value;
  const method = controls.method.value;
  writeUrl();
  root.dataset.shown = "";
  verdictRows(model);
  detail.images.forEach((image, index) => {
    const face = document.getElementById(`face${index + 1}`);
    face.querySelector(".base").src = `/api/pairs/${pairId}/faces/${index + 1}.png?model=${encodeURIComponent(model)}`;
    face.querySelector(".meta").replaceChildren(...metadata(image, model));
  });
  const error = document.getElementById("error");
  const progress = document.getElementById("progress");
  error.textContent = "";
  try {
    let status = await fetchJSON(`/api/pairs/${pairId}/xmaps/${encodeURIComponent(model)}`);
    if (!status.ready) {
      status = await fetchJSON(`/api/pairs/${pairId}/xmaps/${encodeURIComponent(model)}`, { method: "POST" });
      if (!status.ready) {
        showProgress(progress, 0, 0);
        await pollTask(status.task.id, (done, total) => showProgress(progress, done, total));
      }
    }
    progress.hidden = true;
    if (controls.model.value === model && controls.method.value === method) showMaps(model, method);
  } catch (e) {
    progress.hidden = true;
    error.textContent = e.message;
  }
}

async function start() {
  detail = await fetchJSON(`/api/pairs/${pairId}`);
  if (!controls.model.options.length) {
    throw new Error("No model has results for this pair yet: run 'xfv precompute' on its dataset.");
  }
  const params = new URLSearchParams(location.search);
  for (const key of ["model", "method", "scale", "opacity"]) {
    const value = params.get(key);
    const known = controls[key].tagName !== "SELECT" || [...controls[key].options].some((o) => o.value === value);
    if (value !== null && known) controls[key].value = value;
  }
  setOpacity();
  update();
  neighbours().catch((e) => { document.getElementById("position").textContent = e.message; });
}

controls.model.addEventListener("change", update);
controls.method.addEventListener("change", update);
controls.scale.addEventListener("change", update);
controls.opacity.addEventListener("input", () => { setOpacity(); writeUrl(); });
document.addEventListener("keydown", (event) => {
  if (event.target.closest("input, select")) return;
  const button = document.getElementById(event.key === "ArrowLeft" ? "previous" : event.key === "ArrowRight" ? "next" : "");
  if (button && !button.disabled) button.click();
});
start().catch((e) => { document.getElementById("error").textContent = e.message; });
