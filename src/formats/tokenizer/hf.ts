// Hugging Face tokenizer.json (+ tokenizer_config.json) through @huggingface/tokenizers, offline.
// SentencePiece-style tokenizers (Prepend/Metaspace, no pre-splitting) are quadratic-ish on one
// long string in that library (RUNTIME-NOTES §3: 17 s per MiB), so long texts are encoded in
// line-aligned chunks: chunk k > 0 is encoded as "\n" + chunk and the tokens of that leading
// "\n" (measured once, `probe`) are dropped. That equals whole-text encoding whenever no merge
// crosses a newline (true for byte-fallback vocabularies, where "\n" is the byte token <0x0A>);
// if a chunk does not start with the probe the whole text is encoded in one call instead.

import { Tokenizer as HfLib } from '@huggingface/tokenizers';
import { ConfigError } from '../../core/errors.js';
import type { EncodeOptions, Tokenizer } from './types.js';
import { TOKEN_TYPE, type VocabExport } from './vocab.js';

const CHUNK_CHARS = 2048;
/** the largest token id accepted (a hostile id would size arrays by it) */
const MAX_TOKEN_ID = (1 << 24) - 1;

/** Token ids of tokenizer.json's vocab and added_tokens, checked: integers in [0, MAX_TOKEN_ID]. */
function vocabIds(json: Record<string, any>, file: string): number[] {
  const vocab = json.model.vocab;
  const ids: number[] = [];
  const check = (id: unknown, field: string) => {
    if (!(Number.isInteger(id) && (id as number) >= 0 && (id as number) <= MAX_TOKEN_ID)) {
      throw new ConfigError('bad_config', 'tokenizer.json holds an invalid token id', { file, field, expected: `an integer in [0, ${MAX_TOKEN_ID}]`, found: typeof id === 'number' ? id : JSON.stringify(id)?.slice(0, 40) });
    }
    ids.push(id as number);
  };
  if (Array.isArray(vocab)) vocab.forEach((_, i) => ids.push(i));
  else if (vocab && typeof vocab === 'object') for (const [t, id] of Object.entries(vocab)) check(id, `model.vocab["${t.slice(0, 20)}"]`);
  else if (vocab !== undefined) throw new ConfigError('bad_config', 'tokenizer.json model.vocab is neither an object nor an array', { file, field: 'model.vocab', found: typeof vocab });
  const added = json.added_tokens ?? [];
  if (!Array.isArray(added)) throw new ConfigError('bad_config', 'tokenizer.json added_tokens is not an array', { file, field: 'added_tokens', found: typeof added });
  added.forEach((a: unknown, i: number) => {
    if (!a || typeof a !== 'object' || typeof (a as { content?: unknown }).content !== 'string') throw new ConfigError('bad_config', 'tokenizer.json added token is not {id, content}', { file, field: `added_tokens[${i}]` });
    check((a as { id?: unknown }).id, `added_tokens[${i}].id`);
  });
  return ids;
}

function idOf(lib: HfLib, tok: unknown): number | null {
  const s = typeof tok === 'string' ? tok : tok && typeof tok === 'object' && 'content' in tok ? String((tok as { content: unknown }).content) : null;
  if (s === null) return null;
  return lib.token_to_id(s) ?? null;
}

export class HfTokenizer implements Tokenizer {
  readonly kind = 'hf' as const;
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly unkId: number | null;
  private readonly lib: HfLib;
  private readonly addBos: boolean;
  private readonly addEos: boolean;
  private readonly spmStyle: boolean;
  private probe: number[] | null = null;
  /** the file, for errors from the tokenizer library */
  readonly file: string;

  /** `json`: parsed tokenizer.json; `config`: parsed tokenizer_config.json (or {}). */
  constructor(
    readonly json: Record<string, any>,
    readonly config: Record<string, any> = {},
    file = 'tokenizer.json',
  ) {
    this.file = file;
    if (!json || typeof json !== 'object' || Array.isArray(json) || !json.model || typeof json.model !== 'object') {
      throw new ConfigError('bad_config', 'tokenizer.json has no model section', { file, field: 'model' });
    }
    if (!config || typeof config !== 'object' || Array.isArray(config)) throw new ConfigError('bad_config', 'tokenizer_config.json is not a JSON object', { file, field: 'tokenizer_config' });
    const ids = vocabIds(json, file);
    try {
      this.lib = new HfLib(json, config);
    } catch (e) {
      throw new ConfigError('bad_config', `tokenizer.json was rejected by @huggingface/tokenizers: ${(e as Error).message}`, { file });
    }
    this.vocabSize = ids.reduce((a, b) => Math.max(a, b + 1), 0);
    // the library's own checks are partial: anything it throws later names the file as well
    const probe = this.guard(() => ({
      bos: idOf(this.lib, config.bos_token),
      eos: idOf(this.lib, config.eos_token),
      unk: idOf(this.lib, config.unk_token ?? json.model.unk_token),
      // what the post-processor adds tells us the defaults for BOS/EOS
      withSpecial: this.lib.encode('a', { add_special_tokens: true }).ids,
      without: this.lib.encode('a', { add_special_tokens: false }).ids,
    }));
    const { withSpecial, without } = probe;
    this.bosId = probe.bos;
    this.eosId = probe.eos;
    this.unkId = probe.unk;
    this.addBos = this.bosId !== null && withSpecial[0] === this.bosId && without[0] !== this.bosId;
    this.addEos = this.eosId !== null && withSpecial.at(-1) === this.eosId && without.at(-1) !== this.eosId;
    const text = JSON.stringify([json.normalizer, json.pre_tokenizer]);
    this.spmStyle = /"Prepend"|"Metaspace"/.test(text) && !/"ByteLevel"|"Split"/.test(text);
  }

  /** Runs a call into the tokenizer library; what it throws becomes a typed error naming the file. */
  private guard<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      if (e instanceof ConfigError) throw e;
      throw new ConfigError('bad_config', `tokenizer.json could not be used: ${(e as Error)?.message ?? String(e)}`, { file: this.file, hint: 'the file may be damaged; @huggingface/tokenizers rejected it' });
    }
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const bos = opts.bos ?? this.addBos;
    const eos = opts.eos ?? false;
    const ids = this.guard(() => (this.spmStyle && text.length > CHUNK_CHARS ? this.encodeChunked(text) : this.encodeRaw(text)));
    if (bos && this.bosId !== null) ids.unshift(this.bosId);
    if (eos && this.eosId !== null) ids.push(this.eosId);
    return ids;
  }

  /** One call into the library, no special tokens: the reference for the chunked path. */
  encodeRaw(text: string): number[] {
    return this.lib.encode(text, { add_special_tokens: false }).ids;
  }

  private encodeChunked(text: string): number[] {
    this.probe ??= this.encodeRaw('\n');
    const probe = this.probe;
    const chunks: string[] = [];
    let start = 0;
    while (start < text.length) {
      let end = text.indexOf('\n', Math.min(text.length, start + CHUNK_CHARS));
      end = end < 0 ? text.length : end + 1;
      chunks.push(text.slice(start, end));
      start = end;
    }
    const out = this.encodeRaw(chunks[0]);
    for (let k = 1; k < chunks.length; k++) {
      const ids = this.encodeRaw('\n' + chunks[k]);
      if (!probe.every((p, i) => ids[i] === p)) return this.encodeRaw(text);
      for (let i = probe.length; i < ids.length; i++) out.push(ids[i]);
    }
    return out;
  }

  decode(ids: readonly number[]): string {
    return this.guard(() => this.lib.decode([...ids], { skip_special_tokens: true }));
  }

  tokenPiece(id: number): string {
    return this.guard(() => this.lib.id_to_token(id) ?? '');
  }

  /**
   * GGUF-style vocabulary. SentencePiece-style BPE (byte_fallback) becomes 'llama' with scores
   * derived from the merge ranks (a merged piece scores -rank of the first merge producing it,
   * which orders merges exactly as the ranks do); ByteLevel BPE becomes 'gpt2' with its merges.
   */
  exportVocab(): VocabExport {
    return this.guard(() => this.exportVocabUnguarded());
  }

  private exportVocabUnguarded(): VocabExport {
    const model = this.json.model as Record<string, any>;
    if (model.type !== 'BPE') {
      throw new ConfigError('unsupported', 'only BPE tokenizer.json models can be exported', { field: 'model.type', expected: 'BPE', found: model.type });
    }
    const tokens: string[] = new Array(this.vocabSize).fill('');
    for (const [t, i] of Object.entries(model.vocab as Record<string, number>)) tokens[i] = t;
    const added = (this.json.added_tokens ?? []) as { id: number; content: string; special?: boolean }[];
    for (const a of added) tokens[a.id] = a.content;
    const merges: string[] = ((model.merges ?? []) as (string | string[])[]).map((m) => (Array.isArray(m) ? m.join(' ') : m));
    const types = new Int32Array(tokens.length).fill(TOKEN_TYPE.NORMAL);
    for (const a of added) types[a.id] = a.special === false ? TOKEN_TYPE.USER_DEFINED : TOKEN_TYPE.CONTROL;
    if (this.unkId !== null) types[this.unkId] = TOKEN_TYPE.UNKNOWN;
    const base = { tokens, types, bosId: this.bosId, eosId: this.eosId, unkId: this.unkId, padId: idOf(this.lib, this.config.pad_token), addBos: this.addBos, addEos: this.addEos };
    const text = JSON.stringify([this.json.normalizer, this.json.pre_tokenizer]);
    if (model.byte_fallback) {
      tokens.forEach((t, i) => {
        if (/^<0x[0-9A-Fa-f]{2}>$/.test(t)) types[i] = TOKEN_TYPE.BYTE;
      });
      const scores = new Float32Array(tokens.length);
      const seen = new Set<string>();
      merges.forEach((m, rank) => {
        const merged = m.replace(' ', '');
        const id = this.lib.token_to_id(merged);
        if (id !== undefined && !seen.has(merged)) {
          seen.add(merged);
          scores[id] = -rank;
        }
      });
      const addSpacePrefix = /"Prepend"/.test(text) || (/"Metaspace"/.test(text) && !/"prepend_scheme":"never"/.test(text));
      return { ...base, model: 'llama', scores, merges: null, addSpacePrefix, pre: null };
    }
    if (!/"ByteLevel"/.test(text)) {
      throw new ConfigError('unsupported', 'BPE tokenizer.json is neither SentencePiece-style (byte_fallback) nor byte-level', { field: 'pre_tokenizer' });
    }
    const pre = /\\p\{N\}\{1,3\}/.test(text) ? 'llama-bpe' : /"Split"/.test(text) ? 'qwen2' : 'default';
    return { ...base, model: 'gpt2', scores: null, merges, addSpacePrefix: false, pre };
  }
}
