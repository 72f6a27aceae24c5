// Saving outputs: a file is streamed from its Blob to a file the user picks (File System Access
// API) or handed to the browser's download as a Blob URL; a folder (GPTQ / compressed-tensors
// safetensors, a transformers.js ONNX folder) becomes one zip, written by fflate as a stream of
// stored (uncompressed: weights do not compress) entries with a fixed timestamp, so the same
// files give the same zip.
// Reads: bounded slices, each one `slice().arrayBuffer()` watched for stalls (readBlob, the vfs's
// guarded read: retried when the browser leaves it pending, EIO after three tries). Not Blob
// streams: Chromium has left a stream read of a File's slice pending for good (the stall hunt of
// #18), and a slice's arrayBuffer() holds no more than one chunk at a time.
import { Zip, ZipPassThrough } from 'fflate';
import type { OutFile } from './protocol.js';
import { readBlob } from './shims/vfs.js';

/** bytes per read of an output's Blob (one of these is in the page's memory at a time per save) */
export const DOWNLOAD_CHUNK = 1 << 20;

/** The chunks of `blob` in order, each read by a watched slice read; none for an empty Blob. */
export async function* blobChunks(blob: Blob, chunk = DOWNLOAD_CHUNK): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < blob.size; at += chunk) yield await readBlob(blob, at, Math.min(chunk, blob.size - at));
}

/** 1980-01-01, the zip format's epoch: no clock in the archive. */
const ZIP_TIME = new Date(1980, 0, 1, 0, 0, 0);

interface ChunkSink {
  write(chunk: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** Zips `files` under `folder/` into `sink`, reading each file's Blob as a stream. */
export async function zipTo(folder: string, files: OutFile[], sink: ChunkSink): Promise<void> {
  let writes: Promise<void> = Promise.resolve();
  let failed: unknown = null;
  const zip = new Zip((err, chunk) => {
    if (err) failed = err;
    else writes = writes.then(() => sink.write(chunk));
  });
  for (const f of [...files].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const entry = new ZipPassThrough(`${folder}/${f.name}`);
    entry.mtime = ZIP_TIME;
    zip.add(entry);
    let at = 0;
    for await (const c of blobChunks(f.blob)) {
      at += c.length;
      entry.push(c, at === f.blob.size);
      await writes;
    }
    if (f.blob.size === 0) entry.push(new Uint8Array(0), true);
  }
  zip.end();
  await writes;
  if (failed) throw failed;
  await sink.close();
}

type SaveFilePicker = (o: { suggestedName: string }) => Promise<{ createWritable(): Promise<{ write(c: Uint8Array | Blob): Promise<void>; close(): Promise<void> }> }>;

function pickerOf(usePicker: boolean): SaveFilePicker | null {
  const p = (window as unknown as { showSaveFilePicker?: SaveFilePicker }).showSaveFilePicker;
  return usePicker && p ? p.bind(window) : null;
}

/**
 * A sink into the parts of a Blob, for browsers (or settings) without a file picker. Each chunk
 * becomes a Blob at once (the browser process keeps its bytes), so the page holds no copy of the zip.
 */
function blobSink(): ChunkSink & { parts: BlobPart[] } {
  const parts: BlobPart[] = [];
  return { parts, write: async (c) => void parts.push(new Blob([c as Uint8Array<ArrayBuffer>])), close: async () => undefined };
}

function clickDownload(name: string, blob: Blob): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
}

/** Saves one file. Returns false if the user dismissed the picker. */
export async function saveFile(name: string, blob: Blob, usePicker: boolean): Promise<boolean> {
  const picker = pickerOf(usePicker);
  if (!picker) {
    clickDownload(name, blob);
    return true;
  }
  let w;
  try {
    w = await (await picker({ suggestedName: name })).createWritable();
  } catch (e) {
    if ((e as Error).name === 'AbortError') return false;
    throw e;
  }
  for await (const c of blobChunks(blob)) await w.write(c);
  await w.close();
  return true;
}

/** Saves a folder output as `<folder>.zip`. */
export async function saveFolder(folder: string, files: OutFile[], usePicker: boolean): Promise<boolean> {
  const picker = pickerOf(usePicker);
  if (!picker) {
    const sink = blobSink();
    await zipTo(folder, files, sink);
    clickDownload(`${folder}.zip`, new Blob(sink.parts, { type: 'application/zip' }));
    return true;
  }
  let w;
  try {
    w = await (await picker({ suggestedName: `${folder}.zip` })).createWritable();
  } catch (e) {
    if ((e as Error).name === 'AbortError') return false;
    throw e;
  }
  await zipTo(folder, files, { write: (c) => w.write(c), close: () => w.close() });
  return true;
}
