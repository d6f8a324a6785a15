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
  await loadDrawing();
}

async function loadLayer(index) {
  const d = await api(`/api/layer?${query({index})}`);
  document.querySelectorAll("#layers tr.selected, #drawing .selected").forEach((t) => t.classList.remove("selected"));
  $(`#layers tr[data-index="${index}"]`)?.classList.add("selected");
  document.querySelectorAll(`#drawing [data-index="${index}"]`).forEach((g) => g.classList.add("selected"));
  $("#detail-title").textContent = `layer ${d.index}: ${d.name} (${d.type})`;
  $("#detail-shape").textContent = d.output_shape.join("×");
  $("#detail-params").textContent = fmt(d.params);
  $("#detail-macs").textContent = fmt(d.macs);
  $("#detail-bytes").textContent = fmt(d.output_bytes);
  $("#detail-explain").textContent = d.explain;
  $("#layer-detail").hidden = false;
}

async function loadDrawing() {   // cnnlab's own SVG (every name in it escaped by the server), as analyze --plot writes it
  const d = await api("/api/drawing?" + query());
  const box = $("#drawing");
  box.innerHTML = d.svg;
  box.dataset.kind = d.chain ? "chain" : "graph";
  $("#drawing-caption").textContent = d.caption;
  box.querySelectorAll("[data-index]").forEach((g) => g.addEventListener("click", () => {
    guarded(() => loadLayer(Number(g.dataset.index)));
    $(`#layers tr[data-index="${g.dataset.index}"]`)?.scrollIntoView({block: "nearest"});
  }));
}

function download(name, blob) {
  const a = el("a", {href: URL.createObjectURL(blob), download: name});
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function downloadSvg() {
  download(`${state.report.name}.svg`, new Blob([$("#drawing svg").outerHTML], {type: "image/svg+xml"}));
}

function downloadPng() {
  const svg = $("#drawing svg"), img = new Image();
  img.onload = () => {
    const canvas = el("canvas", {width: svg.width.baseVal.value, height: svg.height.baseVal.value});
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(img, 0, 0);
    canvas.toBlob((b) => download(`${state.report.name}.png`, b), "image/png");
  };
  img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg.outerHTML);
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

function niceTicks(top, count = 4) {   // round tick values from 0 to top
  const raw = top / count, mag = 10 ** Math.floor(Math.log10(raw || 1));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((v) => v >= raw) || raw;
  const ticks = [];
  for (let v = 0; v <= top * 1.0001; v += step) ticks.push(v);
  return ticks;
}

function drawCurve(svg, values, peak) {   // live bytes after each allocation and free of one training step
  svg.replaceChildren();
  if (!values || !values.length) return;
  const left = 70, w = (svg.clientWidth || 900) - left - 20, h = 180, top = Math.max(...values, peak);
  const y = (v) => 10 + h - h * v / top, x = (i) => left + w * i / Math.max(values.length - 1, 1);
  for (const t of niceTicks(top)) {
    svg.append(el("svg:line", {x1: left - 4, x2: left + w, y1: y(t), y2: y(t), stroke: "#eee"}));
    svg.append(el("svg:text", {x: left - 6, y: y(t) + 3, "text-anchor": "end", class: "tick"}, (t / 1e6).toFixed(t >= 1e7 ? 0 : 1) + " MB"));
  }
  svg.append(el("svg:polyline", {points: values.map((v, i) => `${x(i)},${y(v)}`).join(" "), fill: "none",
                                 stroke: "#e15759", "stroke-width": 1.5}));
  svg.append(el("svg:text", {x: left, y: h + 30, class: "axis"},
                `allocations in order (${fmt(values.length)} events): forward → loss → backward → optimizer step`));
  const dot = el("svg:circle", {r: 4, fill: "#e15759", visibility: "hidden"});
  const label = el("svg:text", {class: "tick", visibility: "hidden", id: "mem-hover"});
  svg.append(dot, label);
  svg.onmousemove = (e) => {
    const box = svg.getBoundingClientRect(), i = Math.round((e.clientX - box.left - left) / w * (values.length - 1));
    if (i < 0 || i >= values.length) return;
    dot.setAttribute("cx", x(i)); dot.setAttribute("cy", y(values[i])); dot.setAttribute("visibility", "visible");
    label.setAttribute("x", Math.min(x(i) + 8, left + w - 160)); label.setAttribute("y", 22);
    label.setAttribute("visibility", "visible");
    label.textContent = `event ${i + 1}: ${fmt(values[i])} B (${mb(values[i])})`;
  };
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
  "average pool 3×3, stride 1, 'same'": {op: "avgpool", input: "[[1,2,3,-1],[4,5,6,-2],[7,8,9,-3],[10,0,0,3]]",
                                         size: "3", stride: "1", padding: "same"},
  "global average pooling (2 channels)": {op: "global-avgpool", input: "[[[1,2,3],[4,5,6],[10,0,3]],[[1,1,1],[1,1,2],[0,0,0]]]"},
  "local response normalization across 4 channels": {op: "lrn", input: "[[[1]],[[2]],[[3]],[[4]]]", size: "3"},
};
const anim = {d: null, body: null, cur: 0, timer: null};

function fillExample(name) {
  const e = EXAMPLES[name];
  $("#op-name").value = e.op;
  for (const k of ["input", "kernel", "size", "padding", "stride", "dilation"]) {
    $("#op-" + k).value = e[k] ?? (k === "padding" ? "valid" : k === "dilation" ? "1" : "");
  }
}

function parseNumbers(text) {   // "1,2,3" or nested JSON arrays, as the command line takes them
  const t = text.trim();
  return t.startsWith("[") ? JSON.parse(t) : t.split(",").map(Number);
}

function asChannels(values, op = "") {   // the grids the op sees: 1-D, 2-D or C×H×W -> a list of 2-D grids
  const acrossChannels = op === "lrn" || op.startsWith("global");   // their first axis is the channels
  if (!Array.isArray(values[0])) return acrossChannels && op === "lrn" ? values.map((v) => [[v]]) : [[values]];
  if (!Array.isArray(values[0][0])) return acrossChannels ? values.map((row) => [row]) : [values];
  return values;
}

function drawChannels(box, values, cls, op = "") {
  box.replaceChildren();
  const channels = asChannels(values, op);
  channels.forEach((grid, ch) => {
    const fig = el("figure"), g = el("div", {class: "grid"});
    g.style.gridTemplateColumns = `repeat(${grid[0].length}, auto)`;
    grid.forEach((row, i) => row.forEach((v, j) => {
      g.append(el("span", {class: cls, "data-ch": ch, "data-r": i, "data-c": j},
                  typeof v === "number" ? String(+v.toFixed(4)) : String(v)));
    }));
    fig.append(g);
    if (channels.length > 1) fig.append(el("figcaption", {}, `channel ${ch}`));
    box.append(fig);
  });
}

function cellAt(box, index, op = "") {   // an output index -> its cell: [k] 1-D, [i, j] 2-D, [c, i, j] C×H×W
  const [ch, r, c] = op === "lrn" ? (index.length === 1 ? [index[0], 0, 0] : index.length === 2 ? [index[0], 0, index[1]] : index)
    : index.length === 1 ? [0, 0, index[0]] : index.length === 2 ? [0, ...index] : index;
  return box.querySelector(`[data-ch="${ch}"][data-r="${r}"][data-c="${c}"]`);
}

async function runOps() {
  const body = {op: $("#op-name").value};
  for (const k of ["input", "kernel", "size", "padding", "stride", "dilation"]) {
    const v = $("#op-" + k).value.trim();
    if (v) body[k] = v;
  }
  const d = await api("/api/ops", {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(body)});
  stopAnimation();
  anim.d = d; anim.body = body; anim.cur = 0;
  $("#op-result-json").textContent = JSON.stringify(d.output);
  $("#op-shape").textContent = `[${d.output_shape.join(", ")}]`;
  $("#op-convention").textContent = d.convention;
  $("#op-input-title").textContent = d.padded_input ? "padded input" : "input";
  drawChannels($("#op-padded"), d.padded_input ?? parseNumbers(body.input), "in-cell", body.op);
  drawChannels($("#op-output"), d.output, "out-cell", body.op === "lrn" ? "lrn" : "");
  d.trace.forEach((step, n) => cellAt($("#op-output"), step.index, body.op)?.addEventListener("mouseenter", () => {
    stopAnimation();
    showStep(n);
  }));
  showStep(0);
}

function showStep(n) {   // output cell n: its window in the input, the products and the sum
  const d = anim.d;
  if (!d || !d.trace.length) return;
  anim.cur = (n + d.trace.length) % d.trace.length;
  const step = d.trace[anim.cur];
  document.querySelectorAll("#op-padded .hot, #op-output .current").forEach((c) => c.classList.remove("hot", "current"));
  cellAt($("#op-output"), step.index, anim.body.op)?.classList.add("current");
  $("#op-trace").textContent = step.text;
  $("#anim-position").textContent = `output cell ${anim.cur + 1} of ${d.trace.length}` +
    (d.trace_capped ? ` (the first ${d.trace.length} of ${d.trace_total} traced)` : "");
  for (const [ch, r, c] of windowCells(step, anim.body, d)) {
    $(`#op-padded [data-ch="${ch}"][data-r="${r}"][data-c="${c}"]`)?.classList.add("hot");
  }
}

function windowCells(step, body, d) {   // the input cells an output cell reads, as [channel, row, column]
  const op = body.op, idx = step.index, cells = [];
  if (op.startsWith("global")) {
    const grid = asChannels(parseNumbers(body.input), op)[idx[0]] || [];
    grid.forEach((row, r) => row.forEach((_, c) => cells.push([idx[0], r, c])));
    return cells;
  }
  if (op === "lrn") {             // the same position in the neighbouring channels
    const size = Number(body.size || 5), lo = Math.max(0, idx[0] - Math.floor(size / 2));
    const [r, c] = idx.length === 3 ? [idx[1], idx[2]] : idx.length === 2 ? [0, idx[1]] : [0, 0];
    for (let k = 0; k < step.window.length; k++) cells.push([lo + k, r, c]);
    return cells;
  }
  const sizes = (key, fallback) => (body[key] || fallback).split(",").map(Number);
  const stride = sizes("stride", op.includes("pool") ? (body.size || "1") : "1");
  const dilation = op.includes("pool") ? [1, 1] : sizes("dilation", "1");
  const win = step.window, threeD = Array.isArray(win[0]) && Array.isArray(win[0][0]);
  const plane = threeD ? win[0] : win, oneD = !Array.isArray(plane[0]);
  const [kh, kw] = oneD ? [1, plane.length] : [plane.length, plane[0].length];
  const [oi, oj] = oneD ? [0, idx[idx.length - 1]] : idx.slice(-2);
  const [si, sj] = oneD ? [1, stride[0]] : [stride[0], stride[1] ?? stride[0]];
  const [di, dj] = oneD ? [1, dilation[0]] : [dilation[0], dilation[1] ?? dilation[0]];
  const channels = threeD ? [...Array(win.length).keys()] : [idx.length === 3 ? idx[0] : 0];
  for (const ch of channels) for (let a = 0; a < kh; a++) for (let b = 0; b < kw; b++) {
    cells.push([ch, oi * si + a * di, oj * sj + b * dj]);
  }
  return cells;
}

function stopAnimation() {
  clearInterval(anim.timer);
  anim.timer = null;
  $("#anim-play").textContent = "▶ play";
}

function toggleAnimation() {
  if (anim.timer) { stopAnimation(); return; }
  $("#anim-play").textContent = "❚❚ pause";
  anim.timer = setInterval(() => showStep(anim.cur + 1), 1600 / Number($("#anim-speed").value));
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

function drawRunCurves(rows) {   // accuracy-like metrics on the left axis (0–1), losses on the right
  const svg = $("#run-curves");
  svg.replaceChildren();
  if (!rows.length) return;
  const keys = Object.keys(rows[0]).filter((k) => /^(train|val)_(acc|miou|loss|mask_ap50)$/.test(k));
  const left = 50, w = 440, h = 190, n = rows.length;
  const num = (v) => (typeof v === "number" && Number.isFinite(v)) ? v : null;
  const lossTop = Math.max(1e-9, ...rows.flatMap((r) => keys.filter((k) => k.endsWith("loss")).map((k) => num(r[k]) ?? 0)));
  const x = (j) => left + w * j / Math.max(n - 1, 1);
  const y = (v, loss) => 20 + h - h * v / (loss ? lossTop : 1);
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    svg.append(el("svg:line", {x1: left, x2: left + w, y1: y(t, false), y2: y(t, false), stroke: "#eee"}));
    svg.append(el("svg:text", {x: left - 6, y: y(t, false) + 3, "text-anchor": "end", class: "tick"}, t.toFixed(2)));
    svg.append(el("svg:text", {x: left + w + 6, y: y(t, false) + 3, class: "tick"}, (t * lossTop).toPrecision(2)));
  }
  rows.forEach((_, j) => svg.append(el("svg:text", {x: x(j), y: h + 36, "text-anchor": "middle", class: "tick"},
                                       n <= 30 || j % Math.ceil(n / 30) === 0 ? String(j + 1) : "")));
  keys.forEach((k, i) => {
    const loss = k.endsWith("loss");
    const pts = rows.map((r, j) => [j, num(r[k])]).filter(([, v]) => v !== null).map(([j, v]) => [x(j), y(v, loss), j, v]);
    svg.append(el("svg:polyline", {points: pts.map((p) => `${p[0]},${p[1]}`).join(" "), fill: "none", stroke: COLOURS[i],
                                   "stroke-width": 2, "stroke-dasharray": loss ? "5 3" : "", "data-key": k}));
    pts.forEach(([px, py, j, v]) => {
      const dot = el("svg:circle", {cx: px, cy: py, r: 3, fill: COLOURS[i]});
      dot.append(el("svg:title", {}, `epoch ${j + 1}: ${k} ${v.toFixed(4)}`));
      svg.append(dot);
    });
    svg.append(el("svg:text", {x: left + 125 * i, y: 12, style: `fill:${COLOURS[i]}`, class: "axis"}, k + (loss ? " (right)" : "")));
  });
  svg.append(el("svg:text", {x: left, y: h + 52, class: "axis"}, "epoch; accuracy on the left axis, loss on the right (dashed)"));
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
    tr.append(el("th", {}, classes[i] === String(i) ? String(i) : `${i} ${classes[i]}`));
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
  drawZooChart(rows);
}

function drawZooChart(rows) {   // parameters per model on a log axis, the model's name under its bar
  const svg = $("#zoo-chart");
  svg.replaceChildren();
  const left = 60, bottom = 300, h = 270, w = (svg.clientWidth || 900) - left - 10, bw = w / rows.length;
  const lo = 4, hi = Math.ceil(Math.log10(Math.max(...rows.map((r) => r.params))));
  const y = (v) => bottom - h * (Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo);
  for (let e = lo; e <= hi; e++) {
    svg.append(el("svg:line", {x1: left, x2: left + w, y1: y(10 ** e), y2: y(10 ** e), stroke: "#eee"}));
    svg.append(el("svg:text", {x: left - 6, y: y(10 ** e) + 3, "text-anchor": "end", class: "tick"},
                  e >= 6 ? `${10 ** (e - 6)} M` : `${10 ** (e - 3)} k`));
  }
  rows.forEach((r, i) => {
    const x = left + i * bw, rect = el("svg:rect", {x: x + 1, y: y(r.params), width: Math.max(bw - 2, 1),
                                                     height: bottom - y(r.params), fill: "#59a14f", "data-name": r.name});
    rect.append(el("svg:title", {}, `${r.name} (${r.year}): ${fmt(r.params)} parameters, ${fmt(r.macs)} MACs`));
    svg.append(rect);
    const cx = x + bw / 2;
    svg.append(el("svg:text", {x: cx, y: bottom + 8, class: "tick", "text-anchor": "end",
                               transform: `rotate(-50 ${cx} ${bottom + 8})`}, r.name));
  });
  svg.append(el("svg:text", {x: 12, y: bottom - h / 2, class: "axis", transform: `rotate(-90 12 ${bottom - h / 2})`,
                             "text-anchor": "middle"}, "parameters"));
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
  $("#op-example").addEventListener("change", (e) => { fillExample(e.target.value); guarded(runOps); });
  $("#op-run").addEventListener("click", () => guarded(runOps));
  $("#anim-next").addEventListener("click", () => { stopAnimation(); showStep(anim.cur + 1); });
  $("#anim-prev").addEventListener("click", () => { stopAnimation(); showStep(anim.cur - 1); });
  $("#anim-play").addEventListener("click", toggleAnimation);
  $("#anim-speed").addEventListener("change", () => { if (anim.timer) { stopAnimation(); toggleAnimation(); } });
  $("#dl-svg").addEventListener("click", downloadSvg);
  $("#dl-png").addEventListener("click", downloadPng);
  $("#image-index").addEventListener("change", () => guarded(loadPrediction));
  $("#image-prev").addEventListener("click", () => { $("#image-index").stepDown(); guarded(loadPrediction); });
  $("#image-next").addEventListener("click", () => { $("#image-index").stepUp(); guarded(loadPrediction); });
  await loadNetwork();
  await runOps();              // the worked example is computed on load: the playground shows it at once
  document.body.dataset.ready = "1";
}

guarded(start);
