// "Explain your pair": upload two photos, see aligned faces, verdict, C-Score and live X-Maps.
"use strict";

const uploadForm = document.getElementById("upload");
const result = document.getElementById("result");
const methodSelect = document.getElementById("method");
const opacity = document.getElementById("opacity");
let current = null;

function showVerdict(answer) {
  const rows = [["model", answer.model], ["distance", answer.distance.toFixed(4)], ["threshold", answer.threshold.toFixed(4)],
    ["prediction", answer.prediction],
    ["confidence", answer.confidence === null ? "–" : confidenceView(answer.confidence)],
    ["calibration", answer.calibration + (answer.cscore ? ` (${answer.cscore} C-Score)` : "")]];
  if (answer.quality1 !== null && answer.quality1 !== undefined) {
    rows.push(["quality", `${answer.quality1.toFixed(3)} / ${answer.quality2.toFixed(3)}`]);
  }
  if (answer.quality_note) rows.push(["quality note", "⚠ " + answer.quality_note]);
  document.querySelector("#verdict tbody").replaceChildren(
    ...rows.map(([k, v]) => el("tr", { "data-key": k }, el("th", {}, k), el("td", {}, v))));
}

function showMaps() {
  document.getElementById("opacity-value").textContent = `${opacity.value} %`;
  if (!current || !current.ready) return;
  for (const i of [1, 2]) {
    const url = current.xmaps[`${methodSelect.value}-${i}`];
    const overlay = document.querySelector(`#face${i} .overlay`);
    overlay.src = url;
    overlay.hidden = false;
    overlay.style.opacity = opacity.value / 100;
    document.querySelector(`#downloads .png[data-image="${i}"]`).href = url;
    document.querySelector(`#downloads .npy[data-image="${i}"]`).href = url.replace(/\.png$/, ".npy");
  }
  document.getElementById("report").href = `/api/uploads/${current.id}/report.json`;
  document.getElementById("downloads").hidden = false;
  result.dataset.shown = methodSelect.value;
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
methodSelect.addEventListener("change", showMaps);
opacity.addEventListener("input", showMaps);
