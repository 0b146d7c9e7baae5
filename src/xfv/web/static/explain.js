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

// Poll the upload's state: each map is shown as soon as a first version exists and refined in place (method 4 on
// more and more masks, then methods 1-3 patch size by patch size), with the time left and a Cancel button. On
// failure or cancel say so and offer to try again (a new task for the same pair).
async function follow(taskId) {
  const progress = document.getElementById("progress");
  const failed = document.getElementById("task-error");
  const cancel = document.getElementById("cancel");
  failed.hidden = true;
  showProgress(progress, 0, 0);
  cancel.hidden = false;
  cancel.disabled = false;
  for (;;) {
    let state;
    try {
      state = await fetchJSON(`/api/uploads/${current.id}`);
    } catch (e) {
      state = { task: { state: "error", error: e.message }, map_states: {} };
    }
    if (!current || state.id !== undefined && state.id !== current.id) return;  // another pair since
    current.task = state.task;
    current.states = state.map_states;
    if (state.task.state === "running" || state.task.state === "queued") {
      showProgress(progress, state.task.done, state.task.total, state.eta_seconds);
      showMaps();
      await new Promise((resolve) => setTimeout(resolve, 250));
      continue;
    }
    progress.hidden = true;
    cancel.hidden = true;
    showMaps();
    if (state.task.state !== "done") {
      failed.querySelector(".error").textContent = state.task.state === "cancelled"
        ? "Cancelled: the X-Maps were stopped before they were complete; nothing of them was kept."
        : `The X-Maps could not be computed: ${state.task.error}`;
      failed.hidden = false;
    }
    return;
  }
}

// Method 4 uses no patches: only its final map exists.
function syncScale() {
  const patchless = controls.method.value === "4";
  if (patchless) controls.scale.value = "";
  controls.scale.disabled = patchless;
  controls.scale.title = patchless ? "method 4 uses no patches: one map" : "";
}

// version: the map's stage, so that a refined map gets a new URL (the server never lets them be cached).
function mapUrl(image, suffix, kind, version) {
  const params = new URLSearchParams();
  if (controls.scale.value) params.set("scale", controls.scale.value);
  if (kind) params.set("kind", kind);
  if (version) params.set("v", version);
  const query = params.toString();
  return `/api/uploads/${current.id}/xmaps/${controls.method.value}/${image}.${suffix}${query ? `?${query}` : ""}`;
}

// The chosen method's map over both faces: its latest version (a partial one is replaced as it improves).
function showMaps() {
  syncScale();
  document.getElementById("opacity-value").textContent = `${controls.opacity.value} %`;
  const caption = document.getElementById("map-stage");
  const state = current && current.states ? current.states[`${controls.method.value}-1`] : undefined;
  for (const i of [1, 2]) document.querySelector(`#face${i} .raw`).hidden = !state;
  if (!state) {
    for (const i of [1, 2]) document.querySelector(`#face${i} .overlay`).hidden = true;
    caption.textContent = current && current.task && ["running", "queued"].includes(current.task.state)
      ? `Method ${controls.method.value}: not computed yet (method 4 comes first, then methods 1-3 from coarse to fine).` : "";
    result.dataset.shown = "";
    result.dataset.stage = "";
    return;
  }
  const version = `${state.stage}`;
  for (const i of [1, 2]) {
    const overlay = document.querySelector(`#face${i} .overlay`);
    const src = mapUrl(i, "png", "", version);
    if (overlay.getAttribute("src") !== src) {
      overlay.onerror = () => { overlay.hidden = true; };  // a patch size not computed yet
      overlay.onload = () => { overlay.hidden = false; };
      overlay.src = src;
    }
    overlay.style.opacity = controls.opacity.value / 100;
    const raw = document.querySelector(`#face${i} .rawmap`);
    const rawSrc = mapUrl(i, "png", "map", version);
    if (raw.getAttribute("src") !== rawSrc) raw.src = rawSrc;
    document.querySelector(`#downloads .png[data-image="${i}"]`).href = mapUrl(i, "png");
    document.querySelector(`#downloads .npy[data-image="${i}"]`).href = mapUrl(i, "npy");
  }
  caption.textContent = state.state === "final" ? "" : `Partial map (${state.stage}); it is refined as the computation goes on.`;
  document.getElementById("report").href = `/api/uploads/${current.id}/report.json`;
  document.getElementById("downloads").hidden = current.task.state !== "done";
  // what is shown once everything is stored (the report lists every map): e.g. "4/final"
  result.dataset.shown = current.task.state === "done" ? `${controls.method.value}/${controls.scale.value || "final"}` : "";
  result.dataset.stage = state.stage;
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
    current = { ...answer, states: {} };
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

document.getElementById("cancel").addEventListener("click", async (event) => {
  event.target.disabled = true;
  try {
    await fetchJSON(current.cancel, { method: "DELETE" });  // the polling loop then reports the cancel
  } catch (e) {
    document.getElementById("task-error").querySelector(".error").textContent = e.message;
    document.getElementById("task-error").hidden = false;
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
