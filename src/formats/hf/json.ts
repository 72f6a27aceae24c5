// Typed field access for Hugging Face JSON files (config.json, generation_config.json,
// tokenizer_config.json): every failure is a ConfigError naming the file and the field.
// generation_config.json is read and written here as well.

import { ConfigError } from '../../core/errors.js';

export type Json = Record<string, unknown>;

export class JsonFields {
  constructor(
    readonly obj: Json,
    readonly file: string,
  ) {
    if (!obj || typeof obj !== 'object' || Array.isArray(obj)) {
      throw new ConfigError('bad_config', 'expected a JSON object', { file, found: Array.isArray(obj) ? 'array' : typeof obj });
    }
  }

  has(field: string): boolean {
    return this.obj[field] !== undefined && this.obj[field] !== null;
  }

  /** A required positive integer (or non-negative with min 0). */
  int(field: string, opts: { min?: number; fallback?: number } = {}): number {
    const v = this.obj[field];
    if (v === undefined || v === null) {
      if (opts.fallback !== undefined) return opts.fallback;
      throw new ConfigError('bad_config', 'missing required field', { file: this.file, field, expected: 'an integer' });
    }
    const min = opts.min ?? 1;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      throw new ConfigError('bad_config', 'invalid integer field', { file: this.file, field, expected: `an integer >= ${min}`, found: v });
    }
    return v;
  }

  num(field: string, fallback?: number): number {
    const v = this.obj[field];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new ConfigError('bad_config', 'missing required field', { file: this.file, field, expected: 'a number' });
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new ConfigError('bad_config', 'invalid number field', { file: this.file, field, expected: 'a finite number', found: v });
    }
    return v;
  }

  bool(field: string, fallback: boolean): boolean {
    const v = this.obj[field];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') throw new ConfigError('bad_config', 'invalid boolean field', { file: this.file, field, expected: 'true or false', found: v });
    return v;
  }

  str(field: string): string | null {
    const v = this.obj[field];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string') throw new ConfigError('bad_config', 'invalid string field', { file: this.file, field, expected: 'a string', found: v });
    return v;
  }

  /** A token id that may be written as a number or a list of numbers (first one wins). */
  tokenId(field: string): number | null {
    const v = this.obj[field];
    if (v === undefined || v === null) return null;
    const x = Array.isArray(v) ? v[0] : v;
    if (x === undefined) return null;
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0) {
      throw new ConfigError('bad_config', 'invalid token id', { file: this.file, field, expected: 'a non-negative integer or a list of them', found: v });
    }
    return x;
  }

  obj_(field: string): JsonFields | null {
    const v = this.obj[field];
    if (v === undefined || v === null) return null;
    return new JsonFields(v as Json, `${this.file}#${field}`);
  }
}

export interface GenerationConfig {
  bosTokenId: number | null;
  /** all end-of-sequence ids (config files may list several) */
  eosTokenIds: number[];
  padTokenId: number | null;
  maxLength: number | null;
  doSample: boolean | null;
  temperature: number | null;
  topP: number | null;
  topK: number | null;
}

export function parseGenerationConfig(obj: unknown, file = 'generation_config.json'): GenerationConfig {
  const f = new JsonFields(obj as Json, file);
  const eos = f.obj.eos_token_id;
  const eosIds = eos === undefined || eos === null ? [] : Array.isArray(eos) ? eos : [eos];
  eosIds.forEach((x) => {
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0) {
      throw new ConfigError('bad_config', 'invalid token id', { file, field: 'eos_token_id', expected: 'a non-negative integer or a list of them', found: eos });
    }
  });
  const optNum = (k: string) => (f.has(k) ? f.num(k) : null);
  return {
    bosTokenId: f.tokenId('bos_token_id'),
    eosTokenIds: eosIds as number[],
    padTokenId: f.tokenId('pad_token_id'),
    maxLength: f.has('max_length') ? f.int('max_length') : null,
    doSample: f.has('do_sample') ? f.bool('do_sample', false) : null,
    temperature: optNum('temperature'),
    topP: optNum('top_p'),
    topK: f.has('top_k') ? f.int('top_k', { min: 0 }) : null,
  };
}

export function generationConfigJson(g: Partial<GenerationConfig>): Json {
  const out: Json = {};
  if (g.bosTokenId != null) out.bos_token_id = g.bosTokenId;
  if (g.eosTokenIds && g.eosTokenIds.length) out.eos_token_id = g.eosTokenIds.length === 1 ? g.eosTokenIds[0] : g.eosTokenIds;
  if (g.padTokenId != null) out.pad_token_id = g.padTokenId;
  if (g.maxLength != null) out.max_length = g.maxLength;
  if (g.doSample != null) out.do_sample = g.doSample;
  if (g.temperature != null) out.temperature = g.temperature;
  if (g.topP != null) out.top_p = g.topP;
  if (g.topK != null) out.top_k = g.topK;
  return out;
}
