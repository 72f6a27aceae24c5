// Measured training runs, the data the law is fitted to: parsing from JSON or CSV text and checks.
// Pure (no filesystem): the pipeline reads the file and passes its text and name.
//
// One row: N (non-embedding parameters), D (tokens), training bit widths w/a/kv (empty or missing =
// high precision), post-training weight bits (empty = no PTQ), and the measured loss (nats/token).
import { ConfigError, FormatError } from '../core/errors.js';
import type { TrainPrecision } from './law.js';

export interface RunRow {
  N: number;
  D: number;
  train?: TrainPrecision;
  postBits?: number;
  loss: number;
  id?: string;
}

/** Column aliases, lower-case, for JSON keys and CSV headers. */
const ALIASES: Record<string, keyof Flat> = {
  n: 'N',
  params: 'N',
  d: 'D',
  tokens: 'D',
  w: 'w',
  p_w: 'w',
  pw: 'w',
  weight_bits: 'w',
  a: 'a',
  p_a: 'a',
  pa: 'a',
  act_bits: 'a',
  kv: 'kv',
  p_kv: 'kv',
  pkv: 'kv',
  kv_bits: 'kv',
  train_bits: 'trainBits',
  trainbits: 'trainBits',
  post: 'postBits',
  post_bits: 'postBits',
  postbits: 'postBits',
  p_post: 'postBits',
  loss: 'loss',
  id: 'id',
};

interface Flat {
  N?: number;
  D?: number;
  w?: number;
  a?: number;
  kv?: number;
  trainBits?: number;
  postBits?: number;
  loss?: number;
  id?: string;
}

const EMPTY = new Set(['', '-', 'none', 'bf16', 'fp16', 'fp32', 'null']);

function num(v: unknown, file: string, field: string, index: number): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string' && EMPTY.has(v.trim().toLowerCase())) return undefined;
  const x = typeof v === 'number' ? v : Number(String(v).trim());
  if (!Number.isFinite(x)) throw new FormatError('non_finite', 'not a finite number', { file, field, index, expected: 'a finite number', found: v });
  return x;
}

function toRow(flat: Record<string, unknown>, file: string, index: number): RunRow {
  const f: Flat = {};
  for (const [k, v] of Object.entries(flat)) {
    const key = ALIASES[k.trim().toLowerCase()];
    if (!key) continue;
    if (key === 'id') f.id = v == null ? undefined : String(v);
    else f[key] = num(v, file, k, index);
  }
  for (const req of ['N', 'D', 'loss'] as const) {
    if (f[req] === undefined) throw new FormatError('bad_header', `run is missing '${req}'`, { file, field: req, index, expected: 'a number', found: flat[req] ?? 'nothing' });
  }
  const row: RunRow = { N: f.N!, D: f.D!, loss: f.loss! };
  const tb = f.trainBits;
  const train: TrainPrecision = { w: f.w ?? tb, a: f.a ?? tb, kv: f.kv ?? tb };
  if (train.w !== undefined || train.a !== undefined || train.kv !== undefined) row.train = train;
  if (f.postBits !== undefined) row.postBits = f.postBits;
  if (f.id !== undefined) row.id = f.id;
  checkRow(row, file, index);
  return row;
}

/** Range checks for one row: positive N, D and loss; bit widths in [1, 64]. */
export function checkRow(r: RunRow, file: string, index: number): void {
  const pos = (v: number, field: string) => {
    if (!(v > 0)) throw new ConfigError('bad_option', `${field} must be > 0`, { file, field, index, expected: '> 0', found: v });
  };
  pos(r.N, 'N');
  pos(r.D, 'D');
  pos(r.loss, 'loss');
  for (const [field, b] of [['w', r.train?.w], ['a', r.train?.a], ['kv', r.train?.kv], ['postBits', r.postBits]] as const) {
    if (b !== undefined && !(b >= 1 && b <= 64)) throw new ConfigError('bad_option', `${field} must be a bit width in [1, 64]`, { file, field, index, expected: '[1, 64]', found: b });
  }
}

/** Splits one CSV line (RFC 4180 quotes; no embedded newlines). */
function csvCells(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let q = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (q) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') q = false;
      else cur += ch;
    } else if (ch === '"') q = true;
    else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((s) => s.trim());
}

export function parseRunsCsv(text: string, file = '<csv>'): RunRow[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
  if (!lines.length) throw new FormatError('bad_header', 'empty runs file', { file, expected: 'a header line and rows', found: 'nothing' });
  const header = csvCells(lines[0]);
  const known = header.map((h) => ALIASES[h.toLowerCase()]);
  for (const req of ['N', 'D', 'loss'] as const) {
    if (!known.includes(req)) throw new FormatError('bad_header', `CSV header has no '${req}' column`, { file, field: req, expected: 'columns N,D,loss (and w,a,kv,post)', found: header.join(',') });
  }
  return lines.slice(1).map((line, i) => {
    const cells = csvCells(line);
    if (cells.length !== header.length) throw new FormatError('bad_header', 'wrong number of cells', { file, index: i, expected: header.length, found: cells.length });
    return toRow(Object.fromEntries(header.map((h, j) => [h, cells[j]])), file, i);
  });
}

export function parseRunsJson(text: string, file = '<json>'): RunRow[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new FormatError('bad_header', `not valid JSON: ${(e as Error).message}`, { file });
  }
  const arr = Array.isArray(doc) ? doc : (doc as { runs?: unknown })?.runs;
  if (!Array.isArray(arr)) throw new FormatError('bad_header', 'expected an array of runs or {"runs": [...]}', { file, expected: 'array', found: typeof doc });
  return arr.map((r, i) => {
    if (typeof r !== 'object' || r === null) throw new FormatError('bad_header', 'run is not an object', { file, index: i, expected: 'object', found: r });
    const flat: Record<string, unknown> = { ...(r as Record<string, unknown>) };
    // nested {train: {w, a, kv}} as written by RunRow itself
    const t = flat.train as TrainPrecision | undefined;
    if (t && typeof t === 'object') Object.assign(flat, { w: t.w, a: t.a, kv: t.kv });
    delete flat.train;
    return toRow(flat, file, i);
  });
}

/** Parses by file name (.csv → CSV, otherwise JSON). */
export function parseRuns(text: string, file: string): RunRow[] {
  const rows = file.toLowerCase().endsWith('.csv') ? parseRunsCsv(text, file) : parseRunsJson(text, file);
  if (!rows.length) throw new FormatError('bad_header', 'no runs in file', { file, expected: 'at least one row', found: 0 });
  return rows;
}
