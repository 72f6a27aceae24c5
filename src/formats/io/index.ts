/**
 * Filesystem adapter for formats/ (Node only; the one place under formats/ that imports node:fs).
 *
 * Low level:
 * - `openFileSource(path)` → FileSource (ByteSource with positional reads; call `close()`).
 * - `AtomicFileSink.create(path, {overwrite?, inputs?})` → ByteSink writing `<path>.tmp-<pid>-<rand>`;
 *   `close()` fsyncs and renames, `abort()` deletes. `withAtomicFile(path, opts, sink => …)` wraps it.
 *   Refusals (checked before writing): output equals an input → IoError 'would_overwrite_input';
 *   output exists and `overwrite` not set → IoError 'exists'.
 * - `atomicWriteFile(path, bytesOrString, opts)`, `readJsonFile(path)`, `fileExists(path)`,
 *   `sha256File(path)` (streamed, lowercase hex), `checkOutputPath(path, opts)`.
 *
 * Outputs (output.ts): `withOutput(path, {kind, force, inputs, sidecars}, txn => …)` checks the
 *   output before any work (parent folder, inputs protected, --force replaces only a folder
 *   bitscale wrote), locks it, stages the write in `.<name>.tmp-<pid>-<hex>/`, and `commit()`s
 *   by rename with the output's sha256 in its manifest; dead runs' staging is recovered.
 *
 * Containers by path:
 * - `openSafetensorsFile(path)`, `openShardedSafetensorsFile(indexJsonPath)`, `openSafetensorsDir(dir)`
 *   (index.json if present, else model.safetensors), `writeSafetensorsFile(path, tensors, opts)`,
 *   `writeShardedSafetensorsFiles(dir, tensors, {maxShardBytes, base?, ...})` (HF shard names;
 *   index.json written last), `writeHfSafetensorsDir(dir, tensors, config, opts)` (model.safetensors +
 *   config.json + text files, one staged output).
 * - `openGgufFile(path)`, `writeGgufFile(path, metadata, tensors, opts)`.
 */
export * from './file.js';
export * from './output.js';
export * from './containers.js';
export * from './digest-cache.js';
