// Files from the user's disk: a file input (several files), a folder input (webkitdirectory), or
// drag and drop (files and folders). Names are made relative to the model's folder; the Files
// themselves are kept as they are (Blobs read in slices later, never read here).
import type { InFile } from './protocol.js';

export interface Picked {
  files: InFile[];
  /** the folder's name, or the main file's */
  label: string;
  /** the folder's name when a folder was chosen (the model is read as that folder, as the CLI would) */
  folder: string | null;
}

function label(files: InFile[], folder: string | null): string {
  if (folder) return folder;
  const main = [...files].sort((a, b) => b.blob.size - a.blob.size)[0];
  return main?.name ?? '';
}

/** From an <input type=file>: `folder` inputs give paths like "model/config.json". */
export function pickedFiles(list: FileList | null, folder: boolean): Picked {
  const all: File[] = list ? Array.from(list) : [];
  if (!folder) return { files: all.map((f) => ({ name: f.name, blob: f })), label: label(all.map((f) => ({ name: f.name, blob: f })), null), folder: null };
  const rel = all.map((f) => (f as File & { webkitRelativePath?: string }).webkitRelativePath || f.name);
  const top = rel[0]?.split('/')[0] ?? '';
  const files = all
    .map((f, i) => ({ name: rel[i].split('/').slice(1).join('/') || f.name, blob: f as Blob }))
    // the model's own files only: hidden files and nested caches are skipped
    .filter((f) => !f.name.split('/').some((part: string) => part.startsWith('.')));
  return { files, label: top, folder: top || null };
}

type Entry = FileSystemEntry;

function readEntries(dir: FileSystemDirectoryEntry): Promise<Entry[]> {
  const reader = dir.createReader();
  const out: Entry[] = [];
  return new Promise((resolve, reject) => {
    const next = () =>
      reader.readEntries((batch) => {
        if (!batch.length) return resolve(out);
        out.push(...batch);
        next();
      }, reject);
    next();
  });
}

async function walk(e: Entry, prefix: string, out: InFile[]): Promise<void> {
  if (e.name.startsWith('.')) return;
  if (e.isFile) {
    const f = await new Promise<File>((resolve, reject) => (e as FileSystemFileEntry).file(resolve, reject));
    out.push({ name: prefix + e.name, blob: f });
  } else if (e.isDirectory) {
    for (const c of await readEntries(e as FileSystemDirectoryEntry)) await walk(c, `${prefix}${e.name}/`, out);
  }
}

/** From a drop: one folder (its files, relative to it) or loose files. */
export async function droppedFiles(dt: DataTransfer): Promise<Picked> {
  const entries = Array.from(dt.items).map((i) => i.webkitGetAsEntry?.()).filter((e): e is Entry => !!e);
  if (entries.length === 1 && entries[0].isDirectory) {
    const out: InFile[] = [];
    for (const c of await readEntries(entries[0] as FileSystemDirectoryEntry)) await walk(c, '', out);
    return { files: out, label: entries[0].name, folder: entries[0].name };
  }
  const files = Array.from(dt.files).map((f) => ({ name: f.name, blob: f as Blob }));
  return { files, label: label(files, null), folder: null };
}
