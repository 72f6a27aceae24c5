// Models by Hugging Face Hub id (`bitscale quantize Qwen/Qwen2.5-0.5B …`), fetched with the Hub's
// JS client (@huggingface/hub: model info, tree listing, resolve downloads; no HTTP written here)
// into the cache layout huggingface_hub uses, so a model another tool downloaded is reused and ours
// is reused by them:
//   <cache>/models--<org>--<name>/blobs/<etag>            the file contents (etag: LFS sha256 or git oid)
//   <cache>/models--<org>--<name>/snapshots/<sha>/<path>  relative symlinks to the blobs
//   <cache>/models--<org>--<name>/refs/<revision>         the commit sha the revision resolved to
// Only the files a model needs are fetched (config, weights, tokenizer, generation config). A
// download is resumable: finished files are kept, and an interrupted one continues from its
// `<blob>.incomplete` bytes with a range request (the client's Blob.slice); LFS files are checked
// against their sha256 before they enter the cache. Offline (HF_HUB_OFFLINE), the snapshot the
// revision last resolved to is used without any request, or a typed error says the model is not
// cached. Settings come from the CLI (the only layer that reads the environment): endpoint
// (HF_ENDPOINT), token (HF_TOKEN), cache directory (HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME), offline.

import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, readFile, rename, rm, stat, symlink, copyFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { ConfigError, IoError } from '../core/errors.js';
import { checkAborted, ProgressTracker, type ProgressFn } from '../core/progress.js';

export interface HubOptions {
  /** the Hub's base URL (HF_ENDPOINT); default https://huggingface.co */
  endpoint?: string;
  /** access token (HF_TOKEN) for gated and private models */
  token?: string;
  /** the hub cache directory (HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub) */
  cacheDir: string;
  /** no network: use the cached snapshot or fail (HF_HUB_OFFLINE=1) */
  offline?: boolean;
  onProgress?: ProgressFn;
  signal?: AbortSignal;
  /** one line per downloaded or reused file */
  log?: (line: string) => void;
}

export interface HubModel {
  id: string;
  revision: string;
  /** the commit the revision resolved to */
  sha: string;
  /** the local snapshot folder: load it as any Hugging Face directory */
  path: string;
  /** files fetched in this call (the others were in the cache) */
  downloaded: string[];
}

/** The cache directory huggingface_hub would use for these environment values. */
export function hubCacheDir(env: { HF_HUB_CACHE?: string; HF_HOME?: string; XDG_CACHE_HOME?: string }, home: string): string {
  return env.HF_HUB_CACHE || join(env.HF_HOME || join(env.XDG_CACHE_HOME || join(home, '.cache'), 'huggingface'), 'hub');
}

const ID = /^([A-Za-z0-9][\w.-]*)\/([\w.-]+)(?:@([\w./-]+))?$/;

/** `org/name` or `org/name@revision` that is not an existing local path. */
export function parseHubId(s: string): { id: string; revision: string } | null {
  const m = ID.exec(s);
  if (!m || m[2].endsWith('.gguf') || m[2].endsWith('.bin') || m[2].endsWith('.safetensors')) return null;
  return { id: `${m[1]}/${m[2]}`, revision: m[3] ?? 'main' };
}

/** Which repository files a model needs. */
export function wantedFile(path: string): boolean {
  if (path.includes('/')) return false;
  return /\.safetensors$/.test(path) || /^(config|generation_config|tokenizer|tokenizer_config|special_tokens_map|model\.safetensors\.index)\.json$/.test(path) || path === 'tokenizer.model';
}

const repoFolder = (id: string) => `models--${id.replace(/\//g, '--')}`;

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}

async function sha256Of(path: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path), h);
  return h.digest('hex');
}

/** A snapshot pointer: a relative symlink to the blob as huggingface_hub makes them (a copy where links are not allowed). */
async function link(blob: string, pointer: string): Promise<void> {
  await mkdir(dirname(pointer), { recursive: true });
  await rm(pointer, { force: true });
  try {
    await symlink(relative(dirname(pointer), blob), pointer);
  } catch {
    await copyFile(blob, pointer);
  }
}

function offlineSnapshot(storage: string, id: string, revision: string): Promise<string> {
  return (async () => {
    const sha = /^[0-9a-f]{40}$/.test(revision) ? revision : (await readFile(join(storage, 'refs', revision), 'utf8').catch(() => '')).trim();
    const snap = sha ? join(storage, 'snapshots', sha) : '';
    if (!sha || !(await exists(join(snap, 'config.json')))) {
      throw new IoError('missing_file', `model ${id}@${revision} is not in the Hugging Face cache, and offline mode forbids downloading it`, {
        file: join(storage, 'snapshots'),
        expected: 'a cached snapshot with config.json',
        found: sha ? `snapshot ${sha} without config.json` : `no refs/${revision}`,
        hint: 'unset HF_HUB_OFFLINE to download it once, or point HF_HUB_CACHE / HF_HOME at a cache that has it',
      });
    }
    return snap;
  })();
}

/** Makes `id@revision` available locally (see the file comment) and returns its snapshot folder. */
export async function fetchHubModel(spec: string, o: HubOptions): Promise<HubModel> {
  const parsed = parseHubId(spec);
  if (!parsed) throw new ConfigError('bad_option', 'not a Hugging Face model id', { field: 'MODEL', expected: 'org/name or org/name@revision', found: spec });
  const { id, revision } = parsed;
  const storage = join(o.cacheDir, repoFolder(id));
  if (o.offline) {
    const path = await offlineSnapshot(storage, id, revision);
    return { id, revision, sha: path.split('/').pop()!, path, downloaded: [] };
  }
  const hub = await import('@huggingface/hub');
  const cred = { hubUrl: o.endpoint, accessToken: o.token };
  const hint = `check the id, the network, HF_ENDPOINT${o.token ? '' : ', and HF_TOKEN for gated or private models'}; offline, set HF_HUB_OFFLINE=1 to use the cache`;
  let sha: string;
  try {
    sha = (await hub.modelInfo({ ...cred, name: id, revision, additionalFields: ['sha'] })).sha as string;
  } catch (e) {
    throw new IoError('io', `cannot reach the Hub for model ${id}@${revision}: ${(e as Error).message}`, { file: `${o.endpoint ?? 'https://huggingface.co'}/${id}`, hint });
  }
  if (revision !== sha) {
    await mkdir(join(storage, 'refs'), { recursive: true });
    await writeFile(join(storage, 'refs', revision), sha);
  }
  const snap = join(storage, 'snapshots', sha);
  const files: { path: string; size: number; etag: string; sha256: string | null }[] = [];
  const ggufs: string[] = [];
  for await (const e of hub.listFiles({ ...cred, repo: { type: 'model', name: id }, revision: sha })) {
    if (e.type !== 'file') continue;
    if (e.path.endsWith('.gguf')) ggufs.push(e.path);
    if (!wantedFile(e.path)) continue;
    const etag = e.lfs?.oid ?? e.oid;
    if (!etag) throw new IoError('bad_header', 'the Hub listed a file without an oid', { file: `${id}/${e.path}`, field: 'oid' });
    files.push({ path: e.path, size: e.lfs?.size ?? e.size, etag, sha256: e.lfs?.oid ?? null });
  }
  if (!files.some((f) => f.path === 'config.json') || !files.some((f) => f.path.endsWith('.safetensors'))) {
    throw new ConfigError('unsupported', `Hub model ${id} has no config.json + safetensors weights`, {
      file: id,
      expected: 'a Hugging Face model repository (config.json, *.safetensors)',
      found: ggufs.length ? `GGUF files only: ${ggufs.slice(0, 4).join(', ')}` : 'neither',
      hint: ggufs.length ? 'download the GGUF file and pass its path' : undefined,
    });
  }
  const total = files.reduce((a, f) => a + f.size, 0);
  const track = new ProgressTracker('download', Math.max(1, Math.round(total / 1e6)), o.onProgress, 'MB');
  let shown = 0;
  const show = (bytes: number, detail: string) => {
    const mb = Math.round(bytes / 1e6);
    if (mb > shown) track.tick(detail, mb - shown);
    shown = Math.max(shown, mb);
  };
  const downloaded: string[] = [];
  let doneBytes = 0;
  for (const f of files) {
    checkAborted(o.signal);
    const pointer = join(snap, f.path);
    const blob = join(storage, 'blobs', f.etag);
    if ((await exists(pointer)) && (await stat(pointer).catch(() => null))?.size === f.size) {
      doneBytes += f.size;
      o.log?.(`${id}: ${f.path} (cached)`);
      continue;
    }
    if (!((await stat(blob).catch(() => null))?.size === f.size)) {
      await mkdir(dirname(blob), { recursive: true });
      const part = `${blob}.incomplete`;
      const have = (await stat(part).catch(() => null))?.size ?? 0;
      const remote = await hub.downloadFile({ ...cred, repo: { type: 'model', name: id }, path: f.path, revision: sha });
      if (!remote) throw new IoError('missing_file', 'the Hub listed a file it does not serve', { file: `${id}/${f.path}` });
      if (remote.size !== f.size) throw new IoError('io', 'the Hub served a file of another size than it listed', { file: `${id}/${f.path}`, expected: f.size, found: remote.size });
      // resume: only the bytes not yet in the .incomplete file (a range request through the client's Blob)
      const rest = have > 0 && have < f.size ? remote.slice(have) : remote;
      const out = createWriteStream(part, { flags: rest === remote ? 'w' : 'a' });
      let got = rest === remote ? 0 : have;
      const counted = Readable.fromWeb(rest.stream() as WebReadableStream).on('data', (c: Buffer) => {
        got += c.length;
        show(doneBytes + got, f.path);
      });
      await pipeline(counted, out, { signal: o.signal });
      if ((await stat(part)).size !== f.size) throw new IoError('truncated', 'download ended early', { file: `${id}/${f.path}`, expected: f.size, found: (await stat(part)).size, hint: 'run the command again: the download resumes' });
      if (f.sha256 && (await sha256Of(part)) !== f.sha256) {
        await rm(part, { force: true });
        throw new IoError('mismatch', 'downloaded file does not match its sha256', { file: `${id}/${f.path}`, expected: f.sha256, hint: 'run the command again (the partial file was removed)' });
      }
      await rename(part, blob);
      downloaded.push(f.path);
      o.log?.(`${id}: ${f.path} (${(f.size / 1e6).toFixed(1)} MB${have > 0 && have < f.size ? `, resumed at ${(have / 1e6).toFixed(1)} MB` : ''})`);
    }
    await link(blob, pointer);
    doneBytes += f.size;
    show(doneBytes, f.path);
  }
  return { id, revision, sha, path: snap, downloaded };
}
