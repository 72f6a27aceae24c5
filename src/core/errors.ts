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
  expected?: unknown;
  found?: unknown;
  hint?: string;
}

function fmt(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'bigint') return v.toString();
  try {
    return JSON.stringify(v);
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
    let msg = `${what}`;
    if (parts.length) msg += ` (${parts.join(', ')})`;
    if (context.expected !== undefined || context.found !== undefined) {
      msg += `: expected ${fmt(context.expected)}, found ${fmt(context.found)}`;
    }
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
