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

  /** `json`: parsed tokenizer.json; `config`: parsed tokenizer_config.json (or {}). */
  constructor(
    readonly json: Record<string, any>,
    readonly config: Record<string, any> = {},
    file = 'tokenizer.json',
  ) {
    if (!json || typeof json !== 'object' || !json.model || typeof json.model !== 'object') {
      throw new ConfigError('bad_config', 'tokenizer.json has no model section', { file, field: 'model' });
    }
    try {
      this.lib = new HfLib(json, config);
    } catch (e) {
      throw new ConfigError('bad_config', `tokenizer.json was rejected by @huggingface/tokenizers: ${(e as Error).message}`, { file });
    }
    const vocab = json.model.vocab;
    let n = Array.isArray(vocab) ? vocab.length : Object.keys(vocab ?? {}).length;
    for (const a of (json.added_tokens ?? []) as { id: number }[]) n = Math.max(n, a.id + 1);
    this.vocabSize = n;
    this.bosId = idOf(this.lib, config.bos_token);
    this.eosId = idOf(this.lib, config.eos_token);
    this.unkId = idOf(this.lib, config.unk_token ?? json.model.unk_token);
    // what the post-processor adds tells us the defaults for BOS/EOS
    const withSpecial = this.lib.encode('a', { add_special_tokens: true }).ids;
    const without = this.lib.encode('a', { add_special_tokens: false }).ids;
    this.addBos = this.bosId !== null && withSpecial[0] === this.bosId && without[0] !== this.bosId;
    this.addEos = this.eosId !== null && withSpecial.at(-1) === this.eosId && without.at(-1) !== this.eosId;
    const text = JSON.stringify([json.normalizer, json.pre_tokenizer]);
    this.spmStyle = /"Prepend"|"Metaspace"/.test(text) && !/"ByteLevel"|"Split"/.test(text);
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const bos = opts.bos ?? this.addBos;
    const eos = opts.eos ?? false;
    const ids = this.spmStyle && text.length > CHUNK_CHARS ? this.encodeChunked(text) : this.encodeRaw(text);
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
    return this.lib.decode([...ids], { skip_special_tokens: true });
  }

  tokenPiece(id: number): string {
    return this.lib.id_to_token(id) ?? '';
  }

  /**
   * GGUF-style vocabulary. SentencePiece-style BPE (byte_fallback) becomes 'llama' with scores
   * derived from the merge ranks (a merged piece scores -rank of the first merge producing it,
   * which orders merges exactly as the ranks do); ByteLevel BPE becomes 'gpt2' with its merges.
   */
  exportVocab(): VocabExport {
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
