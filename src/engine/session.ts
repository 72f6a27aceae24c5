// The one place that imports onnxruntime-node: session creation (threads, optimisation, the
// MatMulNBits accuracy pin), feeding host tensors and reading outputs back as host tensors. A session
// opened with `runtime: 'portable'` runs on onnxruntime-web's WASM kernels instead (ort-portable.ts):
// the same bytes on every machine and in the page, for the float results that calibration feeds on.
// Models with external data are written to a private temporary directory and loaded from its path
// (onnxruntime refuses external data for models loaded from bytes); the directory is removed once
// the session exists, since the runtime has mapped or copied what it needs.

import { mkdtempSync, rmSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { BitscaleError, ConfigError, ShapeError } from '../core/errors.js';
import { numel, type Tensor } from '../core/tensor.js';
import type { DType } from '../core/dtype.js';
import type { Graph } from './ir.js';
import { lowerToOnnx, type LowerOptions, type LoweredModel } from './lower.js';
import { createPortableSession } from './ort-portable.js';

/** false in the browser bundle, whose onnxruntime stand-in (web/shims/ort.ts) says so */
const PREALLOCATED_OUTPUTS = (ort as unknown as { preallocatedOutputs?: boolean }).preallocatedOutputs !== false;

/**
 * Which onnxruntime computes: 'native' (onnxruntime-node, MLAS kernels chosen per CPU: fastest) or
 * 'portable' (onnxruntime-web's WebAssembly kernels: the same float bytes on every machine and in
 * the page). In the page's bundle both are onnxruntime-web; 'portable' there also keeps WebGPU out.
 */
export type OrtRuntime = 'native' | 'portable';

export interface SessionOptions {
  /** the runtime (default 'native') */
  runtime?: OrtRuntime;
  /** intra-op threads (default: the cores this process may use, os.availableParallelism(); the portable runtime keeps its own) */
  threads?: number;
  /** graph optimisation level (default 'all') */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** skip weight prepacking: faster load and far less memory, slower batched matmuls */
  disablePrepacking?: boolean;
  /** bytes above which constants go to external data (default 16 MiB of constants in total) */
  externalDataThreshold?: number;
  /** onnxruntime's CPU memory arena (default on); off returns freed activations to the allocator */
  memoryArena?: boolean;
  /** onnxruntime's memory pattern (default on: one block sized for the whole run's activations, planned
   * ahead); off allocates each activation when it is produced, which lowers the peak */
  memoryPattern?: boolean;
  /**
   * whether onnxruntime's pool threads spin between runs waiting for work (default on). Off for
   * callers that interleave many short runs with work of their own (fast GPTQ's GEMMs): spinning
   * threads burn a core each while the caller's thread works, which on a 2-core machine halves it
   */
  spinning?: boolean;
  /** write onnxruntime's per-node profile (JSON, Chrome trace format) to files starting with this path */
  profilePrefix?: string;
  /** write the graph as onnxruntime runs it, after its optimisations (constant folding included), to this path */
  optimizedModelPath?: string;
}

const ORT_TYPE: Partial<Record<DType, ort.Tensor.Type>> = {
  F32: 'float32', F64: 'float64', F16: 'float16', I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8',
  U8: 'uint8', U16: 'uint16', U32: 'uint32', U64: 'uint64', BOOL: 'bool',
};
const FROM_ORT: Record<string, DType> = Object.fromEntries(Object.entries(ORT_TYPE).map(([k, v]) => [v, k as DType]));

function toOrt(name: string, t: Tensor): ort.Tensor {
  const type = ORT_TYPE[t.dtype];
  if (!type) throw new ConfigError('unsupported', 'tensor dtype cannot be fed to onnxruntime', { tensor: name, found: t.dtype });
  if (t.data.length !== numel(t.shape)) throw new ShapeError('shape_mismatch', 'feed data does not match its shape', { tensor: name, expected: numel(t.shape), found: t.data.length });
  return new ort.Tensor(type, t.data as never, t.shape);
}

function fromOrt(name: string, t: ort.Tensor): Tensor {
  const dtype = FROM_ORT[t.type];
  if (!dtype) throw new BitscaleError('unsupported', 'onnxruntime returned an unsupported tensor type', { tensor: name, found: t.type });
  return { dtype, shape: [...t.dims], data: t.data as never } as Tensor;
}

/** sessions opened by this process (names each one's files) */
let opened = 0;

function totalConstBytes(g: Graph): number {
  let n = 0;
  for (const t of g.constants.values()) n += t.data?.byteLength ?? 0;
  return n;
}

/** An onnxruntime session over one lowered graph, with its input and output metadata. */
export class EngineSession {
  private constructor(
    private readonly session: ort.InferenceSession,
    /** whether the runtime writes outputs into preallocated buffers (onnxruntime-web does not) */
    private readonly preallocated: boolean,
    readonly inputs: ReadonlyMap<string, { dtype: string; shape: readonly number[] }>,
    readonly outputNames: readonly string[],
  ) {}

  /** Lowers `g` and opens a session on it. */
  static async fromGraph(g: Graph, opts: SessionOptions = {}, lower: LowerOptions = {}): Promise<EngineSession> {
    const big = totalConstBytes(g) > (opts.externalDataThreshold ?? 16 << 20);
    const tag = `session-${process.pid}-${++opened}`;
    const location = `${tag}.bin`;
    const lowered = lowerToOnnx(g, big && !lower.external ? { ...lower, external: { location } } : lower);
    const inputs = new Map<string, { dtype: string; shape: readonly number[] }>();
    for (const i of g.inputs) inputs.set(i.name, { dtype: i.value.dtype, shape: i.value.shape });
    if (lower.paramsAsInputs) for (const [id, p] of g.params) inputs.set(p, { dtype: g.constants.get(id)!.dtype, shape: g.constants.get(id)!.shape });
    const s = await openLowered(lowered, opts, tag);
    return new EngineSession(s, preallocates(opts), inputs, lowered.outputNames);
  }

  /** Opens a session on ONNX bytes (no external data) or a path. */
  static async fromOnnx(model: Uint8Array | string, opts: SessionOptions = {}): Promise<EngineSession> {
    const s = await createSession(model, opts);
    const inputs = new Map<string, { dtype: string; shape: readonly number[] }>();
    for (const n of s.inputNames) inputs.set(n, { dtype: '?', shape: [] });
    return new EngineSession(s, preallocates(opts), inputs, s.outputNames);
  }

  /**
   * Runs with the given feeds; returns the requested outputs (default all) as host tensors. Outputs
   * named in `into` are written into those tensors' arrays (preallocated; they may be the arrays of
   * feeds that the graph reads only before writing them, such as an accumulator) and returned as is.
   */
  async run(feeds: Record<string, Tensor>, outputs?: readonly string[], into?: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    const f: Record<string, ort.Tensor> = {};
    for (const [name, meta] of this.inputs) {
      const t = feeds[name];
      if (!t) throw new ConfigError('bad_option', 'missing feed for a graph input', { field: name, expected: `${meta.dtype} [${meta.shape.join(', ')}]`, found: 'nothing' });
      if (meta.dtype !== '?' && (t.dtype !== meta.dtype || t.shape.length !== meta.shape.length || t.shape.some((d, i) => d !== meta.shape[i]))) {
        throw new ShapeError('shape_mismatch', 'feed does not match the graph input', { tensor: name, expected: `${meta.dtype} [${meta.shape.join(', ')}]`, found: `${t.dtype} [${t.shape.join(', ')}]` });
      }
      f[name] = toOrt(name, t);
    }
    let res: ort.InferenceSession.ReturnType;
    // onnxruntime-web (the browser bundle's stand-in) takes preallocated CPU outputs but does not
    // write into them (measured with 1.30: the buffer comes back unchanged); there the outputs are
    // fetched and copied into the caller's buffers below
    if (into && !this.preallocated) {
      res = await this.session.run(f, [...(outputs ?? this.outputNames)]);
      const out: Record<string, Tensor> = {};
      for (const [k, v] of Object.entries(res)) {
        const dst = into[k];
        if (!dst) {
          out[k] = fromOrt(k, v as ort.Tensor);
          continue;
        }
        const got = (v as ort.Tensor).data as unknown as ArrayLike<number>;
        const want = dst.data as unknown as { set(a: ArrayLike<number>): void; length: number };
        if (got.length !== want.length) throw new ShapeError('shape_mismatch', 'onnxruntime returned an output of another size than the buffer given for it', { tensor: k, expected: want.length, found: got.length });
        want.set(got);
        out[k] = dst;
      }
      return out;
    }
    if (into) {
      const fetches: Record<string, ort.Tensor | null> = {};
      for (const n of outputs ?? this.outputNames) fetches[n] = into[n] ? toOrt(n, into[n]) : null;
      res = await this.session.run(f, fetches);
    } else {
      res = outputs ? await this.session.run(f, [...outputs]) : await this.session.run(f);
    }
    const out: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(res)) out[k] = into?.[k] ?? fromOrt(k, v as ort.Tensor);
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function preallocates(opts: SessionOptions): boolean {
  return opts.runtime === 'portable' ? false : PREALLOCATED_OUTPUTS;
}

/** A session on the chosen runtime, from bytes (no external data) or a path. */
function createSession(model: string | Uint8Array, opts: SessionOptions): Promise<ort.InferenceSession> {
  // onnxruntime-web's session has the same run/release surface as onnxruntime-node's
  if (opts.runtime === 'portable') return createPortableSession(model, ortOptions(opts) as never) as unknown as Promise<ort.InferenceSession>;
  return typeof model === 'string' ? ort.InferenceSession.create(model, ortOptions(opts)) : ort.InferenceSession.create(model, ortOptions(opts));
}

/**
 * Intra-op threads of a native session not told otherwise: BITSCALE_ORT_THREADS when set (a positive
 * integer; the test runner sets 1, since it runs two test files at once on two cores), else the
 * cores this process may use.
 */
export function defaultNativeThreads(env: Record<string, string | undefined> = process.env): number {
  const v = env.BITSCALE_ORT_THREADS;
  if (v === undefined || v === '') return availableParallelism();
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError('bad_option', 'BITSCALE_ORT_THREADS must be a positive integer', { field: 'BITSCALE_ORT_THREADS', expected: 'an integer ≥ 1', found: v });
  return n;
}

/** onnxruntime's session options for ours (exported for tests). */
export function ortOptions(opts: SessionOptions): ort.InferenceSession.SessionOptions {
  const session: Record<string, string> = {
    // DequantizeLinear→MatMul fusions into MatMulNBits must stay exact fp32 (RUNTIME-NOTES).
    qdq_matmulnbits_accuracy_level: '0',
  };
  if (opts.disablePrepacking) session.disable_prepacking = '1';
  if (opts.spinning === false) session['intra_op.allow_spinning'] = '0';
  const o: ort.InferenceSession.SessionOptions = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: opts.optimization ?? 'all',
    logSeverityLevel: 3,
    extra: { session },
  };
  // onnxruntime's own default is its count of physical cores: on one of the 2-vCPU AMD VMs this
  // project runs on it counted 1 where Linux lists two cores (MatMul 118 GFLOPS by default, 223–252
  // with 2 threads, 6 December 2026), so the native runtime is told the cores this process may use
  if (opts.threads !== undefined) o.intraOpNumThreads = opts.threads;
  else if (opts.runtime !== 'portable') o.intraOpNumThreads = defaultNativeThreads();
  if (opts.memoryArena === false) o.enableCpuMemArena = false;
  if (opts.memoryPattern === false) o.enableMemPattern = false;
  if (opts.optimizedModelPath) o.optimizedModelFilePath = opts.optimizedModelPath;
  if (opts.profilePrefix) {
    o.enableProfiling = true;
    o.profileFilePrefix = opts.profilePrefix;
  }
  return o;
}

async function openLowered(l: LoweredModel, opts: SessionOptions, tag: string): Promise<ort.InferenceSession> {
  if (!l.externalData && !l.storedDir) return createSession(l.model, opts);
  // onnxruntime-web takes external data as bytes: no temporary files
  if (opts.runtime === 'portable' && !l.storedDir) {
    const parts = l.externalData!.parts;
    const data = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    let at = 0;
    for (const p of parts) {
      data.set(p, at);
      at += p.byteLength;
    }
    return createPortableSession(l.model, ortOptions(opts) as never, [{ path: l.externalData!.location, data }]) as unknown as Promise<ort.InferenceSession>;
  }
  // stored constants are named relative to their file's directory, so the model is written beside
  // them (under names of its own, removed once the session exists); otherwise a private directory
  const dir = l.storedDir ?? mkdtempSync(join(tmpdir(), 'bitscale-onnx-'));
  const modelPath = join(dir, `${tag}.onnx`);
  const extPath = l.externalData ? join(dir, l.externalData.location) : null;
  try {
    writeFileSync(modelPath, l.model);
    if (extPath) {
      const fd = openSync(extPath, 'w');
      try {
        for (const p of l.externalData!.parts) writeSync(fd, p);
      } finally {
        closeSync(fd);
      }
    }
    return await createSession(modelPath, opts);
  } finally {
    if (l.storedDir) {
      rmSync(modelPath, { force: true });
      if (extPath) rmSync(extPath, { force: true });
    } else rmSync(dir, { recursive: true, force: true });
  }
}
