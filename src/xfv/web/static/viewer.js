// The viewer: both faces with their X-Maps for the chosen model and method, computed on demand if needed.
"use strict";

const root = document.getElementById("viewer");
const pairId = root.dataset.pair;
const modelSelect = document.getElementById("model");
const methodSelect = document.getElementById("method");
const opacity = document.getElementById("opacity");
let detail = null;

function verdictRows(model) {
  const r = detail.pair.results[model];
  const p = detail.pair;
  const rows = [["label", p.label], ["dataset", `${p.dataset} (fold ${p.fold}, #${p.position})`]];
  if (r) {
    rows.push(["model", model], ["distance", r.distance.toFixed(4)], ["threshold", r.threshold.toFixed(4)],
      ["prediction", r.prediction], ["correct", r.correct ? "yes ✓" : "no ✗"],
      ["confidence", r.confidence === null ? "–" : `${stars(r.confidence)} ${r.confidence.toFixed(3)}`]);
  }
  document.querySelector("#verdict tbody").replaceChildren(
    ...rows.map(([k, v]) => el("tr", { "data-key": k }, el("th", {}, k), el("td", {}, v))));
}

function setOpacity() {
  document.getElementById("opacity-value").textContent = `${opacity.value} %`;
  for (const img of document.querySelectorAll(".overlay")) img.style.opacity = opacity.value / 100;
}

function showMaps(model, method) {
  const base = `/api/pairs/${pairId}/xmaps/${encodeURIComponent(model)}/${method}`;
  for (const i of [1, 2]) {
    const face = document.getElementById(`face${i}`);
    face.querySelector(".overlay").src = `${base}/${i}.png`;
    face.querySelector(".rawmap").src = `${base}/${i}.png?kind=map`;
    document.getElementById(`npy${i}`).href = `${base}/${i}.npy`;
  }
  root.dataset.shown = `${model}/${method}`;
}

async function update() {
  const model = modelSelect.value;
  const method = methodSelect.value;
  const params = new URLSearchParams({ model, method });
  history.replaceState(null, "", `?${params}`);
  root.dataset.shown = "";
  verdictRows(model);
  detail.images.forEach((image, index) => {
    const face = document.getElementById(`face${index + 1}`);
    face.querySelector(".base").src = `/api/pairs/${pairId}/faces/${index + 1}.png?model=${encodeURIComponent(model)}`;
    face.querySelector(".meta").textContent =
      `${image.identity} · ${image.path} · ${image.width}×${image.height} · quality ${image.quality.toFixed(0)}`;
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
    if (modelSelect.value === model && methodSelect.value === method) showMaps(model, method);
  } catch (e) {
    progress.hidden = true;
    error.textContent = e.message;
  }
}

async function start() {
  detail = await fetchJSON(`/api/pairs/${pairId}`);
  if (!modelSelect.options.length) {
    throw new Error("No model has results for this pair yet: run 'xfv precompute' on its dataset.");
  }
  if (root.dataset.model && [...modelSelect.options].some((o) => o.value === root.dataset.model)) {
    modelSelect.value = root.dataset.model;
  }
  methodSelect.value = root.dataset.method;
  setOpacity();
  update();
}

modelSelect.addEventListener("change", update);
methodSelect.addEventListener("change", update);
opacity.addEventListener("input", setOpacity);
start().catch((e) => { document.getElementById("error").textContent = e.message; });
