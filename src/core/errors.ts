// Typed errors with codes. Every error a user can trigger carries enough context to act on:
// the file, the field or tensor, the byte offset, what was expected and what was found.

export type ErrorCode =
  // container formats
  | 'bad_magic'
  | 'bad_version'
  | 'truncated'
  | 'misaligned'
  | 'out_of_bounds'
  | 'overlap'
  | 'dtype_unknown'
  | 'shape_mismatch'
  | 'duplicate_name'
  | 'bad_string'
  | 'bad_header'
  | 'too_large'
  | 'non_finite'
  | 'overflow'
  | 'missing_file'
  | 'missing_tensor'
  // configuration and options
  | 'bad_config'
  | 'bad_option'
  | 'unsupported'
  // io
  | 'io'
  | 'exists'
  | 'would_overwrite_input'
  | 'locked'
  // runtime / numerics
  | 'diverged'
  | 'mismatch'
  | 'interrupted'
  | 'internal';

export interface ErrorContext {
  /** file path (or a label such as '<buffer>') */
  file?: string;
  /** header field, metadata key or tensor name */
  field?: string;
  tensor?: string;
  /** byte offset in the file */
  offset?: number | bigint;
  /** element index inside a tensor */
  index?: number;
  /** row of a matrix (axis 0) holding that element */
  row?: number;
  expected?: unknown;
  found?: unknown;
  hint?: string;
}

/**
 * A value as people read it: strings as they are, numbers with NaN/Infinity spelled out (JSON
 * would print null), bigints in decimal, arrays and objects as JSON with the same rules.
 */
export function formatValue(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isNaN(v) ? 'NaN' : v === Infinity ? 'Infinity' : v === -Infinity ? '-Infinity' : String(v);
  if (typeof v === 'bigint') return v.toString();
  if (v === undefined) return 'nothing';
  try {
    const s = JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : typeof x === 'number' && !Number.isFinite(x) ? formatValue(x) : x));
    return s ?? String(v);
  } catch {
    return String(v);
  }
}

/** Base class: `code` is stable and machine-readable; the message is for people. */
export class BitscaleError extends Error {
  readonly code: ErrorCode;
  readonly context: ErrorContext;

  constructor(code: ErrorCode, what: string, context: ErrorContext = {}) {
    const parts: string[] = [];
    if (context.file !== undefined) parts.push(`file ${context.file}`);
    if (context.tensor !== undefined) parts.push(`tensor '${context.tensor}'`);
    if (context.field !== undefined) parts.push(`field '${context.field}'`);
    if (context.offset !== undefined) parts.push(`offset ${context.offset.toString()}`);
    if (context.index !== undefined) parts.push(`index ${context.index}`);
    if (context.row !== undefined) parts.push(`row ${context.row}`);
    let msg = `${what}`;
    if (parts.length) msg += ` (${parts.join(', ')})`;
    // only the halves that were given: an error without an expected value says what was found
    const has = (k: 'expected' | 'found') => k in context && context[k] !== undefined;
    if (has('expected') && has('found')) msg += `: expected ${formatValue(context.expected)}, found ${formatValue(context.found)}`;
    else if (has('expected')) msg += `: expected ${formatValue(context.expected)}`;
    else if (has('found')) msg += `: found ${formatValue(context.found)}`;
    if (context.hint) msg += `\nHINT: ${context.hint}`;
    super(msg);
    this.name = new.target.name;
    this.code = code;
    this.context = context;
  }
}

/** A file's bytes do not follow its format. */
export class FormatError extends BitscaleError {}
/** A tensor's shape is not the one required. */
export class ShapeError extends BitscaleError {}
/** A configuration or option is invalid or unsupported. */
export class ConfigError extends BitscaleError {}
/** A numeric problem: NaN/Inf input, a diverging run, a mismatch against a reference. */
export class NumericError extends BitscaleError {}
/** Filesystem trouble: missing file, refusal to overwrite, failed write. */
export class IoError extends BitscaleError {}

export function isBitscaleError(e: unknown): e is BitscaleError {
  return e instanceof BitscaleError;
}
