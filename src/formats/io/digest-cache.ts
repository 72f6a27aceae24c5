// A cache of input files' sha256 digests, keyed by what the filesystem says about the file (device,
// inode, size, modification and change times in nanoseconds). Why: a manifest records the sha256 of
// the model it came from, and hashing a 2.5 GB model costs 1.4–1.7 CPU-s (SHA-NI) on every run —
// as much as quantizing it to Q4_0 — while the common workflow quantizes one input to many types.
// Any change to the file changes its change time (which no user call can set back), its size or
// its inode (a replacement), so a stale digest is never served; an entry is stored only when the
// file was not modified during the hashing and its last change is older than RACY_NS (a write in
// the same timestamp tick as the stat could otherwise go unseen, as git's "racily clean" rule
// says). Entries are small JSON files, one per input path, under the user cache folder:
// BITSCALE_DIGEST_CACHE names another folder, or turns the cache off with "off" / "0".

import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** A change this recent (ns before the hashing started) is not trusted to be the last one. */
const RACY_NS = 2_000_000_000n;

/** The cache folder (null: off): BITSCALE_DIGEST_CACHE, else <XDG_CACHE_HOME or ~/.cache>/bitscale/sha256. */
export function digestCacheDir(env: Record<string, string | undefined> = process.env, home = homedir()): string | null {
  const v = env.BITSCALE_DIGEST_CACHE;
  if (v === 'off' || v === '0') return null;
  if (v) return resolve(v);
  return join(env.XDG_CACHE_HOME || join(home, '.cache'), 'bitscale', 'sha256');
}

interface Identity {
  dev: string;
  ino: string;
  size: string;
  mtimeNs: string;
  ctimeNs: string;
}

async function identity(path: string): Promise<Identity | null> {
  const st = await stat(path, { bigint: true }).catch(() => null);
  if (!st?.isFile()) return null;
  // a filesystem without these (the page's in-memory one) has nothing to key a cache by
  if (![st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs].every((v) => typeof v === 'bigint')) return null;
  return { dev: `${st.dev}`, ino: `${st.ino}`, size: `${st.size}`, mtimeNs: `${st.mtimeNs}`, ctimeNs: `${st.ctimeNs}` };
}

const sameIdentity = (a: Identity, b: Identity): boolean => a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
const entryPath = (dir: string, abs: string): string => join(dir, `${createHash('sha256').update(abs).digest('hex')}.json`);

async function lookup(dir: string, abs: string, id: Identity): Promise<string | null> {
  try {
    const e = JSON.parse(await readFile(entryPath(dir, abs), 'utf8')) as Identity & { path?: string; sha256?: string };
    if (e.path === abs && sameIdentity(e, id) && typeof e.sha256 === 'string' && /^[0-9a-f]{64}$/.test(e.sha256)) return e.sha256;
  } catch {
    // no entry, or an unreadable one: a miss
  }
  return null;
}

/** Best effort (a cache): written to a temporary name and renamed, errors ignored. */
async function store(dir: string, abs: string, id: Identity, hex: string): Promise<void> {
  const p = entryPath(dir, abs);
  const tmp = `${p}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(tmp, JSON.stringify({ path: abs, ...id, sha256: hex }) + '\n');
    await rename(tmp, p);
  } catch {
    await unlink(tmp).catch(() => undefined);
  }
}

export interface CachedDigests {
  /** lowercase hex sha256 of each path, in order */
  hex: string[];
  /** whether each came from the cache (else it was computed now) */
  cached: boolean[];
}

/**
 * sha256 of each file: from the cache in `dir` where an entry matches the file as it is now, the
 * others by `compute` (which gets the paths to hash, in order), then stored (see the file comment;
 * `racyNs`: how old the file's last change must be for its digest to be stored).
 */
export async function sha256Cached(paths: readonly string[], compute: (paths: string[]) => Promise<string[]>, dir: string | null = digestCacheDir(), racyNs = RACY_NS): Promise<CachedDigests> {
  const abs = paths.map((p) => resolve(p));
  const before = dir ? await Promise.all(abs.map(identity)) : abs.map(() => null);
  const hex: (string | null)[] = await Promise.all(abs.map((a, i) => (dir && before[i] ? lookup(dir, a, before[i]) : null)));
  const startNs = BigInt(Date.now()) * 1_000_000n; // wall clock, as the file times are
  const miss = hex.flatMap((h, i) => (h === null ? [i] : []));
  const got = miss.length ? await compute(miss.map((i) => paths[i])) : [];
  for (let k = 0; k < miss.length; k++) {
    const i = miss[k];
    hex[i] = got[k];
    const b = before[i];
    if (!dir || !b || startNs - BigInt(b.ctimeNs) < racyNs || startNs - BigInt(b.mtimeNs) < racyNs) continue;
    const after = await identity(abs[i]);
    if (after && sameIdentity(b, after)) await store(dir, abs[i], b, got[k]);
  }
  return { hex: hex as string[], cached: hex.map((_, i) => !miss.includes(i)) };
}
