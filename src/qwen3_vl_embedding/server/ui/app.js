// qvl search page. Plain JavaScript, no build step, no third-party code; it uses the server's HTTP API only:
// POST /v1/search, GET /v1/index, GET /v1/records/{id} and the file / thumbnail links that come with results.
// Everything that comes from the index (file names, folders, text chunks) is set as text, never parsed as HTML.
"use strict";

const PAGE = 48; // results fetched per page
const MAX_K = 480; // the furthest paging goes (the server's --max-items is 512 by default)
const TYPING_PAUSE_MS = 300;
const IMAGE_EDGE = 1024; // an uploaded query image is sent at most this large (the model resizes anyway)
const KEY_STORE = "qvl-api-key";
const LABELS = { image: ["photo", "photos"], pdf: ["PDF page", "PDF pages"], video: ["video clip", "video clips"],
  text: ["text passage", "text passages"] };

const $ = (id) => document.getElementById(id);
const els = {};
const state = {
  text: "", image: null, like: null, // the query: words, an uploaded image ({dataUri, preview}), a record ({id, name, thumb})
  modality: "", folder: "", after: "", before: "", minScore: 0, rerank: false,
  results: [], k: PAGE, done: true, loading: false, seq: 0, controller: null, index: null, open: -1,
};

// ---------------------------------------------------------------------------------------------- API
class ApiError extends Error {
  constructor(status, message, code) { super(message); this.status = status; this.code = code; }
}

const needsKey = () => document.querySelector('meta[name="qvl-auth"]')?.content === "key";

async function api(path, { method = "GET", json, signal } = {}) {
  const headers = {};
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) headers.Authorization = "Bearer " + key;
  if (json !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, signal, body: json === undefined ? undefined : JSON.stringify(json) });
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  if (response.status === 401 && needsKey()) {
    sessionStorage.removeItem(KEY_STORE);
    await askForKey(true);
    return api(path, { method, json, signal });
  }
  if (!response.ok) {
    const error = body && body.error ? body.error : {};
    throw new ApiError(response.status, error.message || `the server answered ${response.status}`, error.code);
  }
  return body;
}

let keyPrompt = null;
function askForKey(refused) {
  if (keyPrompt) return keyPrompt;
  keyPrompt = new Promise((resolve) => {
    els.keyError.hidden = !refused;
    els.keyInput.value = "";
    const submit = async (event) => {
      event.preventDefault();
      const key = els.keyInput.value.trim();
      if (!key) return;
      const check = await fetch("/v1/index", { headers: { Authorization: "Bearer " + key } }).catch(() => null);
      if (check && check.status === 401) { els.keyError.hidden = false; els.keyInput.select(); return; }
      sessionStorage.setItem(KEY_STORE, key);
      els.keyForm.removeEventListener("submit", submit);
      els.keyDialog.close();
      keyPrompt = null;
      resolve();
    };
    els.keyForm.addEventListener("submit", submit);
    els.keyDialog.addEventListener("cancel", (event) => event.preventDefault()); // nothing works without it
    els.keyDialog.showModal();
    els.keyInput.focus();
  });
  return keyPrompt;
}

// ---------------------------------------------------------------------------------------------- helpers
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
const sep = (path) => Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
const baseName = (path) => path.slice(sep(path) + 1);
const folderOf = (path) => path.slice(0, Math.max(sep(path), 0)) || "/";
const plural = (n, [one, many]) => `${n.toLocaleString()} ${n === 1 ? one : many}`;

function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${r}` : `${m}:${r}`;
}

function where(r) {
  if (r.modality === "pdf" && r.page != null) return `Page ${r.page}`;
  if (r.modality === "video" && r.start != null) return `${clock(r.start)}–${clock(r.end ?? r.start)}`;
  if (r.modality === "text") return "Text";
  return "";
}

function formatDate(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d) ? "" : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function localDay(value, days = 0) { // "2024-07-01" -> seconds since the epoch at local midnight (+ days)
  const [y, m, d] = value.split("-").map(Number);
  return new Date(y, m - 1, d + days).getTime() / 1000;
}

// Text with the query's words marked: built from text nodes and <mark> elements, never from HTML.
function highlighted(node, text, query) {
  node.replaceChildren();
  const words = (query || "").toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((w) => w.length > 2);
  if (!words.length) { node.textContent = text; return node; }
  const lower = text.toLowerCase();
  let at = 0;
  while (at < text.length) {
    let best = -1, len = 0;
    for (const w of words) {
      const i = lower.indexOf(w, at);
      if (i >= 0 && (best < 0 || i < best)) { best = i; len = w.length; }
    }
    if (best < 0) break;
    node.append(text.slice(at, best), el("mark", "", text.slice(best, best + len)));
    at = best + len;
  }
  node.append(text.slice(at));
  return node;
}

// ---------------------------------------------------------------------------------------------- URL
function writeUrl(push) {
  const p = new URLSearchParams();
  if (state.like) p.set("like", state.like.id);
  else if (state.text) p.set("q", state.text);
  if (state.modality) p.set("type", state.modality);
  if (state.folder) p.set("folder", state.folder);
  if (state.after) p.set("from", state.after);
  if (state.before) p.set("to", state.before);
  if (state.minScore > 0) p.set("min", state.minScore.toFixed(2));
  if (state.rerank) p.set("rerank", "1");
  if (state.open >= 0 && state.results[state.open]) p.set("open", state.results[state.open].id_str);
  const url = p.toString() ? "?" + p.toString() : location.pathname;
  if (url === location.search || (url === location.pathname && !location.search)) return;
  history[push ? "pushState" : "replaceState"](null, "", url);
}

function readUrl() {
  const p = new URLSearchParams(location.search);
  const like = p.get("like");
  state.like = like && /^\d+$/.test(like) ? { id: like, name: "", thumb: null } : null;
  state.text = state.like ? "" : (p.get("q") || "");
  state.image = null;
  state.modality = LABELS[p.get("type")] ? p.get("type") : "";
  state.folder = p.get("folder") || "";
  state.after = /^\d{4}-\d{2}-\d{2}$/.test(p.get("from") || "") ? p.get("from") : "";
  state.before = /^\d{4}-\d{2}-\d{2}$/.test(p.get("to") || "") ? p.get("to") : "";
  state.minScore = Math.min(1, Math.max(0, Number(p.get("min")) || 0));
  state.rerank = p.get("rerank") === "1";
  return p.get("open");
}

function showControls() {
  els.q.value = state.text;
  els.q.placeholder = state.image || state.like ? "Add words to refine…" : "Search photos, pages, clips and notes… or drop an image";
  for (const chip of els.chips) chip.setAttribute("aria-pressed", String(chip.dataset.modality === state.modality));
  els.folder.value = state.folder;
  els.after.value = state.after;
  els.before.value = state.before;
  els.minScore.value = String(state.minScore);
  els.minScoreValue.textContent = state.minScore > 0 ? state.minScore.toFixed(2) : "off";
  els.rerank.checked = state.rerank;
  els.rerank.disabled = Boolean(state.like);
  els.clearFilters.hidden = !(state.modality || state.folder || state.after || state.before || state.minScore > 0);
  const chip = state.like || state.image;
  els.queryChip.hidden = !chip;
  if (state.like) {
    els.queryChipLabel.textContent = state.like.name ? `Like ${state.like.name}` : "More like this";
    if (state.like.thumb) els.queryChipImage.src = state.like.thumb; else els.queryChipImage.removeAttribute("src");
  } else if (state.image) {
    els.queryChipLabel.textContent = "Your image";
    els.queryChipImage.src = state.image.preview;
  }
}

// ---------------------------------------------------------------------------------------------- search
const hasQuery = () => Boolean(state.like || state.image || state.text.trim());

function searchBody(k) {
  const body = { k };
  if (state.like) body.like = state.like.id;
  else if (state.image) body.query = state.text.trim() ? { image: state.image.dataUri, text: state.text.trim() } : { image: state.image.dataUri };
  else body.query = state.text.trim();
  const filters = {};
  if (state.modality) filters.modality = [state.modality];
  if (state.folder.trim()) filters.folder = state.folder.trim();
  if (state.after) filters.after = localDay(state.after);
  if (state.before) filters.before = localDay(state.before, 1); // "to" includes that day
  if (state.minScore > 0) filters.min_score = state.minScore;
  if (Object.keys(filters).length) body.filters = filters;
  if (state.rerank && !state.like && state.index && state.index.rerank) {
    body.rerank = true;
    body.rerank_top = Math.max(50, k);
  }
  return body;
}

async function search({ append = false } = {}) {
  if (!hasQuery()) {
    state.controller?.abort();
    state.seq += 1;
    state.loading = false;
    els.progress.hidden = true;
    state.results = [];
    state.done = true;
    renderResults([], false);
    showWelcome(true);
    return;
  }
  showWelcome(false);
  const seq = ++state.seq;
  state.controller?.abort();
  const controller = (state.controller = new AbortController());
  const k = append ? Math.min(state.k + PAGE, MAX_K) : PAGE;
  if (!append) { state.results = []; showSkeletons(); }
  state.loading = true;
  els.progress.hidden = false;
  els.error.hidden = true;
  const started = performance.now();
  try {
    const body = await api("/v1/search", { method: "POST", json: searchBody(k), signal: controller.signal });
    if (seq !== state.seq) return;
    const known = new Set(state.results.map((r) => r.id_str));
    const fresh = body.results.filter((r) => !known.has(r.id_str));
    state.results.push(...fresh);
    state.k = k;
    state.done = body.results.length < k || k >= MAX_K;
    renderResults(fresh, append);
    showStatus((performance.now() - started) / 1000, body.not_reranked || []);
  } catch (error) {
    if (error.name === "AbortError" || seq !== state.seq) return;
    if (!append) renderResults([], false);
    showError(error.message);
    state.done = true;
  } finally {
    if (seq === state.seq) { state.loading = false; els.progress.hidden = true; els.moreButton.hidden = state.done; }
  }
}

let typingTimer = 0;
function searchSoon() {
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => { writeUrl(false); search(); }, TYPING_PAUSE_MS);
}

function searchNow() {
  clearTimeout(typingTimer);
  state.open = -1;
  showControls();
  writeUrl(true);
  search();
}

// ---------------------------------------------------------------------------------------------- rendering
function showWelcome(on) {
  els.welcome.hidden = !on;
  if (on) { els.status.textContent = ""; els.moreButton.hidden = true; }
}

function showError(message) {
  els.error.textContent = message;
  els.error.hidden = false;
  els.status.textContent = "";
}

function showSkeletons() {
  const cards = [];
  for (let i = 0; i < 12; i++) {
    const card = el("div", "card skeleton");
    const meta = el("div", "meta");
    meta.append(el("span"), el("span"));
    card.append(el("div", "thumb"), meta);
    cards.push(card);
  }
  els.grid.replaceChildren(...cards);
  els.status.textContent = "Searching…";
}

function card(r, position) {
  const node = els.cardTemplate.content.firstElementChild.cloneNode(true);
  node.dataset.modality = r.modality;
  node.dataset.id = r.id_str;
  const name = baseName(r.path);
  const open = node.querySelector(".card-open");
  open.setAttribute("aria-label", `Open ${name}${where(r) ? ", " + where(r) : ""}`);
  open.addEventListener("click", () => openDetails(position));
  const img = node.querySelector("img");
  if (r.thumbnail) {
    img.addEventListener("load", () => img.classList.add("loaded"));
    img.addEventListener("error", () => img.replaceWith(el("span", "thumb-missing", "No preview: the file may have moved")));
    img.src = r.thumbnail + "&size=small";
  } else {
    img.remove();
    highlighted(node.querySelector(".snippet"), r.text || "", state.like ? "" : state.text);
  }
  node.querySelector(".badge").textContent = r.modality === "text" ? "Text" : where(r);
  node.querySelector(".score").textContent = r.score.toFixed(3);
  node.querySelector(".score").title = r.similarity != null ? `reranker score; similarity ${r.similarity.toFixed(3)}` : "similarity";
  node.querySelector(".name").textContent = name;
  node.querySelector(".name").title = r.path;
  node.querySelector(".folder").textContent = "\u200e" + folderOf(r.path) + "\u200e";
  node.querySelector(".date").textContent = formatDate(r.date);
  node.querySelector(".card-similar").addEventListener("click", () => moreLike(r));
  return node;
}

function renderResults(fresh, append) {
  const offset = state.results.length - fresh.length;
  const cards = fresh.map((r, i) => card(r, offset + i));
  if (append) els.grid.append(...cards); else els.grid.replaceChildren(...cards);
}

function showStatus(seconds, notReranked) {
  const n = state.results.length;
  const what = state.like ? `like ${state.like.name || "this record"}` : state.image ? (state.text.trim() ? `for your image and “${state.text.trim()}”` : "for your image") : `for “${state.text.trim()}”`;
  els.status.replaceChildren();
  if (!n) {
    els.status.append(`No results ${what}`, state.modality || state.folder || state.after || state.before || state.minScore > 0 ? " with these filters." : ".");
    return;
  }
  const counts = {};
  for (const r of state.results) counts[r.modality] = (counts[r.modality] || 0) + 1;
  const parts = Object.entries(counts).map(([m, c]) => plural(c, LABELS[m] || [m, m]));
  els.status.append(el("strong", "", `${n.toLocaleString()}${state.done ? "" : "+"} results`), ` ${what} · ${parts.join(", ")} · ${seconds.toFixed(2)} s`);
  if (state.rerank && !state.like && state.index?.rerank) els.status.append(" · reranked");
  if (notReranked.length) els.status.append(` · ${notReranked.length} could not be reranked`);
}

function showIndex(info) {
  const counts = info.by_modality || {};
  $("count-all").textContent = info.records.toLocaleString();
  for (const span of document.querySelectorAll("[data-count]")) {
    span.textContent = (counts[span.dataset.count] || 0).toLocaleString();
  }
  const parts = Object.keys(LABELS).filter((m) => counts[m]).map((m) => plural(counts[m], LABELS[m]));
  els.welcomeTitle.textContent = info.records ? `Search ${info.records.toLocaleString()} items` : "This index is empty";
  els.welcomeCounts.textContent = info.records ? parts.join(" · ") : "Build it with qvl index FOLDER --db DIR, then reload.";
  els.folderList.replaceChildren(...info.folders.map((f) => { const o = el("option"); o.value = f.path; o.label = `${f.files} files`; return o; }));
  els.rerankSwitch.hidden = !info.rerank;
}

// ---------------------------------------------------------------------------------------------- details
function openDetails(position) {
  const r = state.results[position];
  if (!r) return;
  state.open = position;
  const media = els.detailsMedia;
  media.querySelector("video")?.pause();
  media.replaceChildren();
  media.className = "details-media" + (r.modality === "pdf" ? " is-pdf" : "");
  if (r.modality === "video") {
    const video = el("video");
    video.controls = true;
    video.preload = "metadata";
    video.poster = r.thumbnail + "&size=large";
    video.addEventListener("loadedmetadata", () => {
      if (Math.abs(video.currentTime - (r.start || 0)) > 0.25) video.currentTime = r.start || 0;
      video.play().catch(() => { /* autoplay refused: the controls remain */ });
    }, { once: true });
    video.src = `${r.file}#t=${r.start || 0}`;
    media.append(video);
  } else if (r.thumbnail) {
    const img = el("img");
    img.alt = baseName(r.path);
    img.src = r.thumbnail + "&size=small"; // shown at once (cached), then replaced by the large one
    const large = new Image();
    large.addEventListener("load", () => { img.src = large.src; });
    large.src = r.thumbnail + "&size=large";
    media.append(img);
  } else {
    media.append(highlighted(el("pre", "details-text"), r.text || "", state.like ? "" : state.text));
  }
  els.detailsName.textContent = baseName(r.path);
  els.detailsWhere.textContent = { image: "Photo", pdf: `PDF · ${where(r)}`, video: `Video clip · ${where(r)}`,
    text: "Text passage" }[r.modality] || r.modality;
  els.detailsPath.replaceChildren(...r.path.split(/(?<=[/\\])/).flatMap((part) => [part, el("wbr")])); // breaks after slashes
  els.detailsDate.textContent = formatDate(r.date) || "unknown";
  els.detailsScore.textContent = r.score.toFixed(3) + (r.similarity != null ? ` (similarity ${r.similarity.toFixed(3)})` : "");
  els.detailsOpen.href = r.file + (r.modality === "pdf" && r.page ? `#page=${r.page}` : "");
  els.detailsDownload.href = r.file + "&download=1";
  els.detailsDownload.setAttribute("download", baseName(r.path));
  els.detailsPrev.disabled = position <= 0;
  els.detailsNext.disabled = position >= state.results.length - 1;
  els.detailsCopy.textContent = "Copy path";
  if (!els.details.open) els.details.showModal();
  els.detailsSimilar.focus();
  writeUrl(false);
}

function closeDetails() {
  if (els.details.open) els.details.close();
}

function detailsClosed() {
  els.detailsMedia.querySelector("video")?.pause();
  els.detailsMedia.replaceChildren();
  const position = state.open;
  state.open = -1;
  writeUrl(false);
  const cards = els.grid.querySelectorAll(".card-open");
  cards[position]?.focus();
}

function moreLike(r) {
  closeDetails();
  state.like = { id: r.id_str, name: baseName(r.path), thumb: r.thumbnail ? r.thumbnail + "&size=small" : null };
  state.image = null;
  state.text = "";
  state.rerank = false;
  searchNow();
  window.scrollTo({ top: 0 });
}

async function describeLike() { // a bookmarked ?like=ID: name and picture for the query chip
  try {
    const r = await api(`/v1/records/${state.like.id}`);
    state.like.name = baseName(r.path);
    state.like.thumb = r.thumbnail ? r.thumbnail + "&size=small" : null;
    showControls();
  } catch { /* the search itself reports a missing record */ }
}

// ---------------------------------------------------------------------------------------------- image queries
async function useImage(file) {
  if (!file || !file.type.startsWith("image/")) { showError("That is not an image: drop or paste a photo or a picture."); return; }
  try {
    const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    const scale = Math.min(1, IMAGE_EDGE / Math.max(bitmap.width, bitmap.height));
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    const context = canvas.getContext("2d");
    context.fillStyle = "#fff"; // transparency over white, as the model sees it
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    bitmap.close();
    if (state.image) URL.revokeObjectURL(state.image.preview);
    state.image = { dataUri: canvas.toDataURL("image/jpeg", 0.9), preview: URL.createObjectURL(file) };
  } catch {
    showError("This browser cannot read that image; try a JPEG or PNG.");
    return;
  }
  state.like = null;
  state.text = "";
  searchNow();
}

function clearQuery() {
  if (state.image) URL.revokeObjectURL(state.image.preview);
  state.image = null;
  state.like = null;
  state.text = "";
  searchNow();
  els.q.focus();
}

// ---------------------------------------------------------------------------------------------- keyboard
function columns() {
  return Math.max(1, getComputedStyle(els.grid).gridTemplateColumns.split(" ").filter(Boolean).length);
}

function onKey(event) {
  if (els.keyDialog.open) return;
  if (els.details.open) {
    if (event.key === "ArrowLeft" && state.open > 0) { event.preventDefault(); openDetails(state.open - 1); }
    if (event.key === "ArrowRight" && state.open < state.results.length - 1) { event.preventDefault(); openDetails(state.open + 1); }
    return;
  }
  const target = event.target;
  const typing = target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement;
  if (event.key === "/" && !typing) { event.preventDefault(); els.q.focus(); els.q.select(); return; }
  const cards = [...els.grid.querySelectorAll(".card-open")];
  if (target === els.q && event.key === "ArrowDown" && cards.length) { event.preventDefault(); cards[0].focus(); return; }
  if (target === els.q && event.key === "Escape" && !els.q.value && (state.like || state.image)) { clearQuery(); return; }
  const at = cards.indexOf(target.closest?.(".card")?.querySelector(".card-open"));
  if (at < 0) return;
  const step = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -columns(), ArrowDown: columns() }[event.key];
  if (step === undefined) return;
  event.preventDefault();
  const next = at + step;
  if (next < 0) { els.q.focus(); return; }
  if (next >= cards.length && !state.done && !state.loading) search({ append: true });
  const to = cards[Math.min(next, cards.length - 1)];
  to.focus();
  to.scrollIntoView({ block: "nearest" });
}

// ---------------------------------------------------------------------------------------------- start
function bind() {
  for (const id of ["q", "grid", "status", "error", "welcome", "folder", "after", "before", "rerank", "details", "more",
    "keyDialog", "keyForm", "keyInput", "keyError", "queryChip", "queryChipImage", "queryChipLabel", "queryChipClear",
    "imageButton", "imageInput", "minScore", "minScoreValue", "clearFilters", "moreButton", "rerankSwitch", "welcomeTitle",
    "welcomeCounts", "folderList", "detailsMedia", "detailsName", "detailsWhere", "detailsPath", "detailsDate",
    "detailsScore", "detailsOpen", "detailsDownload", "detailsSimilar", "detailsCopy", "detailsPrev", "detailsNext",
    "detailsClose", "dropOverlay", "cardTemplate", "searchForm", "progress"]) {
    els[id] = $(id.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase()));
  }
  els.chips = [...document.querySelectorAll("#modality-chips .chip")];

  els.q.addEventListener("input", () => { state.text = els.q.value; state.open = -1; searchSoon(); });
  els.searchForm.addEventListener("submit", (event) => { event.preventDefault(); state.text = els.q.value; searchNow(); });
  els.queryChipClear.addEventListener("click", clearQuery);
  els.imageButton.addEventListener("click", () => els.imageInput.click());
  els.imageInput.addEventListener("change", () => { useImage(els.imageInput.files[0]); els.imageInput.value = ""; });
  for (const chip of els.chips) {
    chip.addEventListener("click", () => { state.modality = chip.dataset.modality; searchNow(); });
  }
  els.folder.addEventListener("change", () => { state.folder = els.folder.value.trim(); searchNow(); });
  els.after.addEventListener("change", () => { state.after = els.after.value; searchNow(); });
  els.before.addEventListener("change", () => { state.before = els.before.value; searchNow(); });
  els.minScore.addEventListener("input", () => {
    const v = Number(els.minScore.value);
    els.minScoreValue.textContent = v > 0 ? v.toFixed(2) : "off";
  });
  els.minScore.addEventListener("change", () => { state.minScore = Number(els.minScore.value); searchNow(); });
  els.rerank.addEventListener("change", () => { state.rerank = els.rerank.checked; searchNow(); });
  els.clearFilters.addEventListener("click", () => {
    Object.assign(state, { modality: "", folder: "", after: "", before: "", minScore: 0 });
    searchNow();
  });
  els.moreButton.addEventListener("click", () => search({ append: true }));
  new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && !state.done && !state.loading && state.results.length) search({ append: true });
  }, { rootMargin: "600px" }).observe(els.more);

  els.details.addEventListener("close", detailsClosed);
  els.details.addEventListener("click", (event) => { if (event.target === els.details) closeDetails(); }); // the backdrop
  els.detailsClose.addEventListener("click", closeDetails);
  els.detailsPrev.addEventListener("click", () => openDetails(state.open - 1));
  els.detailsNext.addEventListener("click", () => openDetails(state.open + 1));
  els.detailsSimilar.addEventListener("click", () => moreLike(state.results[state.open]));
  els.detailsCopy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(state.results[state.open].path);
      els.detailsCopy.textContent = "Copied";
    } catch {
      els.detailsCopy.textContent = "Select the path to copy it";
    }
  });

  document.addEventListener("keydown", onKey);
  document.addEventListener("paste", (event) => {
    const item = [...(event.clipboardData?.items || [])].find((i) => i.kind === "file" && i.type.startsWith("image/"));
    if (item) { event.preventDefault(); useImage(item.getAsFile()); }
  });
  let dragDepth = 0;
  const dragging = (event) => [...(event.dataTransfer?.types || [])].includes("Files");
  window.addEventListener("dragenter", (event) => { if (dragging(event)) { dragDepth += 1; els.dropOverlay.hidden = false; } });
  window.addEventListener("dragleave", () => { dragDepth = Math.max(0, dragDepth - 1); if (!dragDepth) els.dropOverlay.hidden = true; });
  window.addEventListener("dragover", (event) => { if (dragging(event)) event.preventDefault(); });
  window.addEventListener("drop", (event) => {
    if (!dragging(event)) return;
    event.preventDefault();
    dragDepth = 0;
    els.dropOverlay.hidden = true;
    useImage(event.dataTransfer.files[0]);
  });
  window.addEventListener("popstate", () => { closeDetails(); start(false); });
}

async function start(first) {
  const open = readUrl();
  showControls();
  if (state.like) describeLike();
  await search();
  if (open && first) {
    const position = state.results.findIndex((r) => r.id_str === open);
    if (position >= 0) openDetails(position);
  }
}

async function main() {
  bind();
  if (needsKey() && !sessionStorage.getItem(KEY_STORE)) await askForKey(false);
  try {
    state.index = await api("/v1/index");
    showIndex(state.index);
  } catch (error) {
    showError(error.code === "index_not_loaded" ? "This server has no index: start it with qvl serve --db DIR (or qvl ui --db DIR)." : error.message);
    return;
  }
  await start(true);
  document.body.dataset.ready = "1"; // for tests: the first search has been shown
}

main();
