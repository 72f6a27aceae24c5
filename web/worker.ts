// The page's job worker: runs bitscale's own pipeline (src/pipeline: inspect, quantize, eval),
// the very modules the CLI runs, over the page's filesystem (web/shims/vfs.ts), so the page stays
// responsive while a job computes. The user's files are mounted as Blobs and read in slices;
// outputs are handed back as Blobs. One job at a time; cancel aborts through the pipeline's
// AbortSignal (the page terminates the worker if a long step does not return in time).
import { env } from 'onnxruntime-web';
import { BitscaleError, ConfigError, FormatError } from '../src/core/errors.js';
import type { ProgressEvent } from '../src/core/progress.js';
import { inspectModel } from '../src/pipeline/inspect.js';
import { quantizeModel } from '../src/pipeline/quantize/quantize.js';
import { runEval } from '../src/pipeline/eval.js';
import { BUILTIN_CALIBRATION_TEXT } from '../src/pipeline/calibrate/text.table.js';
import { mount, mkdirp, listDir, lookup, removePath, fileBlob, statPath, readBlob, blobReadsInFlight, blobReadRetries } from './shims/vfs.js';
import { providers } from './shims/ort.js';
import { GgmlWebPool } from '../src/quant/ggml/wasm/web-pool.js';
import { InlineRowsPool, type RowsPool } from '../src/quant/ggml/wasm/worker-queue.js';
import { quantizeGgml } from '../src/quant/ggml/index.js';
import type { ErrorInfo, InFile, Output, OutFile, Reply, Request, TextChoice, WorkerStatus } from './protocol.js';

const OUT_DIR = '/out';
const BUILTIN_TEXT = '/in/builtin.txt';
/** the user's text files (the current folder: not under /in, which a model folder replaces) */
const TEXT_DIR = '/text';

mkdirp(OUT_DIR);
mkdirp('/tmp');
mkdirp(TEXT_DIR);
process.chdir(TEXT_DIR);
env.wasm.wasmPaths = new URL('./ort/', self.location.href).href;
env.wasm.numThreads = 1;
env.logLevel = 'error';

let modelPath: string | null = null;
/** where the model's files are mounted: /in/<folder name> (the name GGUF metadata takes), or /in/files for loose files */
let modelDir = '/in/files';
let current: { id: number; op: string; at: number; abort: AbortController } | null = null;
/** the Threads setting: onnxruntime-web's threads and the ggml kernel workers of the streaming RTN path */
let threads = 1;

// tensors in flight in the streaming RTN path: one tensor at a time in the page (the CLI reads ahead
// 256 MiB), so the tab holds about one tensor plus the output's Blob parts not yet folded
const PAGE_LOOKAHEAD = 1;

/**
 * The kernel pool of the streaming RTN path: `threads` Web Workers over shared memory where the
 * page is cross-origin isolated, else the kernels on this worker (plain buffers). Same bytes.
 */
function rowsPool(): { pool: RowsPool; used: () => string | null } {
  const web = self.crossOriginIsolated && typeof SharedArrayBuffer !== 'undefined';
  // started at the first rows job (a GPTQ or in-memory job never starts kernel workers) and
  // terminated with the job: no idle worker isolate or WebAssembly memory outlives it
  let inner: RowsPool | null = null;
  const start = (): RowsPool => {
    if (inner) return inner;
    const p = web ? new GgmlWebPool(() => new Worker(new URL('./kernels.js', self.location.href), { type: 'module' }) as never, threads) : new InlineRowsPool(quantizeGgml);
    inner = p;
    if (p instanceof GgmlWebPool) debugPools.add(p);
    return p;
  };
  let jobs = 0;
  const pool: RowsPool = {
    threads: web ? threads : 1,
    quantizeGgmlRows: (j) => (jobs++, start().quantizeGgmlRows(j)),
    close: () => {
      if (inner instanceof GgmlWebPool) debugPools.delete(inner);
      return inner?.close();
    },
  };
  // what the page shows of how the job ran
  const used = () => (jobs === 0 ? null : web ? `streamed, ${threads} kernel Web Worker${threads > 1 ? 's' : ''}` : 'streamed, kernels on the job worker (no cross-origin isolation)');
  return { pool, used };
}

/** the kernel pools alive now (for the status dump) */
const debugPools = new Set<GgmlWebPool>();
/** the last message posted to the page: what and when (for the status dump) */
let lastPost = { what: 'none', at: Date.now() };
/** rejections nobody handled, newest last (at most 10): a stall's dump shows them */
const unhandled: string[] = [];
self.addEventListener('unhandledrejection', (ev: PromiseRejectionEvent) => {
  const e = ev.reason as Error;
  unhandled.push(`${new Date().toISOString()} ${e?.stack ?? String(e)}`);
  if (unhandled.length > 10) unhandled.shift();
  console.error('bitscale job worker: unhandled rejection', e);
});

const post = (r: Reply): void => {
  lastPost = { what: r.type === 'progress' ? `progress ${r.event.task} ${r.event.done}/${r.event.total}` : r.type, at: Date.now() };
  (self as unknown as Worker).postMessage(r);
};

/** What the worker is doing, answered at once between a job's steps (a job that waits on a promise answers; one in a long synchronous loop answers after it). */
function status(): WorkerStatus {
  const now = Date.now();
  return {
    current: current ? { id: current.id, op: current.op, ageMs: now - current.at } : null,
    lastPost: { what: lastPost.what, ageMs: now - lastPost.at },
    kernelPools: [...debugPools].map((p) => p.state()),
    blobReads: blobReadsInFlight(now),
    blobReadRetries: blobReadRetries.count,
    unhandled: [...unhandled],
    crossOriginIsolated: self.crossOriginIsolated,
  };
}

function errorInfo(e: unknown): ErrorInfo {
  const stack = (e as Error)?.stack;
  if (e instanceof BitscaleError) return { code: e.code, message: e.message, context: { ...(e.context as Record<string, unknown>) }, stack };
  const err = e as Error;
  return { code: 'internal', message: err?.message ?? String(e), context: {}, stack };
}

/** Progress at most every 100 ms per task (plus each task's first and last event). */
function progress(id: number): (e: ProgressEvent) => void {
  const last = new Map<string, number>();
  return (e) => {
    const now = performance.now();
    const t = last.get(e.task) ?? -1e9;
    if (now - t < 100 && e.done > 0 && e.done < e.total) return;
    last.set(e.task, now);
    post({ id, type: 'progress', event: e });
  };
}

const MAGIC_GGUF = 0x46554747;

/** Which mounted path is the model, as a user would have pointed the CLI at it. */
async function findModel(files: InFile[]): Promise<string> {
  const MODEL_DIR = modelDir;
  const names = files.map((f) => f.name);
  if (names.includes('config.json')) return MODEL_DIR;
  if (names.some((n) => /\.safetensors(\.index\.json)?$/.test(n))) {
    throw new ConfigError('missing_file', 'this Hugging Face folder has no config.json', {
      file: MODEL_DIR,
      expected: 'config.json beside the *.safetensors files',
      found: names.join(', '),
      hint: 'choose the whole model folder, or drop config.json together with the safetensors and tokenizer.json',
    });
  }
  for (const f of files) {
    if (f.blob.size >= 4) {
      const head = await readBlob(f.blob, 0, 4);
      if (new DataView(head.buffer).getUint32(0, true) === MAGIC_GGUF) return `${MODEL_DIR}/${f.name}`;
    }
  }
  const side = (n: string) => /^(tokenizer|tok\d*)\.(bin|json|model)$/.test(n) || /\.(json|txt|md)$/.test(n);
  const cands = files.filter((f) => !side(f.name)).sort((a, b) => b.blob.size - a.blob.size);
  if (!cands.length) {
    throw new FormatError('missing_file', 'no model file among the files opened', {
      found: names.join(', ') || 'nothing',
      hint: 'open a GGUF file, a llama2.c checkpoint with its tokenizer.bin, or a Hugging Face folder (config.json, *.safetensors, tokenizer.json)',
    });
  }
  return `${MODEL_DIR}/${cands[0].name}`;
}

function mountModel(files: InFile[], folder: string | null): void {
  removePath('/in', { recursive: true, force: true });
  modelDir = folder ? `/in/${folder.replace(/[/\\]/g, '_')}` : '/in/files';
  for (const f of files) mount(`${modelDir}/${f.name}`, f.blob);
}

function textPath(t: TextChoice): string {
  if (t.kind === 'builtin') {
    if (!lookup(BUILTIN_TEXT)) mount(BUILTIN_TEXT, new Blob([BUILTIN_CALIBRATION_TEXT]));
    return BUILTIN_TEXT;
  }
  // the user's text under its own name in the current folder: the pipeline (and so the manifest,
  // the eval report) names it as the CLI names `--calib NAME` run beside the file
  const name = t.name.replace(/[/\\]/g, '_');
  mount(`${TEXT_DIR}/${name}`, t.blob);
  return name;
}

function collect(root: string, rel = ''): OutFile[] {
  const out: OutFile[] = [];
  for (const n of listDir(root)) {
    const p = `${root}/${n}`;
    if (statPath(p).isDirectory()) out.push(...collect(p, `${rel}${n}/`));
    else out.push({ name: `${rel}${n}`, blob: fileBlob(p) });
  }
  return out;
}

function restoreOutput(o: Output): void {
  const base = `${OUT_DIR}/${o.name}`;
  removePath(base, { recursive: true, force: true });
  if (o.folder) for (const f of o.files) mount(`${base}/${f.name}`, f.blob);
  else for (const f of o.files) mount(f.name === o.name ? base : `${OUT_DIR}/${f.name}`, f.blob);
}

async function handle(m: Request): Promise<void> {
  const signal = current?.abort.signal;
  switch (m.op) {
    case 'open': {
      mountModel(m.files, m.folder);
      modelPath = null;
      const path = await findModel(m.files);
      const report = await inspectModel(path);
      modelPath = path;
      post({ id: m.id, type: 'opened', modelPath: path, report });
      return;
    }
    case 'restore': {
      mountModel(m.files, m.folder);
      modelPath = m.files.length ? await findModel(m.files) : null;
      for (const o of m.outputs) restoreOutput(o);
      post({ id: m.id, type: 'restored' });
      return;
    }
    case 'settings': {
      // navigator.gpu can be there with no adapter behind it (headless Chromium with --disable-gpu):
      // WebGPU only where an adapter answers, else the WASM backend
      const gpuApi = (navigator as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
      const gpu = m.webgpu && !!gpuApi && !!(await gpuApi.requestAdapter().catch(() => null));
      providers.list = gpu ? ['webgpu', 'wasm'] : ['wasm'];
      threads = Math.max(1, Math.floor(m.threads) || 1);
      env.wasm.numThreads = threads;
      post({ id: m.id, type: 'settings', providers: providers.list });
      return;
    }
    case 'quantize': {
      if (!modelPath) throw new ConfigError('bad_option', 'open a model first');
      const j = m.job;
      const out = `${OUT_DIR}/${j.out}`;
      removePath(out, { recursive: true, force: true });
      removePath(`${out}.manifest.json`, { force: true });
      const { pool, used } = rowsPool();
      const r = await quantizeModel({
        model: modelPath,
        out,
        format: j.format,
        scheme: j.scheme,
        method: j.method,
        calib: j.calib.kind === 'builtin' ? undefined : textPath(j.calib),
        seed: j.seed,
        windows: j.windows,
        seqLen: j.seqLen,
        actOrder: j.actOrder,
        targetBpw: j.targetBpw,
        verify: j.verify,
        checkLlamaCpp: false,
        // calibration always on onnxruntime-web's WASM kernels (never WebGPU): the CLI's
        // `--calib-runtime portable` runs the same kernels, so calibrated downloads equal its files
        calibRuntime: 'portable',
        // RTN to GGUF without the reload check streams tensor by tensor, its kernels on the pool
        rtnStream: { pool, lookahead: PAGE_LOOKAHEAD },
        overwrite: true,
        onProgress: progress(m.id),
        signal,
      }).finally(() => pool.close());
      const folder = statPath(out).isDirectory();
      const files = folder ? collect(out) : [{ name: j.out, blob: fileBlob(out) }];
      if (!folder && lookup(r.manifest)) files.push({ name: r.manifest.slice(OUT_DIR.length + 1), blob: fileBlob(r.manifest) });
      const report = { ...r };
      delete report.host;
      post({ id: m.id, type: 'quantized', report, output: { name: j.out, files, folder }, ranOn: used() ?? 'in memory' });
      return;
    }
    case 'eval': {
      if (!modelPath) throw new ConfigError('bad_option', 'open a model first');
      const j = m.job;
      const target = j.target === 'model' ? modelPath : `${OUT_DIR}/${j.target}`;
      const report = await runEval({
        model: target,
        text: textPath(j.text),
        base: j.target === 'model' ? undefined : modelPath,
        ctx: j.ctx,
        maxTokens: j.maxTokens,
        onProgress: progress(m.id),
        signal,
      });
      post({ id: m.id, type: 'evaluated', report });
      return;
    }
    case 'cancel':
    case 'status':
      return;
  }
}

self.onmessage = (ev: MessageEvent<Request>) => {
  const m = ev.data;
  if (m.op === 'cancel') {
    if (current && current.id === m.id) current.abort.abort();
    return;
  }
  if (m.op === 'status') {
    (self as unknown as Worker).postMessage({ id: m.id, type: 'status', status: status() } satisfies Reply);
    return;
  }
  current = { id: m.id, op: m.op, at: Date.now(), abort: new AbortController() };
  const mine = current;
  handle(m)
    .catch((e) => post({ id: m.id, type: 'error', error: errorInfo(e) }))
    .finally(() => {
      if (current === mine) current = null;
    });
};
