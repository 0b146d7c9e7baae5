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
  const found = answer.faces_found;
  const several = found ? found.map((n, i) => [n, i + 1]).filter(([n]) => n > 1) : [];
  const faces = found ? `${found[0]} in photo 1, ${found[1]} in photo 2` +
    (several.length ? "; the largest of each is compared" : "") : "–";
  const rows = [["model", answer.model], ["faces found", faces], ["distance", answer.distance.toFixed(4)],
    ["threshold", answer.threshold.toFixed(4)], ["prediction", answer.prediction],
    ["confidence", answer.confidence === null ? "–" : confidenceView(answer.confidence)],
    ["calibration", answer.calibration + (answer.cscore ? ` (${answer.cscore} C-Score)` : "")],
    ["engine", answer.engine || "–"]];
  if (answer.quality1 !== null && answer.quality1 !== undefined) {
    rows.push(["quality", `${answer.quality1.toFixed(3)} / ${answer.quality2.toFixed(3)}`]);
  }
  if (answer.quality_note) rows.push(["quality note", "⚠ " + answer.quality_note]);
  document.querySelector("#verdict tbody").replaceChildren(
    ...rows.map(([k, v]) => el("tr", { "data-key": k }, el("th", {}, k), el("td", {}, v))));
  const notes = document.getElementById("notes");
  notes.textContent = several.map(([n, i]) => `Photo ${i}: ${n} faces found; the largest was compared.`).join(" ");
  notes.hidden = several.length === 0;
  document.getElementById("expiry").textContent =
    `(kept until ${new Date(answer.expires_at).toLocaleString()}, then deleted)`;
}

// Poll the X-Map task; on failure say why and offer to try again (a new task for the same pair).
async function follow(taskId) {
  const progress = document.getElementById("progress");
  const failed = document.getElementById("task-error");
  failed.hidden = true;
  showProgress(progress, 0, 0);
  try {
    await pollTask(taskId, (done, total) => showProgress(progress, done, total));
  } catch (e) {
    progress.hidden = true;
    failed.querySelector(".error").textContent = `The X-Maps could not be computed: ${e.message}`;
    failed.hidden = false;
    return;
  }
  progress.hidden = true;
  current.ready = true;
  showMaps();
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
  document.getElementById("status").hidden = true;
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
    await follow(answer.task.id);
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

document.getElementById("retry").addEventListener("click", async () => {
  try {
    const task = await fetchJSON(`/api/tasks/${current.task.id}/retry`, { method: "POST" });
    current.task = task;
    await follow(task.id);
  } catch (e) {
    document.getElementById("task-error").querySelector(".error").textContent = e.message;
  }
});

document.getElementById("delete").addEventListener("click", async () => {
  const status = document.getElementById("status");
  const response = await fetch(`/api/uploads/${current.id}`, { method: "DELETE" });
  if (response.ok || response.status === 404) {
    result.hidden = true;
    for (const img of document.querySelectorAll("#result img")) img.removeAttribute("src");
    status.textContent = "Deleted: the faces, the verdict and the X-Maps of this pair are gone from the server.";
  } else {
    status.textContent = `Not deleted (${response.status}); try again.`;
  }
  status.hidden = false;
});
