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

// A C-Score read like a probability that the decision is right: the number, and five stars filled in proportion
// (none at 0.5, a coin flip that carries no information; all five at 1, certain). The quality-aware C-Score may fall
// below 0.5 (docs/quality.md): then the decision is more likely wrong than right, and the view says so in words.
const LIKELY_WRONG = "more likely wrong than right";

function confidenceView(confidence) {
  if (confidence === null || confidence === undefined) return document.createTextNode("–");
  const share = Math.max(0, Math.min(1, (confidence - 0.5) / 0.5));
  const fill = el("span", { class: "fill" }, "★★★★★");
  fill.style.width = `${(100 * share).toFixed(1)}%`;
  const wrong = confidence < 0.5;
  const view = el("span", { class: wrong ? "confidence likely-wrong" : "confidence",
      title: `C-Score ${confidence.toFixed(3)}: probability that the decision is right ` +
      `(0.5 = no information, 1 = certain${wrong ? `; below 0.5 the decision is ${LIKELY_WRONG}` : ""})` },
    el("span", { class: "stars", "aria-hidden": "true" }, "☆☆☆☆☆", fill), ` ${confidence.toFixed(3)}`);
  if (wrong) view.append(el("span", { class: "reading" }, `: ${LIKELY_WRONG}`));
  return view;
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

// Poll /api/tasks/{id} until done; onProgress(done, total) along the way.
async function pollTask(taskId, onProgress, interval = 400) {
  for (;;) {
    const task = await fetchJSON(`/api/tasks/${taskId}`);
    onProgress(task.done, task.total);
    if (task.state === "done") return task;
    if (task.state === "error") throw new Error(task.error);
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

function showProgress(box, done, total) {
  box.hidden = false;
  const share = total ? done / total : 0;
  box.querySelector(".bar").style.width = `${(100 * share).toFixed(1)}%`;
  box.querySelector(".text").textContent = total ? `computing X-Maps: ${done} / ${total} images embedded` : "starting…";
}
