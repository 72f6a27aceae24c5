// Saving outputs: a file is streamed from its Blob to a file the user picks (File System Access
// API) or handed to the browser's download as a Blob URL; a folder (GPTQ / compressed-tensors
// safetensors, a transformers.js ONNX folder) becomes one zip, written by fflate as a stream of
// stored (uncompressed: weights do not compress) entries with a fixed timestamp, so the same
// files give the same zip.
import { Zip, ZipPassThrough } from 'fflate';
import type { OutFile } from './protocol.js';

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
    const reader = f.blob.stream().getReader();
    let next = await reader.read();
    while (!next.done) {
      const cur = next.value;
      next = await reader.read();
      entry.push(cur, next.done);
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

/** A sink into the chunks of a Blob, for browsers (or settings) without a file picker. */
function blobSink(): ChunkSink & { parts: BlobPart[] } {
  const parts: BlobPart[] = [];
  return { parts, write: async (c) => void parts.push(c as Uint8Array<ArrayBuffer>), close: async () => undefined };
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
  const reader = blob.stream().getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) await w.write(r.value);
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
