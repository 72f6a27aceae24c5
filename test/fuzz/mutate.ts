// Seeded mutations for fuzzing, the one module both fuzzers use (the command-line fuzzer, test/fuzz,
// and the binary readers' test/formats/fuzz.test.ts): bytes (flips, overwrites, truncation,
// length-field inflation, insertions, deletions, invalid UTF-8, number rewrites, noise; each fuzzer
// its own mix of the same mutations), JSON values
// (type changes, boundary numbers, huge strings and arrays, deleted and duplicated keys) and GGUF
// metadata (a key's value replaced by one of another type or a boundary value).
import { Rng } from '../../src/core/rng.js';
import { memorySource } from '../../src/formats/bytes.js';
import { encodeGguf, readGguf, type GgufValue } from '../../src/formats/gguf/index.js';

export function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.nextU32() % xs.length];
}

const INVALID_UTF8 = [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80], [0x80], [0xfe, 0xff]];

/** One byte-level mutation: `b` is a copy of the base (free to modify), `pos` a random index in the mutated region. */
type ByteMutation = (rng: Rng, b: Uint8Array, pos: () => number, base: Uint8Array) => Uint8Array;

/** Every byte mutation the fuzzers use, by name (each draws from `rng` in a fixed order, so a seed replays). */
const BYTE_MUTATIONS = {
  flip: (rng, b, pos) => {
    for (let i = 0, n = 1 + (rng.nextU32() % 8); i < n; i++) b[pos()] ^= 1 << (rng.nextU32() % 8);
    return b;
  },
  overwrite: (rng, b, pos) => {
    for (let i = 0, n = 1 + (rng.nextU32() % 4); i < n; i++) b[pos()] = rng.nextU32() & 0xff;
    return b;
  },
  truncate: (_rng, b, pos) => b.subarray(0, pos()),
  /** a u32 length field with a large or boundary value at a random spot */
  inflateU32: (rng, b, pos) => {
    const at = Math.min(pos(), Math.max(0, b.length - 8));
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const vals = [0xffffffff, 0x7fffffff, 0x80000000, 0, 1, b.length, b.length + 1, rng.nextU32()];
    if (b.length >= 4) dv.setUint32(at, pick(rng, vals), true);
    return b;
  },
  /** a u64 length field with a large or boundary value at a random spot */
  inflateU64: (rng, b, pos) => {
    const at = Math.min(pos(), Math.max(0, b.length - 8));
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const choices = [2n ** 64n - 1n, 2n ** 63n, 2n ** 53n + 1n, 2n ** 32n, BigInt(b.length), BigInt(b.length + 1), 0n, BigInt(rng.nextU32())];
    if (b.length >= 8) dv.setBigUint64(at, choices[rng.nextU32() % choices.length], true);
    return b;
  },
  /** insert or delete a run of bytes */
  insertDelete: (rng, b, pos) => {
    const at = pos();
    const n = 1 + (rng.nextU32() % 16);
    if (rng.nextU32() % 2) return new Uint8Array([...b.subarray(0, at), ...Array.from({ length: n }, () => rng.nextU32() & 0xff), ...b.subarray(at)]);
    return new Uint8Array([...b.subarray(0, at), ...b.subarray(at + n)]);
  },
  invalidUtf8: (rng, b, pos) => {
    const at = pos();
    return new Uint8Array([...b.subarray(0, at), ...pick(rng, INVALID_UTF8), ...b.subarray(at)]);
  },
  empty: () => new Uint8Array(0),
  /** one very long run of a repeated byte (a text with no newline, a name of 64 KiB) */
  longRun: (rng, b, pos) => {
    const at = pos();
    return new Uint8Array([...b.subarray(0, at), ...new Uint8Array(1 << 16).fill(0x41 + (rng.nextU32() % 26)), ...b.subarray(at)]);
  },
  /** random bytes after an intact prefix (magic / header length) */
  noiseAfterPrefix: (rng, b) => {
    const keep = 8 + (rng.nextU32() % 32);
    for (let i = keep; i < b.length; i++) b[i] = rng.nextU32() & 0xff;
    return b;
  },
  /** rewrite a decimal number in the text (safetensors JSON; harmless elsewhere), keeping a safetensors header length consistent */
  rewriteNumber: (rng, b, _pos, base) => {
    const text = new TextDecoder('latin1').decode(b);
    const runs = [...text.matchAll(/\d+/g)];
    if (!runs.length) return b;
    const m = runs[rng.nextU32() % runs.length];
    const nums = ['0', '1', '-1', '4294967296', '9007199254740993', '1e30', '0.5', String(rng.nextU32())];
    const repl = nums[rng.nextU32() % nums.length];
    const t2 = text.slice(0, m.index) + repl + text.slice(m.index! + m[0].length);
    const out = Uint8Array.from(t2, (c) => c.charCodeAt(0) & 0xff);
    // keep the safetensors header length consistent with the JSON so the rewrite is seen
    if (out.length >= 8 && base.length >= 8) {
      const dv = new DataView(out.buffer);
      const old = Number(new DataView(base.buffer, base.byteOffset).getBigUint64(0, true));
      if (old < base.length && m.index! < 8 + old) dv.setBigUint64(0, BigInt(old + repl.length - m[0].length), true);
    }
    return out;
  },
  noise256: (rng) => Uint8Array.from({ length: rng.nextU32() % 256 }, () => rng.nextU32() & 0xff),
  noise512: (rng) => Uint8Array.from({ length: rng.nextU32() % 512 }, () => rng.nextU32() & 0xff),
} satisfies Record<string, ByteMutation>;

export type ByteMutationName = keyof typeof BYTE_MUTATIONS;

/** The command-line fuzzer's mix (texts, JSON, tokenizers, GGUF headers): u32 fields, invalid UTF-8, empty files, long runs. */
export const INPUT_FILE_MUTATIONS: readonly ByteMutationName[] = ['flip', 'overwrite', 'truncate', 'inflateU32', 'insertDelete', 'invalidUtf8', 'empty', 'longRun', 'noise512'];
/** The binary readers' mix (GGUF, safetensors): u64 fields, noise after the magic, JSON number rewrites. */
export const BINARY_FILE_MUTATIONS: readonly ByteMutationName[] = ['flip', 'overwrite', 'truncate', 'inflateU64', 'insertDelete', 'noiseAfterPrefix', 'rewriteNumber', 'noise256'];

/** One seeded byte mutation from `kinds`, at positions within the first `region` bytes. */
export function mutateBytes(rng: Rng, base: Uint8Array, region = base.length, kinds: readonly ByteMutationName[] = INPUT_FILE_MUTATIONS): Uint8Array {
  const pos = () => rng.nextU32() % Math.max(1, Math.min(region, base.length));
  const kind = kinds[rng.nextU32() % kinds.length];
  return BYTE_MUTATIONS[kind](rng, base.slice(), pos, base);
}

function randomJsonValue(rng: Rng, depth = 0): unknown {
  const k = rng.nextU32() % 16;
  switch (k) {
    case 0:
      return null;
    case 1:
      return pick(rng, [true, false]);
    case 2:
      return pick(rng, [0, -1, 1, 2, 0.5, -0.5, 1e30, -1e30, 2 ** 31, 2 ** 32, 2 ** 53 + 2, 1e-320, 65504, 3e38]);
    case 3:
      return rng.nextU32();
    case 4:
      return '';
    case 5:
      return pick(rng, ['NaN', 'Infinity', '<s>', '</s>', '\u0000', '\ud800', 'a'.repeat(1 << 16), '▁the', 'llama', 'BPE', 'gpt2']);
    case 6:
      return [];
    case 7:
      return {};
    case 8:
      return depth < 3 ? Array.from({ length: rng.nextU32() % 4 }, () => randomJsonValue(rng, depth + 1)) : 1;
    case 9:
      return depth < 3 ? Object.fromEntries(Array.from({ length: rng.nextU32() % 4 }, (_, i) => [pick(rng, ['type', 'id', 'content', 'vocab', 'merges', `k${i}`, '__proto__']), randomJsonValue(rng, depth + 1)])) : 1;
    case 10:
      return Array.from({ length: 1 << 12 }, (_, i) => i);
    default:
      return rng.nextU32() % 1000;
  }
}

/** Every (container, key) path in a JSON value, breadth first, at most `max`. */
function paths(v: unknown, max = 4000): { parent: Record<string, unknown> | unknown[]; key: string | number }[] {
  const out: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = [];
  const queue: unknown[] = [v];
  while (queue.length && out.length < max) {
    const x = queue.shift();
    if (Array.isArray(x)) {
      x.forEach((c, i) => {
        out.push({ parent: x, key: i });
        if (c && typeof c === 'object') queue.push(c);
      });
    } else if (x && typeof x === 'object') {
      for (const [k, c] of Object.entries(x)) {
        out.push({ parent: x as Record<string, unknown>, key: k });
        if (c && typeof c === 'object') queue.push(c);
      }
    }
  }
  return out;
}

/** A structural JSON mutation (one to three edits), sometimes followed by a byte mutation of the text. */
export function mutateJson(rng: Rng, text: string): Uint8Array {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return mutateBytes(rng, new TextEncoder().encode(text));
  }
  if (rng.nextU32() % 10 === 0) v = randomJsonValue(rng);
  const ps = paths(v);
  for (let e = 0, n = 1 + (rng.nextU32() % 3); e < n && ps.length; e++) {
    // prefer shallow keys (the ones a reader looks at first) half of the time
    const p = rng.nextU32() % 2 ? ps[rng.nextU32() % Math.min(ps.length, 64)] : pick(rng, ps);
    const op = rng.nextU32() % 4;
    if (op === 0 && !Array.isArray(p.parent)) delete (p.parent as Record<string, unknown>)[p.key as string];
    else if (op === 1 && Array.isArray(p.parent)) p.parent.splice(p.key as number, 1);
    else (p.parent as Record<string | number, unknown>)[p.key] = randomJsonValue(rng);
  }
  const out = new TextEncoder().encode(JSON.stringify(v) ?? 'null');
  return rng.nextU32() % 8 === 0 ? mutateBytes(rng, out) : out;
}

function randomGgufValue(rng: Rng): GgufValue {
  switch (rng.nextU32() % 9) {
    case 0:
      return { type: 'u32', value: pick(rng, [0, 1, 2, 0xffffffff, 0x7fffffff, 4096, rng.nextU32()]) };
    case 1:
      return { type: 'u64', value: pick(rng, [0n, 2n ** 40n, 2n ** 63n, 2n ** 64n - 1n]) };
    case 2:
      return { type: 'i32', value: pick(rng, [-1, -2147483648, 0]) };
    case 3:
      return { type: 'f32', value: pick(rng, [NaN, Infinity, -1, 0, 1e30, 1e-30]) };
    case 4:
      return { type: 'string', value: pick(rng, ['', 'llama', 'gpt2', 'qwen2', 'x'.repeat(4096), '\u0000']) };
    case 5:
      return { type: 'bool', value: rng.nextU32() % 2 === 0 };
    case 6:
      return { type: 'array', itemType: 'string', value: pick(rng, [[], ['a'], Array.from({ length: 600 }, (_, i) => `t${i}`)]) } as GgufValue;
    case 7:
      return { type: 'array', itemType: 'f32', value: Array.from({ length: rng.nextU32() % 600 }, () => pick(rng, [0, NaN, -1e30])) } as GgufValue;
    default:
      return { type: 'array', itemType: 'i32', value: Array.from({ length: rng.nextU32() % 600 }, () => pick(rng, [1, 3, 6, -1, 1 << 30])) } as GgufValue;
  }
}

/** A GGUF with one to three metadata values replaced, added or dropped (tensors kept), re-encoded. */
export async function mutateGgufMetadata(rng: Rng, base: Uint8Array): Promise<Uint8Array> {
  const g = await readGguf(memorySource(base));
  const md: [string, GgufValue][] = [...g.metadata];
  for (let e = 0, n = 1 + (rng.nextU32() % 3); e < n; e++) {
    const op = rng.nextU32() % 5;
    if (op === 0 && md.length) md.splice(rng.nextU32() % md.length, 1);
    else if (op === 1) md.push([pick(rng, ['llama.block_count', 'llama.embedding_length', 'llama.attention.head_count', 'llama.attention.head_count_kv', 'llama.context_length', 'tokenizer.ggml.bos_token_id', 'general.alignment', 'llama.rope.dimension_count', 'llama.vocab_size', 'llama.attention.key_length']), randomGgufValue(rng)]);
    else if (md.length) md[rng.nextU32() % md.length][1] = randomGgufValue(rng);
  }
  // keys must be unique in a file: the last write wins, as a writer would produce
  const uniq = new Map(md);
  const tensors = await Promise.all(g.tensors.map(async (t) => ({ name: t.name, type: t.type, shape: t.shape, data: await g.readBytes(t.name) })));
  try {
    return await encodeGguf([...uniq], tensors as never);
  } catch {
    // a value the writer itself refuses (e.g. a bad alignment): fall back to byte mutations of the header
    return mutateBytes(rng, base, 4096);
  }
}
