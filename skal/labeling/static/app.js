// The labelling page of `skal label serve`. No framework, no build step. Every piece of text from
// the server (class names, file names, errors) goes into the page with textContent, never as HTML.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
let state = null;        // the last /api/state
let selected = 0;        // index in state.batch
let roundId = null;      // the round whose batch is shown
let queue = Promise.resolve();  // answers are sent one after the other, in key-press order
let pollTimer = null;
let pending = 0;         // answers shown on the page but not yet acknowledged by the server

const $ = (id) => document.getElementById(id);

function annotator() {
  const name = $("annotator").value.trim();
  return name || "web";
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => { box.hidden = true; }, 6000);
}

async function api(method, path, body) {
  const options = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (!response.ok) {
    const detail = data && data.detail ? data.detail : response.status + " " + response.statusText;
    throw new Error(detail);
  }
  return data;
}

// ------------------------------------------------------------------------------ rendering
function formatConfidence(c) {
  return c === null || c === undefined ? "" : " (" + Math.round(c * 100) + "%)";
}

function renderGrid() {
  const grid = $("grid");
  grid.replaceChildren();
  state.batch.forEach((item, i) => {
    const cell = document.createElement("figure");
    cell.className = "cell" + (i === selected ? " selected" : "");
    cell.dataset.imageId = String(item.image_id);
    cell.dataset.index = String(i);
    if (item.answer) cell.dataset.answer = item.answer;
    if (item.label !== null && item.label !== undefined) cell.dataset.label = item.label;
    const img = document.createElement("img");
    img.src = item.url;
    img.alt = item.path;
    img.title = item.path;
    const caption = document.createElement("figcaption");
    const answer = document.createElement("div");
    answer.className = "answer";
    answer.textContent = item.answer === "label" ? item.label : (item.answer === "skip" ? "skipped" : "\u00a0");
    const guess = document.createElement("div");
    guess.className = "guess";
    guess.textContent = item.guess === null || item.guess === undefined
      ? "no model yet" : "guess: " + item.guess + formatConfidence(item.confidence);
    caption.append(answer, guess);
    cell.append(img, caption);
    cell.addEventListener("click", () => { selected = i; renderGrid(); });
    grid.append(cell);
  });
  const answered = state.batch.filter((it) => it.answer).length;
  $("batch-progress").max = Math.max(state.batch.length, 1);
  $("batch-progress").value = answered;
  $("batch-count").textContent = answered + " / " + state.batch.length + " answered";
  const r = state.round;
  $("batch-title").textContent = r
    ? "batch of round " + r.id + " (" + r.strategy + ")" : "no batch";
  document.body.dataset.round = r ? String(r.id) : "";
  document.body.dataset.answered = String(answered);
}

function renderCounts() {
  const body = $("counts").tBodies[0];
  body.replaceChildren();
  for (const c of state.classes) {
    const row = document.createElement("tr");
    const name = document.createElement("td");
    name.textContent = c.name;
    const n = document.createElement("td");
    n.className = "n";
    n.textContent = String(state.counts[c.name] || 0);
    row.append(name, n);
    body.append(row);
  }
  $("totals").textContent = state.n_labeled + " labelled of " + state.n_images + " images";
}

function renderJob() {
  const job = state.job;
  const box = $("job");
  box.dataset.state = job.state;
  box.dataset.round = job.round === null ? "" : String(job.round);
  let text = job.state;
  if (job.state === "running") {
    text = "running " + (job.strategy || "") + ": " + (job.phase || "");
    if (job.phase === "training" && job.total) text += " epoch " + job.done + " / " + job.total;
  } else if (job.state === "failed") {
    text = "failed: " + job.error;
  } else if (job.state === "done") {
    text = "done: round " + job.round;
  }
  box.textContent = text;
  const bar = $("job-progress");
  bar.hidden = job.state !== "running";
  bar.max = Math.max(job.total || 1, 1);
  bar.value = job.done || 0;
  $("train-button").disabled = job.state === "running";
}

function svg(name, attrs, text) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function renderCurve() {
  const box = $("curve");
  box.replaceChildren();
  const points = state.curve.filter((p) => p.accuracy !== null);
  if (!points.length) {
    box.textContent = "No accuracy yet: train once with some labels held out.";
    return;
  }
  const W = 280, H = 170, L = 34, R = 10, T = 10, B = 28;
  const xs = points.map((p) => p.n_labeled);
  const xmin = Math.min(...xs), xmax = Math.max(...xs);
  const sx = (x) => L + (xmax === xmin ? (W - L - R) / 2 : (x - xmin) / (xmax - xmin) * (W - L - R));
  const sy = (y) => T + (1 - y) * (H - T - B);
  const root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img",
    "aria-label": "held-out accuracy against the number of labels" });
  root.append(svg("line", { x1: L, y1: sy(0), x2: W - R, y2: sy(0), class: "axis" }));
  root.append(svg("line", { x1: L, y1: sy(0), x2: L, y2: sy(1), class: "axis" }));
  for (const y of [0, 0.5, 1]) {
    root.append(svg("text", { x: L - 4, y: sy(y) + 3, "text-anchor": "end" }, Math.round(y * 100) + "%"));
  }
  root.append(svg("text", { x: sx(xmin), y: H - 14, "text-anchor": "middle" }, String(xmin)));
  if (xmax !== xmin) root.append(svg("text", { x: sx(xmax), y: H - 14, "text-anchor": "middle" }, String(xmax)));
  root.append(svg("text", { x: (L + W - R) / 2, y: H - 2, "text-anchor": "middle" }, "labels"));
  root.append(svg("polyline", { class: "line",
    points: points.map((p) => sx(p.n_labeled) + "," + sy(p.accuracy)).join(" ") }));
  for (const p of points) {
    const dot = svg("circle", { cx: sx(p.n_labeled), cy: sy(p.accuracy), r: 3, class: "dot" });
    dot.append(svg("title", {}, "round " + p.round + ": " + p.n_labeled + " labels, accuracy "
      + (p.accuracy * 100).toFixed(1) + "% on " + p.n_holdout + " held out"));
    root.append(dot);
  }
  box.append(root);
}

function render() {
  renderGrid();
  renderCounts();
  renderJob();
  renderCurve();
}

// ------------------------------------------------------------------------------ state
function firstUnanswered(from) {
  const n = state.batch.length;
  for (let k = 0; k < n; k++) {
    const i = (from + k) % n;
    if (!state.batch[i].answer) return i;
  }
  return Math.min(from, Math.max(n - 1, 0));
}

async function refresh() {
  if (pending > 0) { schedulePoll(); return; }
  const fresh = await api("GET", "/api/state");
  const newRound = !state || !fresh.round || fresh.round.id !== roundId;
  state = fresh;
  roundId = fresh.round ? fresh.round.id : null;
  if (newRound) selected = firstUnanswered(0);
  selected = Math.min(selected, Math.max(state.batch.length - 1, 0));
  render();
  schedulePoll();
}

function schedulePoll() {
  clearTimeout(pollTimer);
  if (!state) return;
  const running = state && state.job.state === "running";
  pollTimer = setTimeout(() => refresh().catch((e) => showError(e.message)), running ? 500 : 5000);
}

function enqueue(task) {
  queue = queue.then(task).catch((e) => { showError(e.message); return refresh().catch(() => {}); });
  return queue;
}

function answerSelected(className) {
  if (!state || !state.batch.length) return;
  const item = state.batch[selected];
  // shown at once; the request follows in order
  item.answer = className === null ? "skip" : "label";
  item.label = className;
  selected = firstUnanswered(selected);
  renderGrid();
  const body = className === null
    ? { image_id: item.image_id, skip: true, annotator: annotator() }
    : { image_id: item.image_id, label: className, annotator: annotator() };
  pending += 1;
  enqueue(async () => {
    try {
      await api("POST", "/api/answers", body);
    } finally {
      pending -= 1;
    }
    if (pending === 0) await refresh();  // a refresh now would hide the answers still queued
  });
}

function undo() {
  enqueue(async () => {
    const result = await api("POST", "/api/undo", { annotator: annotator() });
    await refresh();
    if (result.image_id !== null) {
      const i = state.batch.findIndex((it) => it.image_id === result.image_id);
      if (i >= 0) { selected = i; renderGrid(); }
    }
  });
}

function train() {
  const strategy = $("strategy").value;
  enqueue(async () => {
    await api("POST", "/api/train", { strategy });
    await refresh();
  });
}

function move(delta) {
  if (!state || !state.batch.length) return;
  selected = (selected + delta + state.batch.length) % state.batch.length;
  renderGrid();
}

function onKey(event) {
  const tag = event.target && event.target.tagName;
  if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") return;
  if (event.ctrlKey || event.metaKey || event.altKey || !state) return;
  const cls = state.classes.find((c) => c.key !== null && c.key === event.key);
  if (cls) { answerSelected(cls.name); event.preventDefault(); return; }
  switch (event.key) {
    case " ": answerSelected(null); break;
    case "Backspace": undo(); break;
    case "ArrowRight": case "ArrowDown": move(1); break;
    case "ArrowLeft": case "ArrowUp": move(-1); break;
    default: return;
  }
  event.preventDefault();
}

function init() {
  const saved = window.localStorage && localStorage.getItem("skal-annotator");
  if (saved) $("annotator").value = saved;
  $("annotator").addEventListener("change", () => {
    if (window.localStorage) localStorage.setItem("skal-annotator", annotator());
  });
  for (const button of document.querySelectorAll(".class-button")) {
    button.addEventListener("click", () => answerSelected(button.dataset.class));
  }
  $("skip-button").addEventListener("click", () => answerSelected(null));
  $("undo-button").addEventListener("click", undo);
  $("train-button").addEventListener("click", train);
  document.addEventListener("keydown", onKey);
  refresh().catch((e) => showError(e.message));
}

document.addEventListener("DOMContentLoaded", init);
