// The page: open a model from the user's disk, inspect it, quantize it, measure it, download the
// outputs. All computing happens in the job worker (web/worker.ts) through bitscale's own
// pipeline; this file holds the UI and the browser I/O (file inputs, drag and drop, downloads).
import type { ProgressEvent } from '../src/core/progress.js';
import { parseScheme, bitsPerWeight } from '../src/quant/index.js';
import { isGgmlType, ggmlBitsPerWeight, type GgmlType } from '../src/core/dtype.js';
import { LLAMA_FTYPES } from '../src/core/ftype.js';
import type { EvalReport } from '../src/pipeline/eval.js';
import type { InspectReport } from '../src/pipeline/inspect.js';
import type { QuantizeReport } from '../src/pipeline/quantize/quantize.js';
import type { SweepPointResult, SweepRecord } from '../src/eval/sweep-types.js';
import { markFrontiers, shipRecommendations } from '../src/report/decision.js';
import { frontierChart } from '../src/report/frontier-charts.js';
import { renderSweepReport } from '../src/report/sweep-report.js';
import { JobError, JobRunner } from './jobs.js';
import { saveFile, saveFolder } from './download.js';
import { esc, inspectHtml, mb, resultsHtml, shipHtml, tensorTableHtml } from './render.js';
import { droppedFiles, pickedFiles, type Picked } from './files.js';
import type { InFile, Output, QuantizeJob, TextChoice } from './protocol.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const input = (id: string) => $<HTMLInputElement>(id);

/** llama.cpp's named file types (`--scheme q4_k_m`, …: one ggml type per tensor by llama.cpp's recipe, #14) */
const LLAMA_TYPES = Object.keys(LLAMA_FTYPES).map((n) => n.toLowerCase());
/** the scheme list: the llama.cpp file types, then single ggml types and the other families (any scheme string the CLI takes is accepted) */
const SCHEMES: [string, string][] = [
  ...LLAMA_TYPES.map((s): [string, string] => [s, 'llama.cpp file type']),
  ...['q2_k', 'q3_k', 'q4_k', 'q5_k', 'iq4_nl', 'tq2_0'].filter((s) => !LLAMA_TYPES.includes(s)).map((s): [string, string] => [s, 'ggml type']),
  ...['int4-g128', 'int4-g32', 'int8-channel', 'int3-g128', 'int2-g64', 'nf4-g64', 'mxfp4', 'nvfp4', 'fp8-e4m3', 'fp16'].map((s): [string, string] => [s, '']),
];

interface OutputEntry {
  output: Output;
  report: Omit<QuantizeReport, 'host'>;
  /** how the job ran: streamed on the kernel workers, or in memory */
  ranOn: string;
}

const state = {
  files: [] as InFile[],
  folder: null as string | null,
  label: '',
  inspect: null as InspectReport | null,
  outputs: [] as OutputEntry[],
  evals: new Map<string, EvalReport>(),
  /** the longest the page's event loop was blocked while a job ran (ms): the page must stay responsive */
  maxLagMs: 0,
};

const runner = new JobRunner(new URL('./worker.js', import.meta.url));
runner.restoreState = () => ({ files: state.files, folder: state.folder, outputs: state.outputs.map((o) => o.output), webgpu: input('webgpu').checked, threads: Number(input('threads').value) || 1 });

// ── messages and job progress ─────────────────────────────────────────────────────────────────

function showMessage(text: string, kind: 'error' | 'info' = 'error'): void {
  const m = $('message');
  m.className = kind;
  m.textContent = text;
  m.hidden = false;
}

function clearMessage(): void {
  $('message').hidden = true;
}

function describe(e: unknown): string {
  // a typed error's message already names the file, field or tensor, offset, expected, found and
  // the hint (core/errors.ts); only the worker's mount points are taken out of its paths
  if (e instanceof JobError) return e.info.message.replace(/\/(?:in\/files|in|out)\//g, '');
  return (e as Error)?.message ?? String(e);
}

function onProgress(e: ProgressEvent): void {
  const bar = $<HTMLProgressElement>('progress');
  bar.max = Math.max(1, e.total);
  bar.value = e.done;
  $('progress-text').textContent = `${e.task}: ${e.done}/${e.total}${e.unit ? ` ${e.unit}s` : ''}${e.detail ? ` · ${e.detail}` : ''}${e.etaS !== null ? ` · ${Math.ceil(e.etaS)} s left` : ''}`;
}

let lagTimer = 0;
async function job<T>(title: string, f: () => Promise<T>): Promise<T | null> {
  // a click while a job runs is ignored; while the worker is restored after a cancel, the job waits for it
  if (runner.busy && !runner.restoringWorker) return null;
  clearMessage();
  document.body.classList.add('busy');
  $('job').hidden = false;
  $('job-title').textContent = title;
  $('progress-text').textContent = 'starting…';
  $<HTMLProgressElement>('progress').removeAttribute('value');
  let last = performance.now();
  lagTimer = window.setInterval(() => {
    const now = performance.now();
    state.maxLagMs = Math.max(state.maxLagMs, now - last - 50);
    last = now;
  }, 50);
  try {
    await runner.ready();
    return await f();
  } catch (e) {
    if (e instanceof JobError && e.info.stack) console.warn(e.info.stack);
    showMessage(describe(e), e instanceof JobError && e.info.code === 'interrupted' ? 'info' : 'error');
    return null;
  } finally {
    clearInterval(lagTimer);
    document.body.classList.remove('busy');
    $('job').hidden = true;
  }
}

// ── 1 open, 2 inspect ─────────────────────────────────────────────────────────────────────────

async function open({ files, label, folder }: Picked): Promise<void> {
  if (!files.length) return;
  await job(`Opening ${label}`, async () => {
    $('open-status').textContent = `reading ${label}…`;
    try {
      const r = await runner.run<'opened'>({ op: 'open', files, folder });
      state.files = files;
      state.folder = folder;
      state.label = label;
      state.inspect = r.report;
      state.outputs = [];
      state.evals.clear();
      $('open-status').textContent = `${label}: ${files.length} file${files.length > 1 ? 's' : ''}, ${mb(files.reduce((a, f) => a + f.blob.size, 0))}`;
      $('inspect-body').innerHTML = inspectHtml(r.report, label);
      // a long tensor table is built when first opened (render.ts: TENSOR_ROWS_OPEN)
      const tensors = $<HTMLDetailsElement>('tensors');
      if (!tensors.open) tensors.addEventListener('toggle', () => tensors.open && !tensors.querySelector('table') && tensors.insertAdjacentHTML('beforeend', tensorTableHtml(r.report)));
      for (const id of ['inspect', 'quantize', 'measure']) $(id).hidden = false;
      renderOutputs();
      renderResults();
    } catch (e) {
      // the model that was open (if any) stays open in the worker's place: reopen it
      $('open-status').textContent = state.files.length ? `${state.label} is still open` : 'no model open';
      if (state.files.length) await runner.run({ op: 'restore', files: state.files, folder: state.folder, outputs: state.outputs.map((o) => o.output) }).catch(() => undefined);
      throw e;
    }
  });
}

// ── 3 quantize ────────────────────────────────────────────────────────────────────────────────

function defaultOutName(scheme: string, method: string, format: string): string {
  let ggml = false;
  try {
    ggml = parseScheme(scheme).kind === 'ggml';
  } catch {
    ggml = false;
  }
  const stem = (state.label.replace(/\.(gguf|bin|safetensors)$/i, '') || 'model').replace(/[^\w.-]+/g, '_');
  return `${stem}-${method}-${scheme}${ggml && (format === '' || format === 'gguf') ? '.gguf' : ''}`;
}

function textChoice(select: string, file: string): TextChoice {
  const f = input(file).files?.[0];
  if ($<HTMLSelectElement>(select).value === 'file') {
    if (!f) throw new JobError({ code: 'bad_option', message: 'choose a text file first', context: { field: select } });
    return { kind: 'file', name: f.name, blob: f };
  }
  return { kind: 'builtin' };
}

const optInt = (id: string): number | undefined => (input(id).value === '' ? undefined : Number(input(id).value));

async function quantize(): Promise<void> {
  await job('Quantizing', async () => {
    const scheme = input('scheme').value.trim();
    const method = $<HTMLSelectElement>('method').value as QuantizeJob['method'];
    const format = $<HTMLSelectElement>('format').value;
    const j: QuantizeJob = {
      scheme,
      method,
      format: (format || undefined) as QuantizeJob['format'],
      out: input('out-name').value.trim() || defaultOutName(scheme, method, format),
      calib: textChoice('calib', 'calib-file'),
      seed: Number(input('seed').value) || 0,
      windows: optInt('windows'),
      seqLen: optInt('seq-len'),
      actOrder: input('act-order').checked,
      targetBpw: input('target-bpw').value === '' ? undefined : Number(input('target-bpw').value),
      verify: input('verify').checked,
    };
    const r = await runner.run<'quantized'>({ op: 'quantize', job: j }, onProgress);
    state.outputs = state.outputs.filter((o) => o.output.name !== r.output.name);
    state.outputs.push({ output: r.output, report: r.report, ranOn: r.ranOn });
    state.evals.delete(r.output.name);
    renderOutputs();
  });
}

function renderOutputs(): void {
  const body = $('outputs').querySelector('tbody')!;
  body.innerHTML = state.outputs
    .map(
      (o, i) =>
        `<tr><td>${esc(o.output.name)}${o.output.folder ? '/' : ''}</td><td>${esc(o.report.scheme)}</td><td>${esc(o.report.method)}</td>` +
        `<td>${o.output.files.length} (${mb(o.output.files.reduce((a, f) => a + f.blob.size, 0))})</td>` +
        `<td>${o.report.quality.windows ? o.report.quality.kld.toExponential(2) : '–'}</td><td title="${esc(o.ranOn)}">${o.report.seconds.toFixed(1)} s${o.ranOn === 'in memory' ? '' : ` <small>(${esc(o.ranOn)})</small>`}</td>` +
        `<td><button class="download" data-i="${i}">Download${o.output.folder ? ' .zip' : ''}</button></td></tr>`,
    )
    .join('');
}

async function download(i: number): Promise<void> {
  const o = state.outputs[i];
  if (!o) return;
  try {
    const picker = input('picker').checked;
    if (o.output.folder) await saveFolder(o.output.name, o.output.files, picker);
    else await saveFile(o.output.name, o.output.files.find((f) => f.name === o.output.name)!.blob, picker);
  } catch (e) {
    showMessage(`download failed: ${describe(e)}`);
  }
}

// ── 4 measure ─────────────────────────────────────────────────────────────────────────────────

/** Bits per weight over the quantized linears, from the per-tensor types the quantizer chose (as the sweep counts them). */
function linearBpw(tensors: QuantizeReport['tensors']): number {
  const shapes = new Map(state.inspect?.tensors.map((t) => [t.name, t.shape]) ?? []);
  let bits = 0;
  let n = 0;
  for (const t of tensors) {
    const shape = shapes.get(t.name);
    if (!shape || shape.length !== 2) continue;
    const up = t.type.toUpperCase();
    const count = shape[0] * shape[1];
    bits += (isGgmlType(up) ? ggmlBitsPerWeight(up as GgmlType) : schemeBits(t.type, shape)) * count;
    n += count;
  }
  return n ? bits / n : 32;
}

/** A scheme's bits per weight on a [N, K] tensor; a group wider than K (stories260K's 64 columns under -g128) is counted as one group per row. */
function schemeBits(type: string, shape: number[]): number {
  try {
    return bitsPerWeight(parseScheme(type), shape);
  } catch {
    return bitsPerWeight(parseScheme(type.replace(/-g\d+/, `-g${shape[1]}`)), shape);
  }
}

function points(): SweepPointResult[] {
  const out: SweepPointResult[] = [];
  const base = state.evals.get('model');
  if (base) {
    out.push({ id: 'base-f32', method: 'base', scheme: 'f32', bits: 32, format: 'none', fileBytes: 0, bpw: 32, nll: base.nll, ppl: base.ppl, pplLo: base.pplCi95[0], pplHi: base.pplCi95[1], kld: 0, kldLo: 0, kldHi: 0, dnllLo: 0, dnllHi: 0, top1: 1, tokensPerS: base.tokensPerSecond, quantizeS: 0, onFrontier: false, command: '' });
  }
  for (const o of state.outputs) {
    const r = state.evals.get(o.output.name);
    if (!r?.base) continue;
    const bpw = linearBpw(o.report.tensors);
    out.push({
      id: o.output.name,
      method: o.report.method,
      scheme: o.report.scheme,
      bits: Math.round(bpw * 100) / 100,
      format: o.report.format,
      fileBytes: o.output.files.filter((f) => !f.name.endsWith('.manifest.json')).reduce((a, f) => a + f.blob.size, 0),
      bpw,
      nll: r.nll,
      ppl: r.ppl,
      pplLo: r.pplCi95[0],
      pplHi: r.pplCi95[1],
      kld: r.base.kld,
      kldLo: r.base.kldCi95[0],
      kldHi: r.base.kldCi95[1],
      dnllLo: r.base.deltaNllCi95[0],
      dnllHi: r.base.deltaNllCi95[1],
      top1: r.base.top1Agreement,
      tokensPerS: r.tokensPerSecond,
      quantizeS: o.report.seconds,
      onFrontier: false,
      command: '',
      out: o.output.name,
    });
  }
  markFrontiers(out);
  return out;
}

function record(ps: SweepPointResult[]): SweepRecord {
  const base = state.evals.get('model');
  return {
    tool: { name: 'bitscale', version: '0.1.0' },
    createdAt: new Date().toISOString(),
    model: { path: state.label, sha256: '', parameters: state.inspect?.parameters ?? 0, description: state.inspect?.config.architecture ?? '' },
    text: { path: base?.text.replace(/^\/in\/(text\/)?/, '') ?? '', sha256: '', tokens: base?.tokens ?? 0, protocol: base?.protocol ?? 'windows', ctx: base?.ctx },
    seed: Number(input('seed').value) || 0,
    points: ps,
    sensitivity: [],
    recommendations: shipRecommendations(ps),
    elapsedS: 0,
  };
}

function renderResults(): void {
  const ps = points();
  if (!ps.length) {
    $('results').innerHTML = $('chart').innerHTML = $('ship').innerHTML = '';
    return;
  }
  $('results').innerHTML = resultsHtml(ps) + `<p><button id="report-html">Download the report (report.html)</button></p>`;
  const quantized = ps.filter((p) => p.method !== 'base');
  $('chart').innerHTML = quantized.length ? frontierChart(ps, 'kld', { narrow: window.innerWidth < 700 }) : '';
  $('ship').innerHTML = quantized.length ? shipHtml(shipRecommendations(ps)) : '';
}

async function evaluate(): Promise<void> {
  await job('Evaluating', async () => {
    const text = textChoice('eval-text', 'eval-file');
    const base = { text, ctx: optInt('ctx'), maxTokens: optInt('max-tokens') };
    state.evals.clear();
    for (const target of ['model', ...state.outputs.map((o) => o.output.name)]) {
      $('job-title').textContent = `Evaluating ${target === 'model' ? 'the float model' : target}`;
      const r = await runner.run<'evaluated'>({ op: 'eval', job: { ...base, target } }, onProgress);
      state.evals.set(target, r.report);
      renderResults();
    }
  });
}

// ── wiring ────────────────────────────────────────────────────────────────────────────────────

$('schemes').innerHTML = SCHEMES.map(([s, what]) => `<option value="${s}"${what ? ` label="${s} (${what})"` : ''}>`).join('');
input('files').addEventListener('change', () => {
  const p = pickedFiles(input('files').files, false);
  input('files').value = '';
  void open(p);
});
input('folder').addEventListener('change', () => {
  const p = pickedFiles(input('folder').files, true);
  input('folder').value = '';
  void open(p);
});
const drop = $('drop');
drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  if (!e.dataTransfer) return;
  droppedFiles(e.dataTransfer)
    .then((p) => open(p))
    .catch((err) => showMessage(describe(err)));
});
for (const [sel, file] of [['calib', 'calib-file'], ['eval-text', 'eval-file']]) {
  $(sel).addEventListener('change', () => {
    if ($<HTMLSelectElement>(sel).value === 'file') input(file).click();
  });
  input(file).addEventListener('change', () => {
    const f = input(file).files?.[0];
    const opt = $<HTMLSelectElement>(sel).options[1];
    opt.textContent = f ? `file: ${f.name}` : 'a text file…';
  });
}
$('run-quantize').addEventListener('click', () => void quantize());
$('run-eval').addEventListener('click', () => void evaluate());
$('cancel').addEventListener('click', () => void runner.cancel());
$('outputs').addEventListener('click', (e) => {
  const b = (e.target as HTMLElement).closest('button.download') as HTMLButtonElement | null;
  if (b) void download(Number(b.dataset.i));
});
$('results').addEventListener('click', (e) => {
  if ((e.target as HTMLElement).id !== 'report-html') return;
  const html = renderSweepReport(record(points()));
  void saveFile('report.html', new Blob([html], { type: 'text/html' }), input('picker').checked);
});
const applySettings = () => {
  void job('Settings', async () => {
    const r = await runner.run<'settings'>({ op: 'settings', webgpu: input('webgpu').checked, threads: Number(input('threads').value) || 1 });
    $('settings').dataset.providers = r.providers.join(',');
    $('backend').textContent = `evaluation runs on ${r.providers[0] === 'webgpu' ? 'WebGPU (WASM where an operator has no WebGPU kernel)' : input('webgpu').checked ? 'WASM (WebGPU asked for, but the browser gave no adapter)' : 'WASM'}, ${Number(input('threads').value) || 1} thread(s)${crossOriginIsolated ? '' : ' (one: the page is not cross-origin isolated)'}`;
  });
};
input('webgpu').disabled = !('gpu' in navigator);
input('webgpu').addEventListener('change', applySettings);
input('threads').max = String(navigator.hardwareConcurrency || 1);
input('threads').disabled = !crossOriginIsolated;
input('threads').addEventListener('change', applySettings);
if (!('showSaveFilePicker' in window)) {
  input('picker').checked = false;
  input('picker').disabled = true;
}

/** For tests and the curious: the page's state (outputs as Blobs, evaluation reports). */
(window as unknown as { bitscale: unknown }).bitscale = {
  state,
  runner,
  /** What the page and its job worker are doing: the test harness's stall watchdog prints it. */
  debug: async () => ({
    busy: document.body.classList.contains('busy'),
    title: $('job-title').textContent,
    progress: $('progress-text').textContent,
    message: $('message').hidden ? null : $('message').textContent,
    outputs: state.outputs.map((o) => o.output.name),
    evals: [...state.evals.keys()],
    jobs: runner.debugState(),
    worker: (await runner.probe(3000)) ?? 'no answer within 3 s (a long synchronous step, or the worker is gone)',
  }),
};
