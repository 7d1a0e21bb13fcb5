// vaelab explore: the page. Every decode is asked of the Python process that serves this file;
// the page only composes codes, draws, and keeps at most one request per view in flight.
"use strict";

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
  "#bcbd22", "#17becf"];
const MAP_PX = 300;
const STRIP_EVERY = 8;  // one frame of the strip per 8 of the 64 path segments
const S = { data: null, models: [], u: 0, v: 0, a: 0, b: 1, pick: 0, paths: {}, centre: null };
window.vaelabExplorer = S;  // for the browser tests and the curious

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  kids.forEach((k) => e.append(k));
  return e;
};
const dot = (x, y) => x.reduce((s, xi, i) => s + xi * y[i], 0);

function status(message) { $("status").textContent = message || ""; }

async function api(path, body) {
  const options = body === undefined ? {} :
    { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(path, options);
  const document_ = await response.json();
  if (!response.ok) throw new Error(document_.error || `HTTP ${response.status}`);
  return document_;
}

// ------------------------------------------------------------------ latent geometry
function axes(m) {
  const k = m.latent_dim;
  if ($("projection").value === "pca") return m.pca_axes;
  const unit = (i) => Array.from({ length: k }, (_, j) => (j === i ? 1 : 0));
  const i = Math.min(Math.max(0, +$("dim-i").value || 0), k - 1);
  const j = Math.min(Math.max(0, +$("dim-j").value || 0), k - 1);
  return [unit(i), k > 1 && j !== i ? unit(j) : new Array(k).fill(0)];
}

function heldCode(m) { return $("hold").value === "a" ? m.codes[S.a] : m.prior_mean; }

// The full code of map point (u, v): the held code's part off the map plane, plus u, v along its axes.
function codeAt(m, u, v) {
  const [e1, e2] = axes(m), held = heldCode(m);
  const h1 = dot(held, e1), h2 = dot(held, e2);
  return held.map((h, i) => h - h1 * e1[i] - h2 * e2[i] + u * e1[i] + v * e2[i]);
}

function project(m) {
  const [e1, e2] = axes(m);
  return m.codes.map((z) => [dot(z, e1), dot(z, e2)]);
}

// The prior's covariance in the map plane, (2, 2), and its mean there.
function priorOnMap(m) {
  const A = axes(m), c = m.prior_cov;
  const C = A.map((p) => A.map((q) => dot(p, c.map((row) => dot(row, q)))));
  return { mean: A.map((p) => dot(p, m.prior_mean)), C };
}

// Half-width of each map in latent units: the prior's 3.3 sigma or the 99th percentile of the
// points, whichever is larger; with "same scale" ticked, the widest of them on every map.
function setExtent() {
  for (const m of S.models) {
    const { C } = priorOnMap(m);
    let e = Math.max(3.5, 3.3 * Math.sqrt(Math.max(C[0][0], C[1][1])));
    const r = project(m).map(([x, y]) => Math.max(Math.abs(x), Math.abs(y))).sort((p, q) => p - q);
    if (r.length) e = Math.max(e, r[Math.floor(0.99 * (r.length - 1))]);
    m.extent = 1.08 * e;
  }
  if ($("same-scale").checked) {
    const widest = Math.max(...S.models.map((m) => m.extent));
    S.models.forEach((m) => { m.extent = widest; });
  }
}

const toPx = (m, u) => ((u + m.extent) / (2 * m.extent)) * MAP_PX;
const fromPx = (m, x) => (x / MAP_PX) * 2 * m.extent - m.extent;

// ------------------------------------------------------------------ drawing
function labelColour(i) {
  const labels = S.data.labels;
  if (!labels) return "#555";
  return PALETTE[S.labelIndex.get(labels[i]) % PALETTE.length];
}

function drawBackground(m) {
  const canvas = document.createElement("canvas");
  const ratio = window.devicePixelRatio || 1;
  canvas.width = canvas.height = MAP_PX * ratio;
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  g.fillStyle = "#fff"; g.fillRect(0, 0, MAP_PX, MAP_PX);
  g.strokeStyle = "#eee"; g.beginPath();
  g.moveTo(toPx(m, 0), 0); g.lineTo(toPx(m, 0), MAP_PX); g.moveTo(0, MAP_PX - toPx(m, 0)); g.lineTo(MAP_PX, MAP_PX - toPx(m, 0));
  g.stroke();
  const points = project(m);
  g.globalAlpha = 0.75;
  points.forEach(([x, y], i) => {
    g.fillStyle = labelColour(i); g.beginPath(); g.arc(toPx(m, x), MAP_PX - toPx(m, y), 2.2, 0, 2 * Math.PI); g.fill();
  });
  g.globalAlpha = 1;
  const { mean, C } = priorOnMap(m);  // ellipses of Mahalanobis radius 1, 2, 3 from the 2x2 eigenpairs
  const tr = C[0][0] + C[1][1], det = C[0][0] * C[1][1] - C[0][1] * C[1][0];
  const l1 = tr / 2 + Math.sqrt(Math.max(0, tr * tr / 4 - det)), l2 = Math.max(0, tr - l1);
  const angle = 0.5 * Math.atan2(2 * C[0][1], C[0][0] - C[1][1]);
  const scale = MAP_PX / (2 * m.extent);
  g.strokeStyle = "#333"; g.setLineDash([4, 3]);
  for (const r of [1, 2, 3]) {
    g.beginPath();
    g.ellipse(toPx(m, mean[0]), MAP_PX - toPx(m, mean[1]), r * Math.sqrt(l1) * scale, r * Math.sqrt(l2) * scale, -angle, 0,
      2 * Math.PI);
    g.stroke();
  }
  m.background = canvas; m.points = points;
}

function drawMap(m) {
  const g = m.map.getContext("2d"), ratio = m.map.width / MAP_PX;
  g.setTransform(1, 0, 0, 1, 0, 0);
  g.drawImage(m.background, 0, 0);
  g.scale(ratio, ratio);
  const pa = m.points[S.a], pb = m.points[S.b];
  g.strokeStyle = "#000"; g.lineWidth = 1.5; g.setLineDash([]);
  g.beginPath(); g.moveTo(toPx(m, pa[0]), MAP_PX - toPx(m, pa[1])); g.lineTo(toPx(m, pb[0]), MAP_PX - toPx(m, pb[1])); g.stroke();
  for (const [p, name] of [[pa, "A"], [pb, "B"]]) {
    g.beginPath(); g.arc(toPx(m, p[0]), MAP_PX - toPx(m, p[1]), 6, 0, 2 * Math.PI); g.stroke();
    g.fillStyle = "#000"; g.fillText(name, toPx(m, p[0]) + 8, MAP_PX - toPx(m, p[1]) - 6);
  }
  const x = toPx(m, S.u), y = MAP_PX - toPx(m, S.v);
  g.strokeStyle = "#d62728"; g.beginPath();
  g.moveTo(x - 9, y); g.lineTo(x + 9, y); g.moveTo(x, y - 9); g.lineTo(x, y + 9); g.stroke();
}

// One sample's values (raw units, flattened) as an image on `canvas` at its native size.
function drawImage(canvas, values) {
  const shape = S.data.sample_shape, [lo, hi] = S.data.display_range;
  const [C, H, W] = shape.length === 3 ? shape : [1, shape[0], shape[1]];
  canvas.width = W; canvas.height = H;
  const g = canvas.getContext("2d"), image = g.createImageData(W, H), n = H * W;
  const grey = (v) => 255 * Math.min(1, Math.max(0, (v - lo) / (hi - lo)));
  for (let p = 0; p < n; p++) {
    const r = grey(values[p]), gr = C === 3 ? grey(values[n + p]) : r, b = C === 3 ? grey(values[2 * n + p]) : r;
    image.data.set([r, gr, b, 255], 4 * p);
  }
  g.putImageData(image, 0, 0);
}

// A table row's decoded values beside the test data's range of each feature.
function drawFeatures(box, values) {
  const { feature_min: lo, feature_max: hi } = S.data;
  box.replaceChildren(...values.slice(0, 40).map((v, i) => {
    const span = hi[i] - lo[i] || 1, pct = ((v - lo[i]) / span) * 100;
    const mark = el("div", { class: pct < 0 || pct > 100 ? "mark outside" : "mark" });
    mark.style.left = `${Math.min(100, Math.max(0, pct))}%`;
    return el("div", { class: "feat", title: `range ${lo[i].toPrecision(3)} to ${hi[i].toPrecision(3)}` },
      el("span", { text: `x${i}` }), el("div", { class: "track" }, mark), el("span", { text: v.toPrecision(3) }));
  }));
  if (values.length > 40) box.append(el("div", { text: `... and ${values.length - 40} more features` }));
}

function newView(small) {
  if (S.data.kind === "image") return el("canvas", { class: small ? `image ${small}` : "image" });
  return el("div", { class: "features" });
}

function show(view, values) {
  if (view.tagName === "CANVAS") drawImage(view, values); else drawFeatures(view, values);
}

// ------------------------------------------------------------------ decoding, at most one request per view in flight
const inflight = new Map(), pending = new Map();

function label(m) {
  if (!m.classes) return undefined;
  const chosen = $("label").value;
  return m.classes.find((c) => String(c) === chosen) ?? m.classes[0];
}

function decodeInto(view, m, code) {
  pending.set(view, { m, code });
  view.dataset.busy = "1";
  if (!inflight.get(view)) pump(view);
}

async function pump(view) {
  const { m, code } = pending.get(view);
  pending.delete(view);
  inflight.set(view, true);
  try {
    const chosen = label(m);
    const answer = await api("/api/decode", { model: m.name, codes: [code], label: chosen });
    show(view, answer.values[0]);
    view.dataset.code = JSON.stringify(code);
    view.dataset.label = chosen === undefined ? "" : String(chosen);
    view.dataset.model = m.name;
  } catch (error) { status(`${m.name}: ${error.message}`); }
  inflight.set(view, false);
  if (pending.has(view)) pump(view); else view.dataset.busy = "0";
}

function decodePointer() {
  for (const m of S.models) {
    decodeInto(m.decoded, m, codeAt(m, S.u, S.v));
    m.coords.textContent = `map (${S.u.toFixed(2)}, ${S.v.toFixed(2)})`;
  }
}

// ------------------------------------------------------------------ the sections
function buildMaps() {
  const box = $("maps");
  for (const m of S.models) {
    m.map = el("canvas", { class: "map", "data-model": m.name });
    m.map.width = m.map.height = MAP_PX * (window.devicePixelRatio || 1);
    m.decoded = newView();
    m.decoded.classList.add("decoded");
    m.decoded.dataset.model = m.name;
    m.coords = el("div", { class: "coords" });
    const title = `${m.name} (${m.kind}, ${m.latent_dim}-D${m.classes ? ", conditional" : ""})`;
    box.append(el("div", { class: "panel", "data-model": m.name }, el("h3", { text: title }),
      el("div", { class: "body" }, m.map, el("div", {}, m.decoded, m.coords))));
    m.map.addEventListener("mousemove", (event) => {
      const [x, y] = mapPoint(m, event);
      S.u = fromPx(m, x); S.v = fromPx(m, MAP_PX - y);
      S.models.forEach(drawMap);
      decodePointer();
    });
    m.map.addEventListener("click", (event) => pickNear(m, event));
  }
  if (S.data.labels) {
    const legend = el("div", { class: "legend" });
    for (const [value, i] of S.labelIndex) {
      const swatch = el("i"); swatch.style.background = PALETTE[i % PALETTE.length];
      legend.append(el("span", {}, swatch, String(value)));
    }
    box.append(legend);
  }
}

// The pointer in map pixels, measured inside the canvas's border.
function mapPoint(m, event) {
  const r = m.map.getBoundingClientRect();
  return [((event.clientX - r.left - m.map.clientLeft) / m.map.clientWidth) * MAP_PX,
    ((event.clientY - r.top - m.map.clientTop) / m.map.clientHeight) * MAP_PX];
}

function pickNear(m, event) {
  const [x, y] = mapPoint(m, event);
  let best = -1, bestD = 100;  // within 10 px
  m.points.forEach(([u, v], i) => {
    const d = (toPx(m, u) - x) ** 2 + (MAP_PX - toPx(m, v) - y) ** 2;
    if (d < bestD) { best = i; bestD = d; }
  });
  if (best < 0) return;
  $(S.pick === 0 ? "a" : "b").value = best;
  S.pick = 1 - S.pick;
  endsChanged();
}

function redrawMaps() { setExtent(); S.models.forEach((m) => { drawBackground(m); drawMap(m); }); decodePointer(); }

async function endsChanged() {
  const n = S.data.n_points - 1, clamp = (v) => Math.min(n, Math.max(0, Math.round(+v) || 0));
  S.a = clamp($("a").value); S.b = clamp($("b").value);
  $("a").value = S.a; $("b").value = S.b;
  if ($("hold").value === "a") redrawMaps(); else S.models.forEach(drawMap);
  await loadPaths();
}

function buildInterpolations() {
  const box = $("interpolations");
  for (const m of S.models) {
    m.frame = newView(); m.frame.classList.add("interp-frame"); m.frame.dataset.model = m.name;
    m.strip = el("div", { class: "strip" });
    m.ratio = el("div", { class: "caption" });
    box.append(el("div", { class: "interp-row", "data-model": m.name },
      el("div", { class: "name" }, el("strong", { text: m.name }), m.ratio), m.frame, m.strip));
  }
}

async function loadPaths() {
  const mode = $("mode").value, generation = (S.pathGeneration = (S.pathGeneration || 0) + 1);
  await Promise.all(S.models.map(async (m) => {
    m.frame.dataset.ready = "0";
    try {
      const path = await api("/api/interpolate", { model: m.name, a: S.a, b: S.b, mode, label: label(m) });
      if (generation !== S.pathGeneration) return;  // a newer choice of ends is on its way: drop this one
      S.paths[m.name] = path;
      m.frame.dataset.ends = `${S.a},${S.b}`;
      const ratio = path.ratio === null ? "undefined (the decoded ends coincide)" : path.ratio.toFixed(3);
      m.ratio.textContent = `path-length ratio ${ratio} (${mode}, ${path.values.length - 1} segments)`;
      m.strip.replaceChildren(...path.values.filter((_, i) => i % STRIP_EVERY === 0).map((values) => {
        const view = newView("small"); show(view, values); return view;
      }));
      if (S.data.kind === "image" && m === S.models[0]) {
        drawImage($("orig-a"), path.ends[0]); drawImage($("orig-b"), path.ends[1]);
      }
      showFrame(m);
    } catch (error) { status(`${m.name}: ${error.message}`); }
  }));
}

function showFrame(m) {
  const path = S.paths[m.name], t = +$("t").value;
  if (!path) return;
  show(m.frame, path.values[t]);
  m.frame.dataset.t = String(t); m.frame.dataset.code = JSON.stringify(path.codes[t]); m.frame.dataset.ready = "1";
}

function traverseModel() { return S.models.find((m) => m.name === $("traverse-model").value) || S.models[0]; }

function buildTraversal() {
  const m = traverseModel(), box = $("traverse-sliders");
  S.centre = m.codes[S.a].slice();
  const sd = m.prior_cov.map((row, i) => Math.sqrt(row[i]));
  box.replaceChildren();
  S.centre.forEach((c, i) => {
    const values = m.codes.map((z) => z[i]);
    const lo = Math.min(c - 3 * sd[i], ...values), hi = Math.max(c + 3 * sd[i], ...values);
    const slider = el("input", { type: "range", min: lo, max: hi, step: (hi - lo) / 200, "data-dim": i });
    slider.value = c;
    const out = el("output", { text: c.toFixed(2) });
    slider.addEventListener("input", () => {
      S.centre[i] = +slider.value; out.textContent = S.centre[i].toFixed(2); decodeInto(S.traverseView, m, S.centre.slice());
    });
    box.append(el("label", {}, el("span", { text: `z${i}` }), slider, out));
  });
  S.traverseView = newView(); S.traverseView.id = "traverse-view";
  $("traverse-out").replaceChildren(S.traverseView);
  decodeInto(S.traverseView, m, S.centre.slice());
}

async function drawSamples(sampler) {
  const seed = Math.max(0, Math.round(+$("seed").value) || 0), generation = (S.sampleGeneration = (S.sampleGeneration || 0) + 1);
  $("seed").value = seed;
  const panels = await Promise.all(S.models.map(async (m) => {
    try {
      const answer = await api("/api/samples", { model: m.name, sampler, seed, n: 16, label: label(m) });
      const grid = el("div", { class: "grid" }, ...answer.values.map((values) => {
        const view = newView("tiny"); show(view, values); return view;
      }));
      return el("div", { class: "panel", "data-model": m.name }, el("h3", { text: m.name }), grid);
    } catch (error) { status(`${m.name}: ${error.message}`); return el("div"); }
  }));
  if (generation !== S.sampleGeneration) return;  // a later click's samples win
  $("samples").replaceChildren(...panels);
  $("sample-caption").textContent = `${sampler === "gmm" ? "GMM-sampler" : "prior"} samples, seed ${seed}`;
}

async function main() {
  const state = await api("/api/state");
  S.data = state.data; S.models = state.models;
  $("data-name").textContent = `${S.data.name}, ${S.data.n_points} test points`;
  S.labelIndex = new Map([...new Set(S.data.labels || [])].sort((p, q) => (p < q ? -1 : p > q)).map((v, i) => [v, i]));
  const conditional = S.models.find((m) => m.classes);
  if (conditional) {
    $("label-control").hidden = false;
    $("label").replaceChildren(...conditional.classes.map((c) => el("option", { value: String(c), text: String(c) })));
  }
  for (const input of ["a", "b"]) $(input).max = S.data.n_points - 1;
  $("t").max = state.limits.path_steps;
  $("b").value = S.b = Math.min(1, S.data.n_points - 1);
  $("traverse-model").replaceChildren(...S.models.map((m) => el("option", { value: m.name, text: m.name })));
  buildMaps(); buildInterpolations();
  redrawMaps(); buildTraversal();
  ["projection", "dim-i", "dim-j", "hold", "same-scale"].forEach((id) => $(id).addEventListener("change", redrawMaps));
  ["a", "b"].forEach((id) => $(id).addEventListener("change", endsChanged));
  $("mode").addEventListener("change", loadPaths);
  $("label").addEventListener("change", () => { decodePointer(); loadPaths(); buildTraversal(); });
  $("t").addEventListener("input", () => {
    $("t-value").textContent = (+$("t").value / +$("t").max).toFixed(2); S.models.forEach(showFrame);
  });
  $("traverse-model").addEventListener("change", buildTraversal);
  $("traverse-reset").addEventListener("click", buildTraversal);
  $("sample-prior").addEventListener("click", () => drawSamples("prior"));
  $("sample-gmm").addEventListener("click", () => drawSamples("gmm"));
  await loadPaths();
  document.body.dataset.ready = "1";
}

main().catch((error) => status(`could not load the explorer: ${error.message}`));
