// The labelling page of `skal label serve`. No framework, no build step. Every piece of text from
// the server (class names, file names, errors) goes into the page with textContent, never as HTML.
//
// The page never shows more than the server said. An answer is kept in an outbox (in memory and
// in localStorage) under an id made here (`client_id`) until the server acknowledges it; it is
// shown as "not saved yet" until then and re-sent, with the same id, until it is stored (the
// server stores an id once). When the server does not answer, the page says so ("offline, N
// answers waiting") and tries again with a growing delay; it never stops polling. Counts, batch
// and training status come from the server's latest /api/state only.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const MAX_VIEW_MS = 86400000;
const BACKOFF_MS = [1000, 2000, 4000, 8000, 10000];

let state = null;        // the last /api/state
let selected = 0;        // index in state.batch
let roundId = null;      // the round whose batch is shown
let gridKey = "";        // the image ids of the cells on the page
let batchDone = false;   // the batch's last image was answered: class keys wait for a selection
let shownAt = 0;         // when the selected image was selected (performance.now())

let outbox = [];         // answers not acknowledged yet, oldest first
let sending = null;      // the outbox entry on its way to the server
let ops = [];            // undo / train requests, sent after the outbox
let online = true;       // whether the last request reached the server
let failures = 0;        // requests in a row that did not reach it
let retryAt = 0;         // when the next try is due (Date.now()), while offline
let ticking = false, again = false;
let pollTimer = null, countdown = null;
let keys = { guess: "g", zoom: "z", train: "t" };
let storageKey = null, tabKey = null;

const $ = (id) => document.getElementById(id);

function annotator() {
  const name = $("annotator").value.trim();
  return name || "web";
}

// ------------------------------------------------------------------------------ messages
function showError(message) {
  // stays until dismissed (or replaced): a problem must not vanish before it is read
  $("error-text").textContent = message;
  $("error").hidden = false;
}

function hideError() { $("error").hidden = true; }

// ------------------------------------------------------------------------------ requests
// the server did not answer (or answered "try again", or refused this page's token): the
// answers wait, the page says why and tries again
class Offline extends Error {}
let offlineReason = "";
let blocked = "";        // why the server refuses the outbox's first answer (403: who answers)

async function api(method, path, body) {
  const options = { method, headers: {}, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (e) {
    throw new Offline("the server does not answer");  // (no connection)
  }
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (response.status >= 500 || response.status === 408 || response.status === 429) {
    throw new Offline("the server answered " + response.status + "; trying again");
  }
  if (response.status === 401) {
    throw new Offline("the server does not accept this page's token (was it restarted with "
      + "a new one?): open the address it printed");
  }
  if (!response.ok) {
    const detail = data && data.detail ? data.detail : response.status + " " + response.statusText;
    const error = new Error(detail);
    error.status = response.status;
    throw error;
  }
  return data;
}

// ------------------------------------------------------------------------------ the outbox
function newClientId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function saveOutbox() {
  if (!storageKey) return;
  try {
    if (outbox.length) localStorage.setItem(tabKey, JSON.stringify(outbox));
    else localStorage.removeItem(tabKey);
  } catch (e) { /* storage full or off: the outbox is still in memory */ }
}

function loadOutbox() {
  // this tab's answers (kept over a reload) and those another tab of the project left behind
  // (re-sending them is harmless: the server stores each client_id once)
  try {
    const project = document.body.dataset.project || "";
    storageKey = "skal-outbox:" + project + ":";
    let tab = sessionStorage.getItem("skal-tab");
    if (!tab) { tab = newClientId(); sessionStorage.setItem("skal-tab", tab); }
    tabKey = storageKey + tab;
    const found = [];
    for (let i = 0; i < localStorage.length; i++) {
      const key = localStorage.key(i);
      if (key && key.startsWith(storageKey)) found.push(key);
    }
    for (const key of found.sort((a, b) => (a === tabKey) - (b === tabKey))) {
      let entries = [];
      try { entries = JSON.parse(localStorage.getItem(key)) || []; } catch (e) { entries = []; }
      for (const e of Array.isArray(entries) ? entries : []) {
        if (e && typeof e.client_id === "string" && Number.isInteger(e.image_id)
            && !outbox.some((o) => o.client_id === e.client_id)) outbox.push(e);
      }
      if (key !== tabKey) localStorage.removeItem(key);
    }
    saveOutbox();
  } catch (e) {
    storageKey = null;  // no storage (private mode): memory only
  }
}

function waitingFor(imageId) {
  for (let k = outbox.length - 1; k >= 0; k--) if (outbox[k].image_id === imageId) return outbox[k];
  return null;
}

// ------------------------------------------------------------------------------ the loop
// One loop sends the outbox in order, then undo/train requests, then reads the state. It runs
// every few seconds (every 0.5 s while a round runs) and at once after an answer; while the
// server is away it waits 1, 2, 4, 8, then 10 s between tries.
function kick() {
  if (ticking) { again = true; return; }
  if (!online && Date.now() < retryAt) return;  // the backoff decides
  tick();
}

async function tick() {
  clearTimeout(pollTimer);
  ticking = true;
  try {
    await flush();
    while (ops.length) {
      const op = ops.shift();
      await op();
    }
    const fresh = await api("GET", "/api/state");
    await myItems(fresh);
    applyState(fresh);
    online = true;
    failures = 0;
  } catch (e) {
    if (e instanceof Offline) {
      online = false;
      offlineReason = e.message;
      failures += 1;
      for (const op of ops) if (op.onOffline) op.onOffline();
      ops = [];
    } else {
      showError(e.message);
    }
  } finally {
    ticking = false;
  }
  if (again && online) { again = false; return tick(); }
  again = false;
  schedule();
}

function schedule() {
  clearTimeout(pollTimer);
  let delay;
  if (!online) delay = BACKOFF_MS[Math.min(failures, BACKOFF_MS.length) - 1];
  else delay = state && state.job.state === "running" ? 500 : 3000;
  retryAt = Date.now() + delay;
  pollTimer = setTimeout(tick, delay);
  renderConnection();
  renderGrid();
  renderJob();
}

async function flush() {
  while (outbox.length) {
    const entry = outbox[0];
    sending = entry;
    const body = { image_id: entry.image_id, annotator: entry.annotator,
                   client_id: entry.client_id };
    if (entry.skip) body.skip = true; else body.label = entry.label;
    if (entry.view_ms !== null && entry.view_ms !== undefined) body.view_ms = entry.view_ms;
    let refused = null;
    try {
      await api("POST", "/api/answers", body);
    } catch (e) {
      sending = null;
      if (e instanceof Offline) throw e;
      if (e.status === 403) {
        // not this answer's fault but the sender's (a registered name without its token): it
        // waits, in order, until the name is changed or the token given
        blocked = e.message;
        entry.blocked = true;
        saveOutbox();
        return;
      }
      refused = e;  // the server will never store it (e.g. a retired image): say so, drop it
    }
    blocked = "";
    outbox = outbox.filter((o) => o !== entry);
    saveOutbox();
    if (refused) {
      showError("The answer for " + nameOf(entry.image_id) + " was refused and is not saved: "
        + refused.message);
    } else if (state) {
      const item = state.batch.find((it) => it.image_id === entry.image_id);
      if (item) {  // acknowledged: saved (the next /api/state confirms it)
        item.answer = entry.skip ? "skip" : "label";
        item.label = entry.skip ? null : entry.label;
      }
    }
    renderGrid();
  }
}

// Several annotators: the server hands each their own items of the batch (POST /api/my-items,
// with the sender's own answers as "mine"); the grid shows those. A server without that route
// (404) shows everyone the whole batch. A registered annotator is known by the token cookie: the
// page learns the name from the server and answers under it.
let teamApi = null;      // whether the server assigns items (null: not asked yet)
let tokenName = null;    // the annotator name of this browser's token, once known

async function myItems(fresh) {
  if (teamApi === false || !fresh.round) return;
  let data;
  try {
    data = await api("POST", "/api/my-items", { annotator: annotator() });
  } catch (e) {
    if (e instanceof Offline) throw e;
    if (e.status === 404 || e.status === 405) { teamApi = false; return; }
    if (e.status !== 403 || tokenName !== null) throw e;
    // a token for another name: ask who the token is, and answer as them from now on
    data = await api("POST", "/api/my-items", { annotator: null });
    tokenName = data.annotator;
    $("annotator").value = tokenName;
    $("annotator").readOnly = true;
    $("annotator").title = "the name of your annotator token";
  }
  teamApi = true;
  fresh.batch = data.items.map((it) => Object.assign({}, it, { answer: it.mine }));
  fresh.progress = data.progress;
}

function applyState(fresh) {
  const newRound = !state || !fresh.round || fresh.round.id !== roundId;
  const before = state && state.batch[selected] ? state.batch[selected].image_id : null;
  state = fresh;
  roundId = fresh.round ? fresh.round.id : null;
  if (newRound) {
    batchDone = false;
    select(firstUnanswered(0), false);
    if (state.batch.length && answeredCount() === state.batch.length) batchDone = true;
  } else {
    // the items may change (more assigned as one answers): the selection follows its image
    const i = state.batch.findIndex((it) => it.image_id === before);
    if (i >= 0) selected = i;
    if (batchDone && firstUnanswered(0) >= 0) {  // new items came: on to the first of them
      batchDone = false;
      select(firstUnanswered(0), false);
    }
  }
  selected = Math.min(selected, Math.max(state.batch.length - 1, 0));
  pickKeys();
  render();
}

// ------------------------------------------------------------------------------ rendering
function formatConfidence(item) {
  // the guess's probability after the round's temperature scaling when it could fit one
  // (skal.labeling.batch_report), else the model's own, said to be uncalibrated
  if (item.calibrated) {
    return " (" + Math.round(item.calibrated_confidence * 100) + "%, calibrated)";
  }
  const c = item.confidence;
  return c === null || c === undefined ? "" : " (" + Math.round(c * 100) + "%, uncalibrated)";
}

function formatSeconds(s) {
  return s === null || s === undefined ? "" : "~" + (s < 10 ? s.toFixed(1) : Math.round(s)) + " s";
}

function nameOf(imageId) {
  const item = state && state.batch.find((it) => it.image_id === imageId);
  return item ? item.path : "image " + imageId;
}

function shown(item) {
  // what a cell says: the answer waiting to be sent wins over the stored one
  const waiting = waitingFor(item.image_id);
  if (waiting) return { kind: waiting.skip ? "skip" : "label", label: waiting.label, saved: false };
  if (item.answer) return { kind: item.answer, label: item.label, saved: true };
  return { kind: null, label: null, saved: false };
}

function describe(item, i) {
  const s = shown(item);
  let text = "image " + (i + 1) + " of " + state.batch.length + ": ";
  if (s.kind === "label") text += "labelled " + s.label;
  else if (s.kind === "skip") text += "skipped";
  else text += "not answered";
  if (s.kind && !s.saved) text += ", not saved yet";
  if (item.guess !== null && item.guess !== undefined) {
    text += "; model's guess " + item.guess + formatConfidence(item);
    if (item.expected_seconds !== null && item.expected_seconds !== undefined) {
      text += "; expected " + formatSeconds(item.expected_seconds) + " to label";
    }
  }
  return text;
}

function buildGrid() {
  const grid = $("grid");
  grid.replaceChildren();
  state.batch.forEach((item, i) => {
    const cell = document.createElement("figure");
    cell.className = "cell";
    cell.setAttribute("role", "option");
    cell.dataset.imageId = String(item.image_id);
    cell.dataset.index = String(i);
    cell.dataset.path = item.path;
    const img = document.createElement("img");
    img.src = item.url;
    img.alt = "image " + (i + 1) + " of " + state.batch.length;
    const caption = document.createElement("figcaption");
    const answer = document.createElement("div");
    answer.className = "answer";
    const guess = document.createElement("div");
    guess.className = "guess";
    caption.append(answer, guess);
    cell.append(img, caption);
    cell.addEventListener("click", () => { batchDone = false; select(i, true); render(); });
    grid.append(cell);
  });
  gridKey = state.batch.map((it) => it.image_id).join(",");
}

function renderGrid() {
  if (!state) return;
  if (gridKey !== state.batch.map((it) => it.image_id).join(",")) buildGrid();
  const cells = $("grid").children;
  state.batch.forEach((item, i) => {
    const cell = cells[i];
    const s = shown(item);
    const isSelected = i === selected;
    cell.classList.toggle("selected", isSelected);
    cell.setAttribute("aria-selected", isSelected ? "true" : "false");
    cell.tabIndex = isSelected ? 0 : -1;
    cell.setAttribute("aria-label", describe(item, i));
    if (s.kind && s.saved) cell.dataset.answer = s.kind; else delete cell.dataset.answer;
    if (s.kind && !s.saved) cell.dataset.waiting = s.kind; else delete cell.dataset.waiting;
    if (s.kind === "label") cell.dataset.label = s.label; else delete cell.dataset.label;
    let text = s.kind === "label" ? s.label : (s.kind === "skip" ? "skipped" : "\u00a0");
    if (s.kind && !s.saved) text += " \u00b7 not saved yet";
    cell.querySelector(".answer").textContent = text;
    cell.querySelector(".guess").textContent = (item.guess === null || item.guess === undefined
      ? "no model yet" : "guess: " + item.guess + formatConfidence(item))
      + (item.expected_seconds !== null && item.expected_seconds !== undefined
        ? " \u00b7 " + formatSeconds(item.expected_seconds) : "")
      + (item.n_votes > 1 ? " \u00b7 " + item.n_votes + " answers" : "");
  });
  const saved = state.batch.filter((it) => it.answer && !waitingFor(it.image_id)).length;
  const waiting = state.batch.filter((it) => waitingFor(it.image_id)).length;
  $("batch-progress").max = Math.max(state.batch.length, 1);
  $("batch-progress").value = saved;
  $("batch-count").textContent = teamApi && state.round && !state.batch.length
    ? "no items for you now: the other annotators hold the rest of this batch"
    : saved + " / " + state.batch.length + " answered"
      + (waiting ? " (" + waiting + " more not saved yet)" : "");
  const r = state.round;
  const q = r && r.query;  // how the round queried (skal.labeling.batch_report), null before
  let how = r ? r.strategy : "";
  if (q && q.cost_aware) how += ", cost-aware";
  if (q && q.seconds_per_image !== null) how += ", " + formatSeconds(q.seconds_per_image) + " per image";
  $("batch-title").textContent = r ? "batch of round " + r.id + " (" + how + ")" : "no batch";
  $("batch-note").textContent = q && q.note ? q.note : "";
  $("batch-note").hidden = !(q && q.note);
  document.body.dataset.costAware = q && q.cost_aware ? "1" : "0";
  document.body.dataset.round = r ? String(r.id) : "";
  document.body.dataset.answered = String(saved);
  document.body.dataset.waiting = String(outbox.length);
  document.body.dataset.online = online ? "1" : "0";
  $("batch-done").hidden = !(batchDone && state.batch.length);
  document.body.dataset.batchDone = batchDone ? "1" : "0";
  renderPreview();
}

function renderPreview() {
  const item = state && state.batch[selected];
  const img = $("preview-img"), zoomImg = $("zoom-img");
  if (!item) {
    img.removeAttribute("src");
    $("preview-name").textContent = "";
    $("preview-info").textContent = "";
    return;
  }
  if (img.getAttribute("src") !== item.url) { img.src = item.url; zoomImg.src = item.url; }
  const label = describe(item, selected);
  img.alt = zoomImg.alt = "enlarged " + label;
  $("preview-name").textContent = $("zoom-name").textContent = item.path;
  $("preview-info").textContent = $("zoom-info").textContent = label;
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
  if (!state) return;
  const job = state.job;
  const box = $("job");
  box.dataset.state = online ? job.state : "unknown";
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
  // while the server is away its job is unknown: no frozen "epoch 15 / 50"
  box.textContent = online ? text : "unknown while the server does not answer";
  const bar = $("job-progress");
  bar.hidden = !online || job.state !== "running";
  bar.max = Math.max(job.total || 1, 1);
  bar.value = job.done || 0;
  const blocked = !online || job.state === "running";
  $("train-button").disabled = blocked;
  $("done-train-button").disabled = blocked;
}

function renderConnection() {
  const box = $("connection");
  const n = outbox.length;
  const answers = n + (n === 1 ? " answer" : " answers");
  box.dataset.online = online ? "1" : "0";
  $("retry-button").hidden = online;
  clearInterval(countdown);
  if (!online) {
    const say = () => {
      const s = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
      $("connection-text").textContent = "Offline \u2014 " + answers + " waiting. "
        + offlineReason.charAt(0).toUpperCase() + offlineReason.slice(1) + "; next try "
        + (s ? "in " + s + " s" : "now") + ".";
    };
    say();
    countdown = setInterval(say, 1000);
    box.hidden = false;
  } else if (n && blocked) {
    $("connection-text").textContent = "Not saved \u2014 " + answers + " waiting: " + blocked;
    box.hidden = false;
  } else if (n && Date.now() - (outbox[0].at || 0) > 1000) {  // (not for a moment's wait)
    $("connection-text").textContent = "Saving \u2014 " + answers + " waiting.";
    box.hidden = false;
  } else {
    box.hidden = true;
  }
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

function renderStopping() {
  // the latest round's report (skal.labeling.diagnostics): every number as the server gave it
  const box = $("stopping");
  const r = state.round && state.round.stopping;
  box.replaceChildren();
  if (!r) {
    box.textContent = "No report yet: it comes with the rounds that train a model.";
    return;
  }
  const pct = (x) => (x * 100).toFixed(1) + "%";
  const lines = [];
  if (r.recommendation) lines.push(["recommendation", r.recommendation]);
  if (r.stop_kappa !== null && r.stop_kappa !== undefined) {
    let text = "kappa with the previous round's predictions " + r.stop_kappa.toFixed(3);
    if (r.stop_by_kappa !== null && r.stop_by_kappa !== undefined) {
      text += r.stop_by_kappa ? ": predictions have stabilised (stop)" : ": still changing";
    }
    lines.push(["kappa", text]);
  }
  if (r.stop_by_plateau !== null && r.stop_by_plateau !== undefined) {
    lines.push(["plateau", r.stop_by_plateau
      ? "held-out accuracy has reached a plateau (stop)" : "held-out accuracy still rises"]);
  }
  if (r.ece !== null && r.ece !== undefined) {
    let text = "calibration error (ECE) " + pct(r.ece);
    if (r.ece_calibrated !== null && r.ece_calibrated !== undefined) {
      text += ", " + pct(r.ece_calibrated) + " after temperature scaling";
      if (r.temperature) text += " (T = " + r.temperature.toFixed(2) + ")";
    }
    lines.push(["ece", text]);
  }
  if (!lines.length) lines.push(["none", "Not enough rounds or held-out labels for a report yet."]);
  for (const [kind, text] of lines) {
    const p = document.createElement("p");
    p.dataset.kind = kind;
    p.textContent = text;
    box.append(p);
  }
}

function renderAgreement() {
  // several annotators on the same items (overlap): how far they agree, as the server computed
  const a = state.agreement;
  const box = $("agreement");
  box.replaceChildren();
  $("agreement-box").hidden = !(a && a.n_overlap);
  if (!a || !a.n_overlap) return;
  const kappa = (k) => (k === null || k === undefined ? "undefined" : k.toFixed(2));
  const lines = [a.n_overlap + " of " + a.n_items + " answered items have 2 or more answers"];
  if (a.mean_item_agreement !== null && a.mean_item_agreement !== undefined) {
    lines.push("mean agreement per item " + Math.round(a.mean_item_agreement * 100) + "%");
  }
  lines.push("Fleiss' kappa " + kappa(a.fleiss_kappa));
  for (const pair of a.pairs || []) {
    lines.push("Cohen's kappa " + pair.annotators.join(" / ") + " " + kappa(pair.kappa)
      + " on " + pair.n_items + " items");
  }
  for (const text of lines) {
    const p = document.createElement("p");
    p.textContent = text;
    box.append(p);
  }
}

function render() {
  renderAgreement();
  renderGrid();
  renderCounts();
  renderJob();
  renderCurve();
  renderStopping();
  renderConnection();
}

// ------------------------------------------------------------------------------ selection
function answeredCount() {
  return state.batch.filter((it) => shown(it).kind).length;
}

function firstUnanswered(from) {
  const n = state.batch.length;
  for (let k = 0; k < n; k++) {
    const i = (from + k) % n;
    if (!shown(state.batch[i]).kind) return i;
  }
  return -1;
}

function select(i, focus) {
  if (!state || !state.batch.length) return;
  selected = Math.max(0, Math.min(i, state.batch.length - 1));
  shownAt = performance.now();
  renderGrid();
  const cell = $("grid").children[selected];
  if (!cell) return;
  const active = document.activeElement;
  // keep the keyboard on the grid (not on a button just clicked: Enter would press it again)
  if (focus || !active || active === document.body || active.closest("#grid")
      || active.tagName === "BUTTON") {
    cell.focus({ preventScroll: true });
  }
  cell.scrollIntoView({ block: "nearest", inline: "nearest" });
}

function columns() {
  const cells = $("grid").children;
  if (!cells.length) return 1;
  const top = cells[0].offsetTop;
  let n = 0;
  while (n < cells.length && cells[n].offsetTop === top) n++;
  return Math.max(n, 1);
}

function move(delta) {
  if (!state || !state.batch.length) return;
  const n = state.batch.length;
  let i = selected + delta;
  if (Math.abs(delta) === 1) i = (i + n) % n;  // left / right wrap around
  else if (i < 0 || i >= n) return;            // up / down stop at the edges
  batchDone = false;
  select(i, true);
}

// ------------------------------------------------------------------------------ actions
function answerSelected(className) {
  if (!state || !state.batch.length) return;
  if (batchDone) {  // the batch is answered: a key press must not relabel its last image
    $("batch-done").hidden = false;
    $("batch-done").classList.remove("flash");
    void $("batch-done").offsetWidth;
    $("batch-done").classList.add("flash");
    return;
  }
  const item = state.batch[selected];
  const viewMs = Math.round(performance.now() - shownAt);
  outbox.push({
    client_id: newClientId(), image_id: item.image_id, annotator: annotator(), at: Date.now(),
    skip: className === null, label: className,
    view_ms: Number.isFinite(viewMs) ? Math.min(Math.max(viewMs, 0), MAX_VIEW_MS) : null,
  });
  saveOutbox();
  const next = firstUnanswered(selected);
  if (next < 0) { batchDone = true; select(selected, false); } else select(next, false);
  renderConnection();
  kick();
}

function acceptGuess() {
  const item = state && state.batch[selected];
  if (!item) return;
  if (item.guess === null || item.guess === undefined) {
    showError("There is no model's guess yet: train and query once first.");
    return;
  }
  answerSelected(item.guess);
}

function undo() {
  if (!state) return;
  // an answer not sent yet is taken back here; one on its way is undone on the server after it
  const last = outbox[outbox.length - 1];
  if (last && last !== sending) {
    outbox.pop();
    saveOutbox();
    batchDone = false;
    const i = state.batch.findIndex((it) => it.image_id === last.image_id);
    if (i >= 0) select(i, false);
    render();
    return;
  }
  if (!online) {
    showError("Offline: an answer the server has stored can be undone once it is back.");
    return;
  }
  const op = async () => {
    const result = await api("POST", "/api/undo", { annotator: annotator() });
    if (result.image_id !== null) {
      const fresh = await api("GET", "/api/state");
      await myItems(fresh);
      applyState(fresh);
      const i = state.batch.findIndex((it) => it.image_id === result.image_id);
      if (i >= 0) { batchDone = false; select(i, false); renderGrid(); }
    }
  };
  op.onOffline = () => showError("The server did not answer the undo; once it is back the page "
    + "shows whether it was done.");
  ops.push(op);
  kick();
}

function train() {
  if (!online) { showError("Offline: training can start once the server is back."); return; }
  const strategy = $("strategy").value;
  const costAware = $("cost-aware").checked;
  // after the outbox: the round sees every answer given so far
  const op = async () => {
    await api("POST", "/api/train", { strategy, cost_aware: costAware });
  };
  op.onOffline = () => showError("The server did not answer; once it is back the page shows "
    + "whether the round started.");
  ops.push(op);
  kick();
}

// ------------------------------------------------------------------------------ overlays
function openOverlay(id) {
  closeOverlays();
  $(id).hidden = false;
  const focusable = $(id).querySelector("button") || $(id);
  if (focusable === $(id)) $(id).tabIndex = -1;
  focusable.focus();
}

function closeOverlays() {
  const open = !$("zoom").hidden || !$("help-sheet").hidden;
  $("zoom").hidden = true;
  $("help-sheet").hidden = true;
  if (open) select(selected, true);
}

function fillHelp() {
  const rows = [];
  for (const c of state ? state.classes : []) {
    if (c.key !== null) rows.push([c.key, "label the selected image " + c.name]);
  }
  rows.push([keys.guess, "accept the model's guess"], ["Space", "skip the selected image"],
    ["Backspace", "undo your latest answer"],
    ["\u2190 \u2192 \u2191 \u2193", "move in the grid"], ["Home / End", "first / last image"],
    ["Tab", "move between the controls"], [keys.zoom, "zoom the selected image"],
    [keys.train, "train and query the next batch"], ["?", "this sheet"], ["Esc", "close"]);
  const body = $("help-keys").tBodies[0];
  body.replaceChildren();
  for (const [key, what] of rows) {
    const tr = document.createElement("tr");
    const k = document.createElement("td");
    const kbd = document.createElement("kbd");
    kbd.textContent = key;
    k.append(kbd);
    const w = document.createElement("td");
    w.textContent = what;
    tr.append(k, w);
    body.append(tr);
  }
}

// ------------------------------------------------------------------------------ keys
function pickKeys() {
  // the shortcut keys give way to the class keys
  const taken = new Set((state ? state.classes : []).map((c) => c.key).filter((k) => k));
  const pick = (options) => options.find((k) => !taken.has(k)) || null;
  keys = { guess: pick(["g", ".", ","]), zoom: pick(["z", "/", ";"]),
           train: pick(["t", "=", "'"]) };
  $("guess-key").textContent = keys.guess || "";
  $("train-key").textContent = keys.train || "";
  $("zoom-key").textContent = keys.zoom || "";
}

function onKey(event) {
  const target = event.target;
  const tag = target && target.tagName;
  if (event.key === "Escape") { closeOverlays(); return; }
  if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") return;
  if (event.ctrlKey || event.metaKey || event.altKey || !state) return;
  if (!$("help-sheet").hidden || !$("zoom").hidden) {
    if (event.key === "?" || event.key === keys.zoom) { closeOverlays(); event.preventDefault(); }
    return;
  }
  // Enter and Space on a focused button press it (the browser does); nothing more here
  if (tag === "BUTTON" && (event.key === "Enter" || event.key === " ")) return;
  if (event.key === "Enter") { event.preventDefault(); return; }  // never an answer
  const cls = state.classes.find((c) => c.key !== null && c.key === event.key);
  if (cls) { answerSelected(cls.name); event.preventDefault(); return; }
  switch (event.key) {
    case " ": answerSelected(null); break;
    case "Backspace": undo(); break;
    case "ArrowRight": move(1); break;
    case "ArrowLeft": move(-1); break;
    case "ArrowDown": move(columns()); break;
    case "ArrowUp": move(-columns()); break;
    case "Home": batchDone = false; select(0, true); break;
    case "End": batchDone = false; select(state.batch.length - 1, true); break;
    case "?": fillHelp(); openOverlay("help-sheet"); break;
    default:
      if (event.key === keys.guess) acceptGuess();
      else if (event.key === keys.zoom) openOverlay("zoom");
      else if (event.key === keys.train) train();
      else return;
  }
  event.preventDefault();
}

function afterClick(event) {
  // a mouse click leaves the keyboard on the grid, so that Enter does not press the button again
  if (event.detail > 0) {
    const cell = $("grid").children[selected];
    if (cell) cell.focus({ preventScroll: true });
  }
}

function init() {
  const saved = window.localStorage && localStorage.getItem("skal-annotator");
  if (saved) $("annotator").value = saved;
  $("annotator").addEventListener("change", () => {
    if (window.localStorage) localStorage.setItem("skal-annotator", annotator());
    // answers the server refused for their name (never stored) go again under the new one
    for (const e of outbox) if (e.blocked) { e.annotator = annotator(); delete e.blocked; }
    saveOutbox();
    kick();
  });
  loadOutbox();
  for (const button of document.querySelectorAll(".class-button")) {
    button.addEventListener("click", (e) => { answerSelected(button.dataset.class); afterClick(e); });
  }
  $("guess-button").addEventListener("click", (e) => { acceptGuess(); afterClick(e); });
  $("skip-button").addEventListener("click", (e) => { answerSelected(null); afterClick(e); });
  $("undo-button").addEventListener("click", (e) => { undo(); afterClick(e); });
  $("train-button").addEventListener("click", (e) => { train(); afterClick(e); });
  $("done-train-button").addEventListener("click", (e) => { train(); afterClick(e); });
  $("retry-button").addEventListener("click", () => { retryAt = 0; kick(); });
  $("help-button").addEventListener("click", () => { fillHelp(); openOverlay("help-sheet"); });
  $("help-close").addEventListener("click", closeOverlays);
  $("preview-zoom").addEventListener("click", () => openOverlay("zoom"));
  $("zoom").addEventListener("click", closeOverlays);
  $("error-close").addEventListener("click", hideError);
  document.addEventListener("keydown", onKey);
  window.addEventListener("online", () => { retryAt = 0; kick(); });
  tick();
}

document.addEventListener("DOMContentLoaded", init);
