// Messages between the page (web/app.ts) and its job worker (web/worker.ts). Files travel as
// Blobs (File objects are Blobs): posting one hands over a reference, never the bytes.
import type { ProgressEvent } from '../src/core/progress.js';
import type { InspectReport } from '../src/pipeline/inspect.js';
import type { EvalReport } from '../src/pipeline/eval.js';
import type { QuantizeReport } from '../src/pipeline/quantize/quantize.js';

export interface InFile {
  /** path relative to the model's folder (a folder picker's webkitRelativePath minus the folder) */
  name: string;
  blob: Blob;
}

export interface OutFile {
  /** path relative to the output (a single file's own name, or a folder's members) */
  name: string;
  blob: Blob;
}

/** A text for calibration or evaluation: the built-in one or a file the user dropped. */
export type TextChoice = { kind: 'builtin' } | { kind: 'file'; name: string; blob: Blob };

export interface QuantizeJob {
  scheme: string;
  method: 'rtn' | 'gptq' | 'awq';
  /** output file or folder name (a name ending in .gguf is a GGUF file, as on the CLI) */
  out: string;
  format?: 'gguf' | 'safetensors' | 'fakequant' | 'onnx' | 'compressed-tensors';
  calib: TextChoice;
  seed: number;
  windows?: number;
  seqLen?: number;
  actOrder?: boolean;
  /** mixed precision: per-tensor ggml types chosen from measured sensitivity to this average (the CLI's --target-bpw) */
  targetBpw?: number;
  /** reload the output and compare its logits with the float model's (the CLI's default) */
  verify: boolean;
}

export interface EvalJob {
  /** 'model' for the float model, or an output's name */
  target: string;
  text: TextChoice;
  ctx?: number;
  maxTokens?: number;
}

export interface Output {
  name: string;
  /** a folder output (safetensors, ONNX): its files; a file output: one entry named like the output */
  files: OutFile[];
  folder: boolean;
}

export type Request =
  | { id: number; op: 'open'; files: InFile[]; folder: string | null }
  | { id: number; op: 'restore'; files: InFile[]; folder: string | null; outputs: Output[] }
  | { id: number; op: 'quantize'; job: QuantizeJob }
  | { id: number; op: 'eval'; job: EvalJob }
  | { id: number; op: 'cancel' }
  /** answered at once, outside the job queue: what the worker is doing (a stall's dump) */
  | { id: number; op: 'status' }
  | { id: number; op: 'settings'; webgpu: boolean; threads: number };

export interface ErrorInfo {
  code: string;
  message: string;
  context: Record<string, unknown>;
  /** where it was thrown (logged to the console, not shown) */
  stack?: string;
}

export type Reply =
  | { id: number; type: 'progress'; event: ProgressEvent }
  | { id: number; type: 'error'; error: ErrorInfo }
  | { id: number; type: 'opened'; modelPath: string; report: InspectReport }
  | { id: number; type: 'restored' }
  | { id: number; type: 'quantized'; report: Omit<QuantizeReport, 'host'>; output: Output; ranOn: string }
  | { id: number; type: 'evaluated'; report: EvalReport }
  | { id: number; type: 'settings'; providers: string[] }
  | { id: number; type: 'status'; status: WorkerStatus };

/** The job worker's own account of what it is doing (for a stall's dump; ages in ms). */
export interface WorkerStatus {
  current: { id: number; op: string; ageMs: number } | null;
  lastPost: { what: string; ageMs: number };
  kernelPools: { size: number; idle: number; running: { worker: number; ageMs: number }[]; queued: number; closed: boolean; broken: string | null }[];
  blobReads: { offset: number; length: number; got: number; ageMs: number; how: string }[];
  /** Blob reads that stalled and were done again (web/shims/vfs.ts) */
  blobReadRetries: number;
  unhandled: string[];
  crossOriginIsolated: boolean;
}
