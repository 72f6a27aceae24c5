// Seeded fuzzing of the command line around the model readers: the files a command reads besides
// the weights (tokenizer.json, config.json, generation_config.json, tok512.bin, a llama2.c header,
// GGUF metadata, both imatrix formats, evaluation and calibration text, law runs files, train
// configs) are mutated and the command is run in-process, as `bitscale …` would run it. Every case
// must end in exit 0 or a typed error (exit 1 or 2); exit 70 (an untyped crash) and a case slower
// than the hang limit are failures. Shared by the suite's short run (cli-fuzz.test.ts) and
// `npm run fuzz` (scripts/fuzz.ts).
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Rng } from '../../src/core/rng.js';
import { main } from '../../src/cli/main.js';
import { redirectOutput } from '../../src/cli/output.js';
import { mutateBytes, mutateGgufMetadata, mutateJson } from './mutate.js';

export const SHARED = resolve('..', 'shared');
const DEFAULT_MODEL = resolve('assets/default-model');

export interface Target {
  name: string;
  /** the file (relative to the work folder) each case replaces with a mutation of its original */
  file: string;
  mutate: 'bytes' | 'json' | 'gguf' | 'header';
  /** the command, with paths inside the work folder `d` */
  argv(d: string): string[];
  /** slow targets run fewer cases in the suite */
  weight: number;
}

export const TARGETS: Target[] = [
  { name: 'tokenizer.json', file: 'dm/tokenizer.json', mutate: 'json', weight: 3, argv: (d) => ['inspect', join(d, 'dm'), '--json'] },
  { name: 'config.json', file: 'dm/config.json', mutate: 'json', weight: 3, argv: (d) => ['inspect', join(d, 'dm'), '--json'] },
  { name: 'generation_config.json', file: 'dm/generation_config.json', mutate: 'json', weight: 1, argv: (d) => ['inspect', join(d, 'dm'), '--json'] },
  { name: 'tokenizer_config.json', file: 'dm/tokenizer_config.json', mutate: 'json', weight: 1, argv: (d) => ['inspect', join(d, 'dm'), '--json'] },
  { name: '--tokenizer tokenizer.json', file: 'tok.json', mutate: 'json', weight: 1, argv: (d) => ['inspect', join(d, 'stories260K.bin'), '--tokenizer', join(d, 'tok.json'), '--json'] },
  { name: 'tok512.bin', file: 'tok512.bin', mutate: 'bytes', weight: 3, argv: (d) => ['inspect', join(d, 'stories260K.bin'), '--json'] },
  { name: 'llama2.c header', file: 'stories260K.bin', mutate: 'header', weight: 2, argv: (d) => ['inspect', join(d, 'stories260K.bin'), '--json'] },
  { name: 'GGUF metadata', file: 'm.gguf', mutate: 'gguf', weight: 3, argv: (d) => ['inspect', join(d, 'm.gguf'), '--json'] },
  { name: 'imatrix.dat', file: 'im.dat', mutate: 'bytes', weight: 1, argv: (d) => ['quantize', join(d, 'stories260K.bin'), '--out', join(d, 'q.gguf'), '--scheme', 'q4_0', '--imatrix', join(d, 'im.dat'), '--no-verify', '--force', '--quiet'] },
  { name: 'imatrix.gguf', file: 'im.gguf', mutate: 'bytes', weight: 1, argv: (d) => ['quantize', join(d, 'stories260K.bin'), '--out', join(d, 'q.gguf'), '--scheme', 'q4_0', '--imatrix', join(d, 'im.gguf'), '--no-verify', '--force', '--quiet'] },
  { name: 'eval text', file: 't.txt', mutate: 'bytes', weight: 1, argv: (d) => ['eval', join(d, 'stories260K.bin'), '--text', join(d, 't.txt'), '--ctx', '16', '--max-windows', '1', '--json'] },
  { name: 'calibration text', file: 'c.txt', mutate: 'bytes', weight: 1, argv: (d) => ['imatrix', join(d, 'stories260K.bin'), '--out', join(d, 'o.dat'), '--format', 'dat', '--calib', join(d, 'c.txt'), '--windows', '1', '--seq-len', '8', '--force', '--quiet'] },
  { name: 'law runs.json', file: 'runs.json', mutate: 'json', weight: 1, argv: (d) => ['law', 'fit', join(d, 'runs.json'), '--params', 'A,E', '--starts', '1', '--json'] },
  { name: 'law runs.csv', file: 'runs.csv', mutate: 'bytes', weight: 1, argv: (d) => ['law', 'fit', join(d, 'runs.csv'), '--params', 'A,E', '--starts', '1', '--json'] },
  { name: 'train config', file: 'cfg.json', mutate: 'json', weight: 0, argv: (d) => ['train', '--config', join(d, 'cfg.json'), '--text', join(d, 't.txt'), '--out', join(d, 'run'), '--steps', '1', '--batch', '1', '--force', '--quiet'] },
];

/** A work folder with every base file, made with bitscale itself (stories260K, the default model). */
export async function makeWorkdir(): Promise<string> {
  const d = mkdtempSync(join(tmpdir(), 'bitscale-clifuzz-'));
  for (const f of ['stories260K.bin', 'tok512.bin']) copyFileSync(join(SHARED, 'models/stories260K', f), join(d, f));
  cpSync(DEFAULT_MODEL, join(d, 'dm'), { recursive: true });
  writeFileSync(join(d, 'dm', 'generation_config.json'), JSON.stringify({ bos_token_id: 1, eos_token_id: 2 }));
  writeFileSync(join(d, 'dm', 'tokenizer_config.json'), JSON.stringify({ bos_token: '<s>', eos_token: '</s>', model_max_length: 128 }));
  copyFileSync(join(d, 'dm', 'tokenizer.json'), join(d, 'tok.json'));
  const text = readFileSync(join(SHARED, 'data/tinystories-sample.txt'), 'utf8').slice(0, 2000);
  writeFileSync(join(d, 't.txt'), text);
  writeFileSync(join(d, 'c.txt'), text);
  writeFileSync(join(d, 'cfg.json'), JSON.stringify({ vocab_size: 300, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 16 }));
  const runs = [1e5, 3e5, 1e6].flatMap((N) => [1e7, 3e7].map((D) => ({ N, D, loss: 2 + 400 / N ** 0.3 + 300 / D ** 0.3 })));
  writeFileSync(join(d, 'runs.json'), JSON.stringify({ runs }));
  writeFileSync(join(d, 'runs.csv'), 'N,D,loss\n' + runs.map((r) => `${r.N},${r.D},${r.loss}`).join('\n') + '\n');
  for (const args of [
    ['convert', join(d, 'stories260K.bin'), join(d, 'm.gguf')],
    ['imatrix', join(d, 'stories260K.bin'), '--out', join(d, 'im.dat'), '--format', 'dat', '--windows', '2', '--seq-len', '16'],
    ['imatrix', join(d, 'stories260K.bin'), '--out', join(d, 'im.gguf'), '--windows', '2', '--seq-len', '16'],
  ]) {
    const r = await runCli(args);
    if (r.code !== 0) throw new Error(`fuzz setup failed: ${args.join(' ')}\n${r.output}`);
  }
  mkdirSync(join(d, 'crashes'), { recursive: true });
  return d;
}

/** Runs `bitscale …` in this process, capturing what it prints. */
export async function runCli(argv: string[]): Promise<{ code: number; output: string; ms: number }> {
  let output = '';
  const keep = (s: string) => {
    if (output.length < 1 << 16) output += s;
  };
  redirectOutput({ stdout: keep, stderr: keep });
  const t0 = performance.now();
  let code: number;
  try {
    code = await main(argv);
  } catch (e) {
    // main reports every error itself; anything escaping it is a crash
    output += `escaped main: ${(e as Error)?.stack ?? String(e)}`;
    code = 70;
  } finally {
    redirectOutput(null);
  }
  return { code, output, ms: performance.now() - t0 };
}

export interface FuzzStats {
  cases: number;
  ok: number;
  /** typed errors by code */
  typed: Record<string, number>;
  crashes: { target: string; iteration: number; output: string; saved?: string }[];
  hangs: { target: string; iteration: number; ms: number }[];
  maxMs: number;
  /** bytes of the largest mutated input */
  maxInputBytes: number;
}

export function emptyStats(): FuzzStats {
  return { cases: 0, ok: 0, typed: {}, crashes: [], hangs: [], maxMs: 0, maxInputBytes: 0 };
}

/**
 * `cases` cases on `target` from `seed`. The original file is restored afterwards. With `saveDir`,
 * the input of each crash is kept there for reproduction.
 */
export async function fuzzTarget(d: string, target: Target, cases: number, seed: number, opts: { hangMs: number; stats: FuzzStats; saveDir?: string }): Promise<void> {
  const path = join(d, target.file);
  // a plain Uint8Array: Buffer's slice() is a view, and the mutators must never touch the original
  const original = new Uint8Array(readFileSync(path));
  const rng = new Rng(seed);
  try {
    for (let i = 0; i < cases; i++) {
      let bytes: Uint8Array;
      if (target.mutate === 'json') bytes = mutateJson(rng, new TextDecoder().decode(original));
      else if (target.mutate === 'gguf') bytes = rng.nextU32() % 4 === 0 ? mutateBytes(rng, original, 2048) : await mutateGgufMetadata(rng, original);
      else if (target.mutate === 'header') bytes = mutateBytes(rng, original, 64);
      else bytes = mutateBytes(rng, original);
      writeFileSync(path, bytes);
      opts.stats.maxInputBytes = Math.max(opts.stats.maxInputBytes, bytes.length);
      const r = await runCli(target.argv(d));
      opts.stats.cases++;
      opts.stats.maxMs = Math.max(opts.stats.maxMs, r.ms);
      if (r.ms > opts.hangMs) opts.stats.hangs.push({ target: target.name, iteration: i, ms: r.ms });
      if (r.code === 0) opts.stats.ok++;
      else if ((r.code === 1 || r.code === 2) && /bitscale: error \[(\w+)\]/.test(r.output)) {
        const code = /bitscale: error \[(\w+)\]/.exec(r.output)![1];
        opts.stats.typed[code] = (opts.stats.typed[code] ?? 0) + 1;
      } else {
        let saved: string | undefined;
        if (opts.saveDir) {
          saved = join(opts.saveDir, `${target.name.replace(/\W+/g, '_')}-seed${seed}-case${i}`);
          writeFileSync(saved, bytes);
        }
        opts.stats.crashes.push({ target: target.name, iteration: i, output: r.output.slice(0, 2000), saved });
      }
    }
  } finally {
    writeFileSync(path, original);
    rmSync(join(d, 'run'), { recursive: true, force: true });
  }
}
