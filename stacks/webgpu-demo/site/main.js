// The demo page: check WebGPU, make an ONNX Runtime Web session (webgpu, else wasm), classify digits.
//
// Everything is loaded from this page's own origin: onnxruntime-web from ./ort/ and the model from
// ./model/. URL parameter ?ep=auto|webgpu|wasm picks the execution provider (default auto: WebGPU
// when an adapter is found, else wasm; webgpu means WebGPU or an error, no fallback).
//
// Two builds of the runtime are served and only one is loaded: the WebGPU build (which also runs
// wasm) when an adapter is found, else the wasm-only build, whose 14 MB binary starts about twice
// as fast as the WebGPU build's 27 MB one: machines without WebGPU get a quicker first prediction.
//
// Tests and the benchmark read window.ortDemo: `ready` (a promise of the state once the first
// prediction and the timing runs are done), `state`, and `predict(pixels)` for 784 pixels 0..255.

import { createPad } from "./pad.js";

const RUNTIMES = { webgpu: "./ort/ort.webgpu.min.mjs", wasm: "./ort/ort.wasm.min.mjs" };
const MODEL_URL = "model/digits.onnx";
const SAMPLES_URL = "model/samples.json";
const SIZE = 28; // model input is [1, 1, 28, 28], pixels 0..1, ink high
const LATER_RUNS = 10;

const $ = (id) => document.getElementById(id);

const params = new URLSearchParams(location.search);
const requested = ["webgpu", "wasm"].includes(params.get("ep")) ? params.get("ep") : "auto";

const state = {
  status: "loading",
  requested,
  ep: null,
  epReason: "",
  webgpu: null,
  threads: 1,
  crossOriginIsolated: self.crossOriginIsolated === true,
  runtime: null,
  ortVersion: null,
  timings: {},
  samples: [],
  maxReferenceDiff: null,
  shownSample: null,
  shownCount: 0,
  last: null,
  error: null,
};

let ort = null;
let session = null;
let resolveReady;
const ready = new Promise((resolve) => {
  resolveReady = resolve;
});
window.ortDemo = { ready, state, predict: (pixels) => predict(pixels) };

function fail(message) {
  state.status = "error";
  state.error = message;
  document.documentElement.dataset.status = "error";
  $("status").textContent = "The demo could not start.";
  $("status").className = "status bad";
  $("error").hidden = false;
  $("error-text").textContent = message;
  showTrouble(state.epReason || message);
  resolveReady(snapshot());
}

function snapshot() {
  // A plain copy (Playwright and Selenium return JSON, not live objects), without the samples'
  // pixels: whoever needs them reads model/samples.json.
  const { samples, ...rest } = state;
  return JSON.parse(JSON.stringify({ ...rest, sampleCount: samples.length }));
}

function ms(value) {
  return value == null ? "-" : `${value.toFixed(value < 10 ? 2 : 1)} ms`;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function showTrouble(reason) {
  $("troubleshooting").hidden = false;
  $("trouble-reason").textContent = reason;
}

// --- Choosing the execution provider -------------------------------------------------------------

async function checkWebGPU() {
  if (!("gpu" in navigator) || !navigator.gpu) {
    return { available: false, reason: "navigator.gpu is missing: this browser does not offer WebGPU here" };
  }
  try {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) {
      return {
        available: false,
        reason: "navigator.gpu.requestAdapter() returned null: no usable GPU adapter (WebGPU off, GPU or driver blocked)",
      };
    }
    const info = adapter.info ?? {};
    const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(" ");
    return {
      available: true,
      reason: "",
      adapter: name || "unnamed adapter",
      fallbackAdapter: Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter),
    };
  } catch (error) {
    return { available: false, reason: `navigator.gpu.requestAdapter() failed: ${error.message}` };
  }
}

function configureWasm() {
  // Same origin, never a CDN: the runtime finds its .mjs/.wasm next to ort.webgpu.min.mjs here.
  ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
  // Threads need SharedArrayBuffer, which browsers give only to cross-origin isolated pages
  // (COOP/COEP headers from the server); without it more than one thread fails to start.
  state.threads = state.crossOriginIsolated ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
  ort.env.wasm.numThreads = state.threads;
}

async function loadRuntime(build) {
  const started = performance.now();
  try {
    ort = await import(RUNTIMES[build]);
  } catch (error) {
    throw new Error(
      `onnxruntime-web (${RUNTIMES[build]}) did not load: ${error.message}. If you serve the folder yourself, ` +
        "serve the assembled site (python stacks/webgpu-demo/assemble.py --out DIR, then serve DIR/site).",
    );
  }
  state.timings.runtimeLoadMs = performance.now() - started;
  state.runtime = RUNTIMES[build].split("/").pop();
  state.ortVersion = ort.env.versions?.web ?? "unknown";
}

async function createSession(modelBytes) {
  const options = (ep) => ({ executionProviders: [ep], graphOptimizationLevel: "all" });
  if (requested !== "wasm") {
    if (state.webgpu.available) {
      try {
        const started = performance.now();
        const made = await ort.InferenceSession.create(modelBytes, options("webgpu"));
        state.timings.sessionCreateMs = performance.now() - started;
        state.ep = "webgpu";
        state.epReason = `WebGPU adapter found (${state.webgpu.adapter}${state.webgpu.fallbackAdapter ? ", software fallback" : ""})`;
        return made;
      } catch (error) {
        state.webgpu.available = false;
        state.webgpu.reason = `a WebGPU session could not be created: ${error.message}`;
      }
    }
    if (requested === "webgpu") {
      throw new Error(`WebGPU was requested (?ep=webgpu) but is not usable: ${state.webgpu.reason}`);
    }
    state.epReason = "fell back to wasm: WebGPU is not usable here (see the WebGPU check)";
  } else {
    state.epReason = "wasm was requested in the address (?ep=wasm)";
  }
  const started = performance.now();
  const made = await ort.InferenceSession.create(modelBytes, options("wasm"));
  state.timings.sessionCreateMs = performance.now() - started;
  state.ep = "wasm";
  return made;
}

// --- Running the model ---------------------------------------------------------------------------

function softmax(logits) {
  const top = Math.max(...logits);
  const exps = logits.map((v) => Math.exp(v - top));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((v) => v / sum);
}

// One run at a time: a stroke can end while the previous prediction is still running, and a
// session must not run twice at once.
let queue = Promise.resolve();

function predict(pixels) {
  const next = queue.then(() => runOnce(pixels));
  queue = next.catch(() => {});
  return next;
}

async function runOnce(pixels) {
  if (!session) throw new Error("the session is not ready yet");
  if (pixels.length !== SIZE * SIZE) throw new Error(`expected ${SIZE * SIZE} pixels, got ${pixels.length}`);
  // Float32Array rounds each pixel/255 (a double) to float32, as numpy's float64 -> float32 does.
  const data = Float32Array.from(pixels, (v) => v / 255);
  const input = new ort.Tensor("float32", data, [1, 1, SIZE, SIZE]);
  const started = performance.now();
  const outputs = await session.run({ input });
  const elapsed = performance.now() - started;
  const logits = Array.from(outputs.logits.data);
  const probs = softmax(logits);
  const label = probs.indexOf(Math.max(...probs));
  return { label, logits, probs, ms: elapsed };
}

function show(result, reference) {
  state.last = result;
  state.shownCount += 1;
  $("prediction").textContent = String(result.label);
  $("confidence").textContent = `${(result.probs[result.label] * 100).toFixed(1)}%`;
  $("logits").textContent = result.logits.map((v, i) => `${i}: ${v.toFixed(6)}`).join("\n");
  $("t-last").textContent = ms(result.ms);
  const rows = result.probs.map((p, digit) => {
    const item = document.createElement("li");
    item.className = digit === result.label ? "top" : "";
    item.innerHTML = `<span class="digit">${digit}</span><span class="bar"><span style="width:${(p * 100).toFixed(2)}%"></span></span><span class="pct">${(p * 100).toFixed(1)}%</span>`;
    return item;
  });
  $("probs").replaceChildren(...rows);
  if (reference) {
    const diff = Math.max(...result.logits.map((v, i) => Math.abs(v - reference[i])));
    $("reference").textContent = `Largest difference from the Python reference logits: ${diff.toExponential(1)}`;
  } else {
    $("reference").textContent = "";
  }
}

// --- Drawing pad and samples --------------------------------------------------------------------

const pad = createPad($("pad"), {
  enabled: () => session !== null,
  onStart: () => {
    state.shownSample = null;
  },
  onDrawn: async (pixels) => show(await predict(pixels), null),
});
$("clear").addEventListener("click", () => {
  pad.clear();
  state.shownSample = null;
});

async function pickSample(index) {
  const sample = state.samples[index];
  pad.showPixels(sample.pixels);
  state.shownSample = index;
  const result = await predict(sample.pixels);
  show(result, sample.logits);
  return result;
}

function setUpSamples() {
  const buttons = state.samples.map((sample, index) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = String(sample.label);
    button.title = `Held-out sample of a ${sample.label}`;
    button.dataset.sample = String(index);
    button.addEventListener("click", () => pickSample(index));
    return button;
  });
  $("samples").replaceChildren(...buttons);
}

// --- Start-up ------------------------------------------------------------------------------------

async function start() {
  $("isolated").textContent = state.crossOriginIsolated ? "yes" : "no (wasm runs on one thread)";
  if (requested !== "wasm") state.webgpu = await checkWebGPU();
  await loadRuntime(state.webgpu?.available ? "webgpu" : "wasm");
  $("ort-version").textContent = `${state.ortVersion} (${state.runtime})`;
  configureWasm();
  $("threads").textContent = String(state.threads);

  const fetched = performance.now();
  const [modelResponse, samplesResponse] = await Promise.all([fetch(MODEL_URL), fetch(SAMPLES_URL)]);
  if (!modelResponse.ok) throw new Error(`${MODEL_URL}: HTTP ${modelResponse.status}`);
  if (!samplesResponse.ok) throw new Error(`${SAMPLES_URL}: HTTP ${samplesResponse.status}`);
  const modelBytes = new Uint8Array(await modelResponse.arrayBuffer());
  state.samples = (await samplesResponse.json()).samples;
  state.timings.modelFetchMs = performance.now() - fetched;
  setUpSamples();

  session = await createSession(modelBytes);
  $("ep").textContent = state.ep;
  $("ep-reason").textContent = state.epReason;
  $("webgpu-check").textContent = state.webgpu
    ? state.webgpu.available
      ? `available: ${state.webgpu.adapter}`
      : state.webgpu.reason
    : "skipped (?ep=wasm)";
  if (state.ep !== "webgpu") showTrouble(state.webgpu ? state.webgpu.reason : state.epReason);

  const first = await pickSample(0);
  state.timings.firstRunMs = first.ms;
  // performance.now() counts from the start of navigation: this is what a person waits for.
  state.timings.loadToFirstPredictionMs = performance.now();

  const later = [];
  for (let i = 0; i < LATER_RUNS; i++) later.push((await predict(state.samples[0].pixels)).ms);
  state.timings.laterRunsMedianMs = median(later);
  state.timings.laterRuns = later.length;

  let worst = 0;
  for (const sample of state.samples) {
    const { logits } = await predict(sample.pixels);
    worst = Math.max(worst, ...logits.map((v, i) => Math.abs(v - sample.logits[i])));
  }
  state.maxReferenceDiff = worst;

  $("t-runtime").textContent = ms(state.timings.runtimeLoadMs);
  $("t-fetch").textContent = ms(state.timings.modelFetchMs);
  $("t-create").textContent = ms(state.timings.sessionCreateMs);
  $("t-first").textContent = ms(state.timings.firstRunMs);
  $("t-later").textContent = `${ms(state.timings.laterRunsMedianMs)} (${LATER_RUNS} runs)`;
  $("t-load").textContent = ms(state.timings.loadToFirstPredictionMs);
  state.status = "ready";
  document.documentElement.dataset.status = "ready";
  document.documentElement.dataset.ep = state.ep;
  $("status").textContent = `Ready: running on ${state.ep}. Draw a digit or pick a sample.`;
  $("status").className = state.ep === "webgpu" ? "status good" : "status warn";
  resolveReady(snapshot());
}

start().catch((error) => fail(error?.message ?? String(error)));
