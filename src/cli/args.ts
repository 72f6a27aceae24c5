// Argument parsing on node:util parseArgs, with bitscale's conventions: unknown flags and bad
// values are 'bad_option' errors that name the flag, the expected form and what was given (an
// unknown flag with the nearest known one); extra positional arguments are refused; `--force`
// replaces an output in every command, with `--overwrite` kept as its alias.
import { availableParallelism } from 'node:os';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError } from '../core/errors.js';
import { err } from './output.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

/** Edit distance with adjacent transpositions (optimal string alignment), for did-you-mean. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The known name closest to `name` (a prefix either way, or within a third of its length in edits, at least 1), if any. */
export function nearest(name: string, known: readonly string[]): string | undefined {
  const n = name.toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = k.startsWith(n) || n.startsWith(k) ? 0.5 : editDistance(n, k.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(n.length / 3)) ? best : undefined;
}

export interface ParseOptions {
  /** the most positional arguments the command takes (default: any) */
  positionals?: number;
}

function flagName(o: string, opts: Options): string {
  return o.length === 1 || opts[o]?.short === o ? `-${o}` : `--${o}`;
}

export function parse(argv: string[], options: Options, usage: string, po: ParseOptions = {}) {
  const all: Options = { ...options };
  if ('force' in all && !('overwrite' in all)) all.overwrite = { type: 'boolean' };
  const usageLine = usage.split('\n')[0];
  let r;
  try {
    r = parseArgs({ args: argv, options: all, allowPositionals: true, strict: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const msg = (e as Error).message;
    const m = /'(-{1,2}[^'\s]+)'/.exec(msg);
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && m) {
      const given = m[1].replace(/^-+/, '').split('=')[0];
      const near = nearest(given, Object.keys(all));
      throw new ConfigError('bad_option', `unknown option ${m[1]}`, { field: m[1], hint: `${near ? `did you mean ${flagName(near, options)}? ` : ''}usage: ${usageLine}` });
    }
    throw new ConfigError('bad_option', msg, { hint: `usage: ${usageLine}` });
  }
  const values = r.values as Record<string, unknown>;
  if ('overwrite' in values && !('overwrite' in options)) {
    values.force = Boolean(values.force) || Boolean(values.overwrite);
    delete values.overwrite;
  }
  if (po.positionals !== undefined && r.positionals.length > po.positionals) {
    const extra = r.positionals.slice(po.positionals);
    throw new ConfigError('bad_option', `unexpected argument${extra.length > 1 ? 's' : ''} ${extra.map((x) => `'${x}'`).join(' ')}`, {
      field: 'arguments',
      expected: po.positionals === 0 ? 'no positional arguments' : `at most ${po.positionals} positional argument${po.positionals > 1 ? 's' : ''}`,
      found: r.positionals.join(' '),
      hint: `an option value with spaces needs quotes; usage: ${usageLine}`,
    });
  }
  return r;
}

export function numberOpt(v: string | undefined, flag: string, opts: { min?: number; max?: number; integer?: boolean } = {}): number | undefined {
  if (v === undefined) return undefined;
  const x = v.trim() === '' ? NaN : Number(v);
  const bad =
    !Number.isFinite(x) ||
    (opts.integer && !Number.isSafeInteger(x)) ||
    (opts.min !== undefined && x < opts.min) ||
    (opts.max !== undefined && x > opts.max);
  if (bad) {
    const range = `${opts.integer ? 'an integer' : 'a number'}${opts.min !== undefined ? ` >= ${opts.min}` : ''}${opts.max !== undefined ? ` <= ${opts.max}` : opts.integer ? ` <= ${Number.MAX_SAFE_INTEGER}` : ''}`;
    throw new ConfigError('bad_option', `invalid value for --${flag}`, { field: `--${flag}`, expected: range, found: v });
  }
  return x;
}

/** --threads: an integer >= 1, lowered (with a note) to the CPU count: more only slows onnxruntime down. */
export function threadsOpt(v: string | undefined, flag = 'threads'): number | undefined {
  const n = numberOpt(v, flag, { integer: true, min: 1 });
  if (n === undefined) return undefined;
  const cores = availableParallelism();
  if (n > cores) {
    err(`bitscale: --${flag} ${n} is more than the ${cores} CPU cores here; using ${cores} (more threads than cores only slow onnxruntime down)`);
    return cores;
  }
  return n;
}

/** A choice among `allowed`, matched case-insensitively, returned as written in `allowed`. */
export function choiceOpt<T extends string>(v: string | undefined, flag: string, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  const hit = allowed.find((a) => a.toLowerCase() === v.toLowerCase());
  if (hit) return hit;
  const near = nearest(v, allowed);
  throw new ConfigError('bad_option', `invalid value for ${flag}`, { field: flag, expected: allowed.join(' | '), found: v, hint: near ? `did you mean ${near}?` : undefined });
}

export function abortSignal(): AbortSignal | undefined {
  return (globalThis as { __bitscaleAbort?: AbortSignal }).__bitscaleAbort;
}
