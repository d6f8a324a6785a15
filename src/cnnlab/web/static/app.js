// cnnlab explore: the page over /api/... (plain DOM and SVG, no framework, nothing fetched from elsewhere).
"use strict";

const $ = (sel) => document.querySelector(sel);
const fmt = (n) => (n === null || n === undefined) ? "—" : Number(n).toLocaleString("en-US");
const mb = (b) => (b / 1e6).toFixed(2) + " MB";
const mib = (b) => (b / 1048576).toFixed(2) + " MiB";
const SVG = "http://www.w3.org/2000/svg";
const COLOURS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"];
const state = {info: null, model: "", input: "", report: null, zoo: null, zooSort: ["year", 1], run: null};

async function api(path, options) {
  const r = await fetch(path, options);
  const body = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
  if (!r.ok) throw new Error(body?.error || r.statusText);
  return body;
}

function status(text, error = false) {
  const s = $("#status");
  s.textContent = text;
  s.className = error ? "error" : "";
}

async function guarded(fn) {
  try { status("…"); await fn(); status(""); } catch (e) { status(e.message, true); }
}

function el(tag, attrs = {}, text) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function query(extra = {}) {
  const q = new URLSearchParams({model: state.model, input: state.input, ...extra});
  return q.toString();
}

// -- views ----------------------------------------------------------------------------------------------------

function show(view) {
  document.querySelectorAll(".view").forEach((v) => v.classList.toggle("active", v.id === "view-" + view));
  document.querySelectorAll("nav button").forEach((b) => b.classList.toggle("active", b.dataset.view === view));
  if (view === "memory") guarded(loadMemory);
  if (view === "zoo" && !state.zoo) guarded(loadZoo);
  if (view === "run" && !state.run) guarded(loadRun);
}

// -- network --------------------------------------------------------------------------------------------------

async function loadNetwork() {
  const r = await api("/api/network?" + query());
  state.report = r;
  const tbody = $("#layers tbody");
  tbody.replaceChildren();
  for (const row of r.layers) {
    const tr = el("tr", {"data-index": row.index});
    const rf = row.receptive_field === "all" ? "all" : (row.receptive_field || []).join("×");
    for (const v of [row.index, row.name, row.type, row.output_shape.join("×"), fmt(row.params), fmt(row.macs),
                     fmt(row.output_bytes), rf, (row.effective_stride || []).join("×")]) tr.append(el("td", {}, String(v)));
    tr.addEventListener("click", () => guarded(() => loadLayer(row.index)));
    tbody.append(tr);
  }
  $("#net-summary").textContent = `${r.name}: input ${r.input_shape.join("×")}, ${fmt(r.total_params)} parameters, ` +
    `${fmt(r.total_macs)} MACs per instance`;
  $("#layer-detail").hidden = true;
  drawShrink(r);
}

async function loadLayer(index) {
  const d = await api(`/api/layer?${query({index})}`);
  document.querySelectorAll("#layers tr.selected").forEach((t) => t.classList.remove("selected"));
  $(`#layers tr[data-index="${index}"]`)?.classList.add("selected");
  $("#detail-title").textContent = `layer ${d.index}: ${d.name} (${d.type})`;
  $("#detail-shape").textContent = d.output_shape.join("×");
  $("#detail-params").textContent = fmt(d.params);
  $("#detail-macs").textContent = fmt(d.macs);
  $("#detail-bytes").textContent = fmt(d.output_bytes);
  $("#detail-explain").textContent = d.explain;
  $("#layer-detail").hidden = false;
}

function drawShrink(r) {   // the map's side and the effective stride as the image shrinks
  const svg = $("#shrink");
  svg.replaceChildren();
  const rows = r.layers.filter((l) => l.output_shape.length === 3);
  if (!rows.length) return;
  const width = svg.clientWidth || 900, bar = Math.max(2, Math.min(40, (width - 20) / rows.length - 2));
  const top = Math.max(...rows.map((l) => l.output_shape[1]));
  rows.forEach((l, i) => {
    const h = Math.max(2, 90 * l.output_shape[1] / top);
    const rect = el("svg:rect", {x: 10 + i * (bar + 2), y: 100 - h, width: bar, height: h, fill: "#4e79a7"});
    rect.append(el("svg:title", {}, `${l.index} ${l.name}: ${l.output_shape.join("×")}, stride ` +
                                     (l.effective_stride || []).join("×")));
    svg.append(rect);
  });
  svg.append(el("svg:text", {x: 10, y: 116, class: "axis"}, "feature-map height per layer (hover: shape and effective stride)"));
}

// -- memory ---------------------------------------------------------------------------------------------------

async function loadMemory() {
  const batch = $("#batch").value;
  $("#batch-value").textContent = batch;
  const d = await api("/api/memory?" + query({batch, optimizer: $("#optimizer").value, precision: $("#precision").value}));
  const t = d.training;
  $("#mem-peak").textContent = fmt(t.peak_bytes);
  $("#mem-peak").dataset.batch = d.batch_size;
  $("#mem-peak-human").textContent = `${mb(t.peak_bytes)}, ${mib(t.peak_bytes)}`;
  $("#mem-phase").textContent = `${t.peak_phase} (${t.peak_op})`;
  $("#mem-infer").textContent = d.inference ? fmt(d.inference.peak_bytes) : "—";
  drawStack(t.breakdown, t.peak_bytes);
  drawCurve($("#mem-curve"), t.timeline, t.peak_bytes);
  $("#mem-notes").replaceChildren(...d.notes.map((n) => el("li", {}, n)));
}

function drawStack(breakdown, total) {
  const svg = $("#mem-bar"), legend = $("#mem-legend");
  svg.replaceChildren();
  legend.replaceChildren();
  const width = (svg.clientWidth || 900) - 20;
  let x = 10;
  Object.entries(breakdown).filter(([, v]) => v > 0).forEach(([k, v], i) => {
    const w = width * v / total, colour = COLOURS[i % COLOURS.length];
    const r = el("svg:rect", {x, y: 10, width: Math.max(w, 1), height: 40, fill: colour});
    r.append(el("svg:title", {}, `${k}: ${fmt(v)} bytes`));
    svg.append(r);
    x += w;
    const item = el("span", {"data-category": k});
    item.append(el("i", {style: `background:${colour}`}), document.createTextNode(` ${k} ${fmt(v)} B (${mb(v)})`));
    legend.append(item);
  });
}

function drawCurve(svg, values, peak) {
  svg.replaceChildren();
  if (!values || !values.length) return;
  const w = (svg.clientWidth || 900) - 60, h = 170, top = Math.max(...values, peak);
  const pts = values.map((v, i) => `${50 + w * i / Math.max(values.length - 1, 1)},${10 + h - h * v / top}`);
  svg.append(el("svg:polyline", {points: pts.join(" "), fill: "none", stroke: "#e15759", "stroke-width": 1.5}));
  svg.append(el("svg:text", {x: 2, y: 16, class: "axis"}, mb(top)));
  svg.append(el("svg:text", {x: 50, y: 196, class: "axis"}, "allocations in order: forward → loss → backward → optimizer step"));
}

async function runFit() {
  const d = await api("/api/fit?" + query({budget: $("#budget").value, batch: $("#batch").value,
                                           optimizer: $("#optimizer").value, precision: $("#precision").value}));
  const box = $("#fit-result");
  box.replaceChildren(el("p", {id: "fit-max"}, `largest batch that fits: ${d.max_batch}; batch ${d.batch_size} ` +
                              `${d.fits ? "fits" : "does not fit"} (peak ${fmt(d.peak_bytes)} B)`));
  if (!d.fits && d.remedies) {
    const ul = el("ul");
    for (const r of d.remedies) ul.append(el("li", {}, `${r.fits ? "fits" : "still too big"}: ${r.name} — ${r.description}`));
    box.append(ul);
  }
}

// -- ops playground -------------------------------------------------------------------------------------------

const EXAMPLES = {
  "conv1d 'same' (the book's 1-D example)": {op: "conv1d", input: "1,2,3,4,5,6,7,8", kernel: "-1,0,1", padding: "same"},
  "conv1d 'valid'": {op: "conv1d", input: "1,2,3,4,5,6,7,8", kernel: "-1,0,1", padding: "valid"},
  "conv2d stride 2, 'same'": {op: "conv2d", input: "[[1,2,3,-1],[4,5,6,-2],[7,8,9,-3],[10,0,0,3]]",
                              kernel: "[[1,0],[0,-1]]", padding: "same", stride: "2"},
  "conv2d dilation 2": {op: "conv2d", input: "[[1,2,3,4,5],[6,7,8,9,10],[11,12,13,14,15],[16,17,18,19,20],[21,22,23,24,25]]",
                        kernel: "[[1,0],[0,1]]", dilation: "2"},
  "max pool 2×2": {op: "maxpool", input: "[[1,2,3,-1],[4,5,6,-2],[7,8,9,-3],[10,0,0,3]]", size: "2"},
};

function fillExample(name) {
  const e = EXAMPLES[name];
  $("#op-name").value = e.op;
  for (const k of ["input", "kernel", "size", "padding", "stride", "dilation"]) {
    $("#op-" + k).value = e[k] ?? (k === "padding" ? "valid" : k === "dilation" ? "1" : "");
  }
}

async function runOps() {
  const body = {op: $("#op-name").value};
  for (const k of ["input", "kernel", "size", "padding", "stride", "dilation"]) {
    const v = $("#op-" + k).value.trim();
    if (v) body[k] = v;
  }
  const d = await api("/api/ops", {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(body)});
  $("#op-result-json").textContent = JSON.stringify(d.output);
  $("#op-shape").textContent = `[${d.output_shape.join(", ")}]`;
  $("#op-convention").textContent = d.convention;
  const padded = d.padded_input ?? null;
  drawGrid($("#op-padded"), padded, "in-cell");
  drawGrid($("#op-output"), d.output, "out-cell");
  const stride = (body.stride || (body.op.includes("pool") ? body.size : "1")).split(",").map(Number);
  const dilation = (body.dilation || "1").split(",").map(Number);
  document.querySelectorAll("#op-output .out-cell").forEach((cell, flat) => {
    cell.addEventListener("mouseenter", () => {
      const step = d.trace[flat];
      document.querySelectorAll("#op-padded .hot").forEach((c) => c.classList.remove("hot"));
      if (!step) { $("#op-trace").textContent = "(not traced)"; return; }
      $("#op-trace").textContent = step.text;
      highlight(step, stride, dilation);
    });
  });
}

function drawGrid(box, values, cls) {
  box.replaceChildren();
  if (values === null) return;
  const rows = Array.isArray(values[0]) ? (Array.isArray(values[0][0]) ? values[0] : values) : [values];
  box.style.gridTemplateColumns = `repeat(${rows[0].length}, auto)`;
  rows.forEach((row, i) => row.forEach((v, j) => {
    const c = el("span", {class: cls, "data-r": i, "data-c": j}, typeof v === "number" ? String(+v.toFixed(4)) : String(v));
    box.append(c);
  }));
}

function highlight(step, stride, dilation) {   // the window of a single-channel 1-D or 2-D op in the padded input
  const idx = step.index.slice(-2), shape = Array.isArray(step.window[0]) ? [step.window.length, step.window[0].length]
                                                                          : [1, step.window.length];
  const one = idx.length === 1 || !Array.isArray(step.window[0]);
  const [oi, oj] = one ? [0, idx[idx.length - 1]] : idx;
  const [si, sj] = one ? [1, stride[0]] : [stride[0], stride[1] ?? stride[0]];
  const [di, dj] = one ? [1, dilation[0]] : [dilation[0], dilation[1] ?? dilation[0]];
  for (let a = 0; a < shape[0]; a++) for (let b = 0; b < shape[1]; b++) {
    $(`#op-padded [data-r="${oi * si + a * di}"][data-c="${oj * sj + b * dj}"]`)?.classList.add("hot");
  }
}

// -- run ------------------------------------------------------------------------------------------------------

async function loadRun() {
  if (!state.info.run) { $("#run-none").hidden = false; return; }
  const r = await api("/api/run");
  state.run = r;
  $("#run-body").hidden = false;
  const t = r.test || {};
  const headline = t.test_acc !== undefined ? `test accuracy ${(100 * t.test_acc).toFixed(2)} %`
                 : t.miou !== undefined ? `test mIoU ${t.miou.toFixed(4)}` : "no test report yet";
  $("#run-summary").textContent = `${r.folder}: ${r.config.task || "classification"}, model ${r.model.name}, ` +
    `${fmt(r.params)} parameters, data ${r.data.name}; ${headline}`;
  drawRunCurves(r.metrics);
  drawConfusion(t.confusion, r.data.classes);
  $("#image-index").max = (r.data.sizes?.test ?? 1) - 1;
  await loadPrediction();
}

function drawRunCurves(rows) {
  const svg = $("#run-curves");
  svg.replaceChildren();
  if (!rows.length) return;
  const keys = Object.keys(rows[0]).filter((k) => /^(train|val)_(acc|miou|loss|mask_ap50)$/.test(k));
  const w = 440, h = 180, n = rows.length;
  keys.forEach((k, i) => {
    const vals = rows.map((r) => r[k]), top = Math.max(...vals, 1e-9);
    const pts = vals.map((v, j) => `${50 + w * j / Math.max(n - 1, 1)},${20 + h - h * v / top}`);
    svg.append(el("svg:polyline", {points: pts.join(" "), fill: "none", stroke: COLOURS[i], "stroke-width": 2, "data-key": k}));
    for (const p of pts) {
      const [x, y] = p.split(",");
      svg.append(el("svg:circle", {cx: x, cy: y, r: 3, fill: COLOURS[i]}));
    }
    svg.append(el("svg:text", {x: 50 + 110 * i, y: 12, fill: COLOURS[i], class: "axis"}, k));
  });
  svg.append(el("svg:text", {x: 50, y: 236, class: "axis"}, `epochs 1…${n} (each line scaled to its own maximum)`));
}

function drawConfusion(cm, classes) {
  const box = $("#run-confusion");
  box.replaceChildren();
  if (!cm) return;
  const table = el("table", {class: "confusion"}), top = Math.max(...cm.flat());
  const head = el("tr");
  head.append(el("th", {}, ""));
  classes.forEach((c, j) => head.append(el("th", {title: c}, String(j))));
  table.append(head);
  cm.forEach((row, i) => {
    const tr = el("tr");
    tr.append(el("th", {}, `${i} ${classes[i]}`));
    row.forEach((v) => tr.append(el("td", {style: `background: rgba(78,121,167,${(v / top).toFixed(3)})`}, String(v))));
    table.append(tr);
  });
  box.append(table);
}

async function loadPrediction() {
  const i = Number($("#image-index").value);
  const d = await api(`/api/run/predict/${i}`);
  if (Number($("#image-index").value) !== i) return;      // another image was asked for meanwhile
  $("#run-image").src = `/api/run/image/${i}`;
  $("#run-top").replaceChildren(...(d.top || []).map((t) => el("li", {}, `${t.class} ${(100 * t.probability).toFixed(1)} %`)));
  $("#run-truth").textContent = typeof d.truth === "string" && !d.truth.startsWith("data:") ? `truth: ${d.truth}` : "";
  const ov = $("#run-overlay");
  ov.replaceChildren();
  if (d.overlay) {
    for (const [k, label] of [["overlay", "prediction over the image"], ["prediction", "predicted classes"], ["truth", "true classes"]]) {
      const fig = el("figure");
      fig.append(el("img", {src: d[k], class: "pixelated", alt: label}), el("figcaption", {}, label));
      ov.append(fig);
    }
  }
  const box = $("#features");
  box.replaceChildren();
  for (const l of d.layers) {
    const fig = el("figure", {class: "feature"});
    fig.append(el("img", {src: l.image, class: "pixelated feature-map", alt: l.name}),
               el("figcaption", {}, `${l.name} (${l.type}) ${l.shape.join("×")}, ${l.channels_shown} shown`));
    box.append(fig);
  }
}

// -- zoo ------------------------------------------------------------------------------------------------------

const ZOO_COLUMNS = [["name", "model"], ["year", "year"], ["depth", "depth"], ["params", "parameters"],
                     ["macs", "MACs"], ["inference_bytes", "inference bytes"], ["training_bytes", "training bytes"],
                     ["innovation", "what it brought"]];

async function loadZoo() {
  state.zoo = await api("/api/zoo");
  drawZoo();
}

function drawZoo() {
  const [key, dir] = state.zooSort;
  const rows = [...state.zoo].sort((a, b) => (a[key] > b[key] ? 1 : a[key] < b[key] ? -1 : 0) * dir);
  const head = el("tr");
  for (const [k, label] of ZOO_COLUMNS) {
    const th = el("th", {"data-key": k}, label + (k === key ? (dir > 0 ? " ▲" : " ▼") : ""));
    th.addEventListener("click", () => { state.zooSort = [k, k === key ? -dir : 1]; drawZoo(); });
    head.append(th);
  }
  $("#zoo-table thead").replaceChildren(head);
  const tbody = $("#zoo-table tbody");
  tbody.replaceChildren();
  for (const r of rows) {
    const tr = el("tr", {"data-name": r.name});
    for (const [k] of ZOO_COLUMNS) tr.append(el("td", {}, typeof r[k] === "number" && k !== "year" ? fmt(r[k]) : String(r[k] ?? "—")));
    tr.addEventListener("click", () => { $("#model").value = r.name; state.model = r.name; state.input = "";
                                          $("#input-shape").value = ""; show("network"); guarded(loadNetwork); });
    tbody.append(tr);
  }
  const svg = $("#zoo-chart");
  svg.replaceChildren();
  const top = Math.max(...rows.map((r) => r.params)), w = (svg.clientWidth || 900) - 20, bw = w / rows.length;
  rows.forEach((r, i) => {
    const h = 260 * r.params / top;
    const rect = el("svg:rect", {x: 10 + i * bw, y: 270 - h, width: Math.max(bw - 2, 1), height: h, fill: "#59a14f"});
    rect.append(el("svg:title", {}, `${r.name}: ${fmt(r.params)} parameters`));
    svg.append(rect);
  });
  svg.append(el("svg:text", {x: 10, y: 290, class: "axis"}, "parameters per model, in the table's order"));
}

// -- start ----------------------------------------------------------------------------------------------------

async function start() {
  state.info = await api("/api/info");
  const sel = $("#model");
  sel.append(el("option", {value: ""}, `${state.info.target} (named)`));
  for (const n of state.info.zoo) sel.append(el("option", {value: n}, n));
  for (const [k, list] of [["#optimizer", state.info.optimizers], ["#precision", state.info.precisions]]) {
    for (const v of list) $(k).append(el("option", {value: v}, v));
  }
  for (const name of Object.keys(EXAMPLES)) $("#op-example").append(el("option", {value: name}, name));
  fillExample(Object.keys(EXAMPLES)[0]);
  document.querySelectorAll("nav button").forEach((b) => b.addEventListener("click", () => show(b.dataset.view)));
  sel.addEventListener("change", () => { state.model = sel.value; guarded(loadNetwork); });
  $("#reload").addEventListener("click", () => { state.input = $("#input-shape").value.trim(); guarded(loadNetwork); });
  $("#batch").addEventListener("input", () => { $("#batch-value").textContent = $("#batch").value; });
  for (const id of ["#batch", "#optimizer", "#precision"]) $(id).addEventListener("change", () => guarded(loadMemory));
  $("#fit").addEventListener("click", () => guarded(runFit));
  $("#op-example").addEventListener("change", (e) => fillExample(e.target.value));
  $("#op-run").addEventListener("click", () => guarded(runOps));
  $("#image-index").addEventListener("change", () => guarded(loadPrediction));
  $("#image-prev").addEventListener("click", () => { $("#image-index").stepDown(); guarded(loadPrediction); });
  $("#image-next").addEventListener("click", () => { $("#image-index").stepUp(); guarded(loadPrediction); });
  await loadNetwork();
  document.body.dataset.ready = "1";
}

guarded(start);
