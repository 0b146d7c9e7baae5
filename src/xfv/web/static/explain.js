// "Explain your pair": choose two photos (previewed), a model (with what its X-Maps cost here); see the aligned faces,
// verdict, C-Score and, live, the X-Maps of every method and patch size, over the face or alone.
"use strict";

const uploadForm = document.getElementById("upload");
const result = document.getElementById("result");
const controls = { method: document.getElementById("method"), scale: document.getElementById("scale"),
  opacity: document.getElementById("opacity"), model: document.getElementById("model") };
let current = null;

// A preview of each chosen photo, from the file itself (nothing is sent before "Verify and explain").
for (const i of [1, 2]) {
  const input = document.getElementById(`image${i}`);
  const preview = document.getElementById(`preview${i}`);
  input.addEventListener("change", () => {
    if (preview.src) URL.revokeObjectURL(preview.src);
    if (input.files.length) preview.src = URL.createObjectURL(input.files[0]); else preview.removeAttribute("src");
  });
}

function showCost() {
  const option = controls.model.selectedOptions[0];
  const rate = Number(option.dataset.rate);
  const passes = Number(option.dataset.passes);
  document.getElementById("model-cost").textContent = `X-Maps: ${estimateText({ passes, passes_per_second: rate || null,
    seconds: rate ? passes / rate : null })}`;
}

function showVerdict(answer) {
  const rows = [["model", answer.model], ["distance", answer.distance.toFixed(4)], ["threshold", answer.threshold.toFixed(4)],
    ["prediction", answer.prediction],
    ["confidence", answer.confidence === null ? "–" : confidenceView(answer.confidence)],
    ["calibration", answer.calibration]];
  document.querySelector("#verdict tbody").replaceChildren(
    ...rows.map(([k, v]) => el("tr", { "data-key": k }, el("th", {}, k), el("td", {}, v))));
}

// Method 4 uses no patches: only its final map exists.
function syncScale() {
  const patchless = controls.method.value === "4";
  if (patchless) controls.scale.value = "";
  controls.scale.disabled = patchless;
  controls.scale.title = patchless ? "method 4 uses no patches: one map" : "";
}

function mapUrl(image, suffix, kind) {
  const params = new URLSearchParams();
  if (controls.scale.value) params.set("scale", controls.scale.value);
  if (kind) params.set("kind", kind);
  const query = params.toString();
  return `/api/uploads/${current.id}/xmaps/${controls.method.value}/${image}.${suffix}${query ? `?${query}` : ""}`;
}

function showMaps() {
  syncScale();
  document.getElementById("opacity-value").textContent = `${controls.opacity.value} %`;
  if (!current || !current.ready) return;
  for (const i of [1, 2]) {
    const overlay = document.querySelector(`#face${i} .overlay`);
    overlay.src = mapUrl(i, "png");
    overlay.hidden = false;
    overlay.style.opacity = controls.opacity.value / 100;
    document.querySelector(`#face${i} .rawmap`).src = mapUrl(i, "png", "map");
    document.querySelector(`#downloads .png[data-image="${i}"]`).href = mapUrl(i, "png");
    document.querySelector(`#downloads .npy[data-image="${i}"]`).href = mapUrl(i, "npy");
  }
  document.getElementById("report").href = `/api/uploads/${current.id}/report.json`;
  document.getElementById("downloads").hidden = false;
  result.dataset.shown = `${controls.method.value}/${controls.scale.value || "final"}`;
}

uploadForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("error");
  const button = document.getElementById("submit");
  error.textContent = "";
  result.hidden = true;
  result.dataset.shown = "";
  document.getElementById("downloads").hidden = true;
  button.disabled = true;
  try {
    const answer = await fetchJSON("/api/explain", { method: "POST", body: new FormData(uploadForm) });
    current = { ...answer, ready: false };
    showVerdict(answer);
    answer.faces.forEach((url, index) => {
      document.querySelector(`#face${index + 1} .base`).src = url;
      document.querySelector(`#face${index + 1} .overlay`).hidden = true;
      document.querySelector(`#face${index + 1} .rawmap`).removeAttribute("src");
    });
    result.hidden = false;
    const progress = document.getElementById("progress");
    showProgress(progress, 0, 0);
    await pollTask(answer.task.id, (done, total) => showProgress(progress, done, total));
    progress.hidden = true;
    current.ready = true;
    showMaps();
  } catch (e) {
    error.textContent = e.message;
  } finally {
    button.disabled = false;
  }
});
controls.method.addEventListener("change", showMaps);
controls.scale.addEventListener("change", showMaps);
controls.opacity.addEventListener("input", showMaps);
controls.model.addEventListener("change", showCost);
showCost();
