// Argument parsing on node:util parseArgs, with bitscale's conventions: unknown flags and bad
// values are 'bad_option' errors that name the flag, the expected form and what was given.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError } from '../core/errors.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

export function parse(argv: string[], options: Options, usage: string) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new ConfigError('bad_option', (e as Error).message, { hint: usage.split('\n')[0] });
  }
}

export function numberOpt(v: string | undefined, flag: string, opts: { min?: number; max?: number; integer?: boolean } = {}): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  const bad =
    !Number.isFinite(x) ||
    (opts.integer && !Number.isInteger(x)) ||
    (opts.min !== undefined && x < opts.min) ||
    (opts.max !== undefined && x > opts.max);
  if (bad) {
    const range = `${opts.integer ? 'an integer' : 'a number'}${opts.min !== undefined ? ` >= ${opts.min}` : ''}${opts.max !== undefined ? ` <= ${opts.max}` : ''}`;
    throw new ConfigError('bad_option', `invalid value for --${flag}`, { field: `--${flag}`, expected: range, found: v });
  }
  return x;
}

export function abortSignal(): AbortSignal | undefined {
  return (globalThis as { __bitscaleAbort?: AbortSignal }).__bitscaleAbort;
}
