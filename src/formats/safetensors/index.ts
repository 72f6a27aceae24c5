/**
 * safetensors: pure reader/writer over ByteSource/ByteSink (browser-safe). File paths: see
 * `formats/io` (`openSafetensorsFile`, `openSafetensorsDir`, `writeSafetensorsFile`).
 *
 * Read:
 * - `readSafetensors(src, {maxHeaderBytes?, requireAlignment?})` → SafetensorsFile: `metadata` (__metadata__),
 *   `tensors` (SafetensorsTensorInfo {name, dtype, shape, dataOffsets, offset (absolute), byteLength},
 *   in data order), `names()`, `has(n)`, `info(n)`, `readBytes(n)` (raw LE bytes),
 *   `readTensor(n)` → core Tensor (F16/BF16/F8 as raw bit patterns), `close()`.
 *   Only the 8-byte length and the JSON header are read up front. Errors are FormatError with
 *   codes truncated | too_large | bad_string | bad_header | duplicate_name | dtype_unknown |
 *   shape_mismatch | overlap | out_of_bounds | missing_tensor, naming file, tensor/field, offset.
 * - Sharded: `parseShardIndex(json, name)` + `openShardedSafetensors(index, name, openShard)` →
 *   ShardedSafetensors (same read API, plus `shards`, `indexMetadata`, `info(n).file`).
 *   `SafetensorsView` is the shared interface of single and sharded files. `planShards(tensors,
 *   maxShardBytes)` splits a write into HF-named shards plus the index object.
 *
 * Write:
 * - `writeSafetensors(sink, tensors, {metadata?, order?: 'aligned'|'given', signal?, onProgress?})`
 *   where each tensor is {name, dtype, shape, data? | produce?: () => bytes} (data: Uint8Array of LE
 *   bytes or a typed array of the dtype's storage). Streams one tensor at a time; header padded with
 *   spaces to 8 bytes; default order = the reference writer's (dtype rank desc, then name): aligned and byte-identical.
 *   The sink is not closed by the writer.
 * - `encodeSafetensors(tensors, opts)` → Uint8Array; `safetensorsLayout(tensors, opts)` (offsets only);
 *   `tensorEntry(name, tensor)` builds a write entry from a core Tensor.
 */
export * from './header.js';
export * from './reader.js';
export * from './writer.js';
export * from './sharded.js';
