// Helpers shared by the pages: JSON requests with readable errors, stars, task polling.
"use strict";

async function fetchJSON(url, options) {
  const response = await fetch(url, options);
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok) {
    const detail = body && body.detail ? body.detail : response.statusText;
    throw new Error(`${response.status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
  }
  return body;
}

// A C-Score (in [0.5, 1] for Eq. 3) read like a probability: the number, and five stars filled in proportion (none at 0.5,
// a coin flip that carries no information). It is an estimate from a finite calibration set, never certainty:
// a value that would round to 1.000 reads "> 0.999" (the fitted curve may even be clipped at 1 there).
const CSCORE_CEILING = 0.9995;

function formatConfidence(confidence) {
  return confidence >= CSCORE_CEILING ? "> 0.999" : confidence.toFixed(3);
}

function confidenceTitle(confidence) {
  const exact = confidence >= CSCORE_CEILING
    ? `C-Score ${confidence === 1 ? "1 (the fitted curve is clipped at 1 here)" : confidence.toPrecision(6)}: above 0.999, ` +
      "beyond what the calibration's pairs can resolve; an estimate, not certainty"
    : `C-Score ${confidence.toFixed(4)}: the estimated probability that the decision is right`;
  return `${exact} (0.5 = no information, a coin flip)`;
}

// The quality-aware C-Score may fall below 0.5 (docs/quality.md): then the decision is more likely wrong than right,
// and the view says so in words.
const LIKELY_WRONG = "more likely wrong than right";

// ``faceFound`` false: a face was not found, so the number does not hold (it is calibrated on found faces).
// ``compact`` (table cells): below 0.5 the words "likely wrong" on a line of their own; the tooltip says it all.
function confidenceView(confidence, faceFound = true, lostImages = [], compact = false) {
  if (confidence === null || confidence === undefined) return document.createTextNode("–");
  const share = Math.max(0, Math.min(1, (confidence - 0.5) / 0.5));
  const fill = el("span", { class: "fill" }, "★★★★★");
  fill.style.width = `${(100 * share).toFixed(1)}%`;
  const wrong = confidence < 0.5;
  let title = confidenceTitle(confidence);
  if (wrong) title += `; below 0.5 the decision is ${LIKELY_WRONG}`;
  if (faceFound === false) {
    title = `No face found in image ${lostImages.join(" and ")}: the model compared the centre of the photo. ` +
      "This C-Score is calibrated on found faces and does not hold here. " + title;
  }
  const classes = ["confidence", faceFound === false ? "unreliable" : "", wrong ? "likely-wrong" : ""];
  const view = el("span", { class: classes.filter(Boolean).join(" "), title },
    el("span", { class: "stars", "aria-hidden": "true" }, "☆☆☆☆☆", fill), ` ${formatConfidence(confidence)}`);
  if (wrong) view.append(compact ? el("span", { class: "reading compact" }, "likely wrong") : el("span", { class: "reading" }, `: ${LIKELY_WRONG}`));
  if (faceFound === false) view.prepend(el("span", { class: "face-flag" }, "⚠ "));
  return view;
}

// The images (1, 2) in which a model's pipeline found no face: the detector name "centre".
function lostFaces(result) {
  return (result.faces || []).flatMap((detector, i) => (detector === "centre" ? [i + 1] : []));
}

// What a detector name means, for a reader.
const DETECTORS = {
  hog: "found (dlib's HOG detector)", cnn: "found by dlib's CNN detector (HOG missed it)",
  yunet: "found (OpenCV's YuNet detector)", aligned: "given as an aligned crop", none: "not searched (no alignment)",
  centre: "NOT found: the centre of the photo was compared",
};

function detectorText(detector) {
  return detector === null || detector === undefined ? "not recorded (run xfv precompute again)" : DETECTORS[detector] || `found (${detector})`;
}

// A name or path that may wrap after its slashes and underscores, never inside a word.
function breakable(text) {
  return String(text).split(/(?<=[/_])/).flatMap((part, i) => (i ? [el("wbr"), part] : [part]));
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

// etaSeconds: the time left at the rate so far (null: not known yet).
function showProgress(box, done, total, etaSeconds = null) {
  box.hidden = false;
  const share = total ? done / total : 0;
  box.querySelector(".bar").style.width = `${(100 * share).toFixed(1)}%`;
  const left = etaSeconds === null ? "" : `, ${etaSeconds < 1 ? "under a second" : `about ${duration(etaSeconds)}`} left`;
  box.querySelector(".text").textContent = total
    ? `computing X-Maps: ${done.toLocaleString("en")} / ${total.toLocaleString("en")} images embedded${left}` : "starting…";
}

// "4,234 forward passes, about 45 s at 94 passes/s measured on this server": what a map job will cost.
function estimateText(estimate, short = false) {
  const passes = `${estimate.passes.toLocaleString("en")} forward passes${short ? "" : " (both faces, every method)"}`;
  if (!estimate.seconds) return `${passes}; this server has not measured the model's speed yet`;
  const rate = `${Math.round(estimate.passes_per_second).toLocaleString("en")} passes/s`;
  return short ? `${passes}, about ${duration(estimate.seconds)} (${rate} measured here)`
    : `${passes}, about ${duration(estimate.seconds)} at ${rate} (this model's last X-Map job here; a busy server is slower)`;
}

function duration(seconds) {
  if (seconds < 1) return "under a second";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  return `${Math.round(seconds / 60)} min`;
}
