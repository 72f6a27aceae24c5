// Sharded checkpoints (`model.safetensors.index.json`) as one logical view.
// The index is { "metadata": { "total_size": … }, "weight_map": { "<tensor>": "<shard file>" } };
// shard names are plain file names in the same directory (anything with a path separator or
// '..' is rejected so an index cannot point outside its directory).

import { DTYPES } from '../../core/dtype.js';
import { ConfigError, FormatError } from '../../core/errors.js';
import { numel, type Tensor } from '../../core/tensor.js';
import type { ByteSource } from '../bytes.js';
import type { SafetensorsTensorInfo } from './header.js';
import { missingTensor, readSafetensors, type SafetensorsFile, type SafetensorsReadOptions } from './reader.js';
import type { SafetensorsWriteTensor } from './writer.js';

export interface ShardedTensorInfo extends SafetensorsTensorInfo {
  /** shard file name, as in weight_map */
  file: string;
}

/** The subset of SafetensorsFile that single files and sharded sets share. */
export interface SafetensorsView {
  readonly name: string;
  /** single file: its __metadata__; sharded: every shard's __metadata__ merged in shard order */
  readonly metadata: Record<string, string>;
  names(): string[];
  has(name: string): boolean;
  info(name: string): SafetensorsTensorInfo;
  readBytes(name: string): Promise<Uint8Array>;
  /** optional: the raw bytes into `dst` (exactly the tensor's byte length) */
  readBytesInto?(name: string, dst: Uint8Array): Promise<void>;
  /** optional: where the bytes of `name` lie in a local file (null when not in one) */
  location?(name: string): { path: string; offset: number } | null;
  readTensor(name: string): Promise<Tensor>;
  close(): Promise<void>;
}

export interface ShardedSafetensors extends SafetensorsView {
  /** the index's own "metadata" object (e.g. total_size) */
  readonly indexMetadata: Record<string, unknown>;
  readonly shards: readonly SafetensorsFile[];
  info(name: string): ShardedTensorInfo;
}

export interface ShardIndex {
  metadata: Record<string, unknown>;
  weightMap: Map<string, string>;
  /** distinct shard files, in first-mention order */
  files: string[];
}

/** Validates a parsed index JSON. `indexName` labels errors. */
export function parseShardIndex(json: unknown, indexName: string): ShardIndex {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new FormatError('bad_header', 'index is not a JSON object', { file: indexName });
  }
  const j = json as Record<string, unknown>;
  const wm = j.weight_map;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) {
    throw new FormatError('bad_header', 'index has no weight_map object', { file: indexName, field: 'weight_map' });
  }
  const weightMap = new Map<string, string>();
  const files: string[] = [];
  for (const [name, f] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof f !== 'string' || f === '' || /[\\/]/.test(f) || f === '.' || f === '..') {
      throw new FormatError('bad_header', 'weight_map entries must be plain file names', {
        file: indexName,
        field: `weight_map.${name}`,
        found: f,
      });
    }
    weightMap.set(name, f);
    if (!files.includes(f)) files.push(f);
  }
  const md = j.metadata;
  const metadata = typeof md === 'object' && md !== null && !Array.isArray(md) ? (md as Record<string, unknown>) : {};
  return { metadata, weightMap, files };
}

/**
 * Opens every shard named by the index through `openShard(fileName)` and checks that each
 * weight_map entry is present in its shard (missing_tensor) and that no tensor appears in two
 * shards (duplicate_name). Tensors a shard holds but the index does not list are left out.
 */
export async function openShardedSafetensors(
  index: ShardIndex,
  indexName: string,
  openShard: (file: string) => Promise<ByteSource>,
  opts: SafetensorsReadOptions = {},
): Promise<ShardedSafetensors> {
  const shards: SafetensorsFile[] = [];
  const byFile = new Map<string, SafetensorsFile>();
  try {
    for (const f of index.files) {
      const src = await openShard(f);
      const s = await readSafetensors(src, opts).catch(async (e: unknown) => {
        await src.close?.().catch(() => undefined);
        throw e;
      });
      shards.push(s);
      byFile.set(f, s);
    }
  } catch (e) {
    await Promise.all(shards.map((s) => s.close().catch(() => undefined)));
    throw e;
  }
  const owner = new Map<string, string>();
  for (const [f, s] of byFile) {
    for (const n of s.names()) {
      const prev = owner.get(n);
      if (prev !== undefined) {
        await Promise.all(shards.map((x) => x.close().catch(() => undefined)));
        throw new FormatError('duplicate_name', 'tensor appears in two shards', { file: indexName, tensor: n, expected: prev, found: f });
      }
      owner.set(n, f);
    }
  }
  const names: string[] = [];
  for (const [n, f] of index.weightMap) {
    if (!byFile.get(f)!.has(n)) {
      await Promise.all(shards.map((x) => x.close().catch(() => undefined)));
      throw new FormatError('missing_tensor', 'weight_map names a tensor its shard does not hold', {
        file: indexName,
        tensor: n,
        field: `weight_map.${n}`,
        found: f,
      });
    }
    names.push(n);
  }
  const metadata: Record<string, string> = {};
  for (const s of shards) Object.assign(metadata, s.metadata);
  const shardOf = (name: string): SafetensorsFile => {
    const f = index.weightMap.get(name);
    if (f === undefined) throw missingTensor(indexName, name, names);
    return byFile.get(f)!;
  };
  return {
    name: indexName,
    metadata,
    indexMetadata: index.metadata,
    shards,
    names: () => [...names],
    has: (n) => index.weightMap.has(n),
    info: (n) => ({ ...shardOf(n).info(n), file: index.weightMap.get(n)! }),
    readBytes: async (n) => shardOf(n).readBytes(n),
    location: (n) => shardOf(n).location(n),
    readTensor: async (n) => shardOf(n).readTensor(n),
    close: async () => {
      await Promise.all(shards.map((s) => s.close()));
    },
  };
}

export interface ShardPlan {
  /** shard file name → the tensors it holds, in write order */
  shards: { file: string; tensors: SafetensorsWriteTensor[]; bytes: number }[];
  /** the model.safetensors.index.json object (weight_map sorted by name) */
  index: { metadata: { total_size: number }; weight_map: Record<string, string> };
}

/**
 * Splits tensors into shards of at most `maxShardBytes` of tensor data (a single larger tensor
 * gets a shard of its own), in the order given, named `<base>-00001-of-0000N.safetensors` as
 * Hugging Face names them. Pure: nothing is written.
 */
export function planShards(tensors: readonly SafetensorsWriteTensor[], maxShardBytes: number, base = 'model'): ShardPlan {
  if (!(maxShardBytes > 0)) throw new ConfigError('bad_option', 'maxShardBytes must be positive', { field: 'maxShardBytes', found: maxShardBytes });
  const groups: { tensors: SafetensorsWriteTensor[]; bytes: number }[] = [];
  let cur: { tensors: SafetensorsWriteTensor[]; bytes: number } | null = null;
  let total = 0;
  for (const t of tensors) {
    const n = numel(t.shape) * DTYPES[t.dtype].bytes;
    if (!cur || (cur.tensors.length > 0 && cur.bytes + n > maxShardBytes)) {
      cur = { tensors: [], bytes: 0 };
      groups.push(cur);
    }
    cur.tensors.push(t);
    cur.bytes += n;
    total += n;
  }
  const count = Math.max(1, groups.length);
  const pad = (i: number) => String(i).padStart(5, '0');
  const shards = groups.map((g, i) => ({ file: `${base}-${pad(i + 1)}-of-${pad(count)}.safetensors`, ...g }));
  const entries: [string, string][] = [];
  for (const s of shards) for (const t of s.tensors) entries.push([t.name, s.file]);
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { shards, index: { metadata: { total_size: total }, weight_map: Object.fromEntries(entries) } };
}
