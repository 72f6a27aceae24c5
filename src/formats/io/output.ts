// Output transactions: how every command puts a file or a folder at its final path without ever
// losing the user's data.
//
// - Checked before any work (checkOutput): the parent folder exists and is a folder, the output is
//   not one of the run's inputs (same path, symlink or hard link; nor a folder holding one), an
//   existing output is replaced only with `force`, a folder only when bitscale wrote it (its
//   bitscale-manifest.json lists every file in it), a file output never replaces a folder, and a
//   folder output is never the current directory or one containing it.
// - One run per output: `.<name>.lock` beside it holds the owner's pid; a second run is refused
//   while the owner lives, a dead owner's lock is taken over.
// - Staged: the run writes into `.<name>.tmp-<pid>-<hex>/<name>` (sidecars such as
//   `<name>.manifest.json` beside it in that folder), verifies there, and `commit()` moves it into
//   place: the old output (and its bitscale sidecars) aside into the staging folder, the new one
//   renamed onto the final path (the commit point), the sidecars after it, the staging folder
//   removed. A failed or interrupted run removes its staging folder (`abort()`).
// - A killed run's staging folder is found by the next run on the same output (under the lock):
//   rolled back when the kill came before the commit point (an old output moved aside is put
//   back), rolled forward after it (sidecars moved into place), then deleted. Stray
//   `<name>.tmp-<pid>-<hex>` files of dead processes are deleted too.
// - A run that adds to a bitscale folder (`update`: ONNX variants side by side) starts its staging
//   folder as a hard-linked copy of the old one, so the swap at the commit point keeps every file
//   the run did not replace.
// - commit() records the output's sha256 in the manifest the run wrote (and writes a minimal one
//   for a folder that has none), so a manifest always describes the bytes beside it.

import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { access, copyFile, link, lstat, mkdir, open, readdir, readFile, realpath, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { BitscaleError, ConfigError, IoError } from '../../core/errors.js';
import { BITSCALE_VERSION } from '../../core/version.js';
import { escapeRe, noteRenamed, processAlive, removeStaleTempFiles, sha256File } from './file.js';

export { processAlive, removeStaleTempFiles };

/** The manifest every bitscale output folder holds (and that `force` looks for). */
export const MANIFEST_FILE = 'bitscale-manifest.json';

export type OutputKind = 'file' | 'dir';

export interface OutputOptions {
  kind: OutputKind;
  /** replace an existing output (a folder only when bitscale wrote it) */
  force?: boolean;
  /** paths the run reads: the output never replaces one, nor a folder holding one */
  inputs?: readonly (string | null | undefined)[];
  /** names of files written beside a file output (`<name>.manifest.json`, `<name>.data`) */
  sidecars?: readonly string[];
  /** the option that named the output, for messages (default --out) */
  label?: string;
  /** the command recorded in a minimal manifest (folders whose writer wrote none) */
  command?: string;
  /**
   * Resumable work (train): the staging folder is `<name>.partial` (a fixed, visible name) instead
   * of a hidden temporary; `adopt` continues in one a previous run left there (otherwise it is
   * deleted and the run starts fresh), and `abort({ keep: true })` leaves it for the next run.
   */
  resumable?: { adopt: boolean };
  /**
   * The run adds to a folder bitscale wrote (ONNX variants side by side): the folder's files are
   * hard-linked (or copied) into the staging folder, so the new folder is the old one plus what the
   * run writes there. Allowed without `force`, only over a folder bitscale wrote. A writer must
   * replace a carried file (unlink, then write), never write into it: see `replaceFile`.
   */
  update?: boolean;
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException)?.code;
}

function fsError(e: unknown, file: string, what: string, hint?: string): BitscaleError {
  if (e instanceof BitscaleError) return e;
  const code = errno(e);
  if (code === 'ENOENT') return new IoError('missing_file', `${what}: no such file or folder`, { file, hint });
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return new IoError('io', `${what}: permission denied`, { file, found: code, hint: hint ?? 'choose a folder you can write to' });
  if (code === 'ENOSPC' || code === 'EDQUOT') return new IoError('io', `${what}: no space left on the device`, { file, found: code, hint: 'free some space; nothing was written at the final path' });
  return new IoError('io', `${what}: ${(e as Error)?.message ?? String(e)}`, { file, found: code });
}

async function lstatOrNull(p: string) {
  try {
    return await lstat(p);
  } catch (e) {
    if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') return null;
    throw fsError(e, p, 'cannot inspect the output path');
  }
}

async function statOrNull(p: string) {
  try {
    return await stat(p);
  } catch {
    return null;
  }
}

/** Same file: same resolved path, or the same inode (hard link, symlink). */
export async function sameFile(a: string, b: string): Promise<boolean> {
  if (resolve(a) === resolve(b)) return true;
  const [sa, sb] = await Promise.all([statOrNull(a), statOrNull(b)]);
  return !!sa && !!sb && sa.dev === sb.dev && sa.ino === sb.ino;
}

/** Whether `inner` lies inside the folder `outer` (by path, and by real path through symlinks). */
async function inside(inner: string, outer: string): Promise<boolean> {
  const a = resolve(inner);
  const b = resolve(outer);
  if (a.startsWith(b + sep)) return true;
  try {
    const [ra, rb] = await Promise.all([realpath(a), realpath(b)]);
    return ra === rb || ra.startsWith(rb + sep);
  } catch {
    return false;
  }
}

/** Every file under `dir`, as paths relative to it (folders are not listed). */
async function walkFiles(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await walkFiles(dir, r)));
    else out.push(r);
  }
  return out.sort();
}

/**
 * Copies the tree at `from` into `to` by hard links (a copy where links fail, e.g. across devices):
 * the staging folder of an `update` run starts as the old folder.
 */
async function linkTree(from: string, to: string): Promise<void> {
  for (const rel of await walkFiles(from)) {
    const dst = join(to, rel);
    await mkdir(dirname(dst), { recursive: true });
    await link(join(from, rel), dst).catch(() => copyFile(join(from, rel), dst));
  }
}

/**
 * Writes `data` at `path` as a new file: an existing one (possibly a hard link into the live output,
 * see OutputOptions.update) is unlinked first, never written into.
 */
export async function replaceFile(path: string, data: string | Uint8Array): Promise<void> {
  await rm(path, { force: true });
  await writeFile(path, data);
}

interface Manifest {
  tool?: unknown;
  output?: { files?: unknown; sha256?: unknown };
  [k: string]: unknown;
}

async function readManifest(path: string): Promise<Manifest | null> {
  try {
    const j = JSON.parse(await readFile(path, 'utf8')) as Manifest;
    return j && typeof j === 'object' && j.tool === 'bitscale' ? j : null;
  } catch {
    return null;
  }
}

/** The files a bitscale manifest claims (relative to its folder): output.sha256 keys and output.files. */
function claimedFiles(m: Manifest): string[] {
  const out: string[] = [];
  const sha = m.output?.sha256;
  if (sha && typeof sha === 'object') out.push(...Object.keys(sha));
  const files = m.output?.files;
  if (Array.isArray(files)) for (const f of files) if (typeof f === 'string') out.push(f.replace(/\\/g, '/'));
  return out;
}

/**
 * Whether a folder may be replaced: it holds a bitscale manifest and nothing the manifest does not
 * list. `foreign` names what is not bitscale's (empty when replaceable).
 */
export async function folderOwnership(dir: string): Promise<{ manifest: boolean; foreign: string[] }> {
  const m = await readManifest(join(dir, MANIFEST_FILE));
  const files = await walkFiles(dir);
  if (!m) return { manifest: false, foreign: files };
  const claims = claimedFiles(m);
  // a manifest lists files as paths relative to the folder, or as paths that end in them
  // (older manifests wrote `<out>/model.safetensors`)
  const owned = (f: string) => f === MANIFEST_FILE || claims.some((c) => c === f || c.endsWith('/' + f));
  return { manifest: true, foreign: files.filter((f) => !owned(f)) };
}

const STAGE_RE = (base: string) => new RegExp(`^\\.${escapeRe(base)}\\.tmp-(?:(\\d+)-)?[0-9a-f]+$`);
const REPLACED = '.replaced';
const REPLACED_SIDECAR = (name: string) => `.replaced-sidecar-${name}`;

/**
 * Finishes or undoes the staging folders of dead runs on `parent/base` (call with the lock held):
 * before their commit point the old output is put back, after it the sidecars are moved into
 * place; then the folder is deleted. Returns what was removed.
 */
export async function recoverStaleStaging(parent: string, base: string): Promise<string[]> {
  const removed: string[] = [];
  const re = STAGE_RE(base);
  let names: string[];
  try {
    names = await readdir(parent);
  } catch {
    return removed;
  }
  const final = join(parent, base);
  for (const n of names) {
    const m = re.exec(n);
    if (!m) continue;
    if (m[1] !== undefined && processAlive(Number(m[1]))) continue;
    const root = join(parent, n);
    const st = await lstatOrNull(root);
    if (!st?.isDirectory()) continue;
    const entries = await readdir(root).catch(() => [] as string[]);
    const staged = entries.includes(base);
    if (staged) {
      // killed before the commit point: restore what was moved aside
      if (entries.includes(REPLACED) && !(await lstatOrNull(final))) await rename(join(root, REPLACED), final).catch(() => undefined);
      for (const e of entries) {
        if (!e.startsWith(REPLACED_SIDECAR(''))) continue;
        const to = join(parent, e.slice(REPLACED_SIDECAR('').length));
        if (!(await lstatOrNull(to))) await rename(join(root, e), to).catch(() => undefined);
      }
    } else {
      // after the commit point (or before anything was written): finish moving the sidecars
      for (const e of entries) {
        if (e.startsWith('.') || e === base) continue;
        await rename(join(root, e), join(parent, e)).catch(() => undefined);
      }
    }
    await rm(root, { recursive: true, force: true }).catch(() => undefined);
    removed.push(root);
  }
  return removed;
}

/**
 * A resumable run's `<name>.partial` folder as a killed run may have left it mid-commit: the
 * output moved aside goes back (before the commit point), a finished one is dropped (after it).
 */
async function recoverPartial(root: string, abs: string, base: string): Promise<void> {
  const st = await lstatOrNull(root);
  if (!st) return;
  if (!st.isDirectory()) throw new IoError('exists', 'the staging folder of a resumable run is a file', { file: root, hint: 'remove it or choose another --out' });
  if (!(await lstatOrNull(join(root, REPLACED)))) return;
  if (!(await lstatOrNull(join(root, base)))) await rm(root, { recursive: true, force: true });
  else if (!(await lstatOrNull(abs))) await rename(join(root, REPLACED), abs);
  else await rm(join(root, REPLACED), { recursive: true, force: true });
}

function labelOf(o: OutputOptions): string {
  return o.label ?? '--out';
}

/** The checks that do not depend on what is at the final path: not the working folder, a writable parent. */
async function checkPlace(path: string, o: OutputOptions): Promise<{ abs: string; parent: string; base: string }> {
  if (!path) throw new ConfigError('bad_option', 'the output path is empty', { field: labelOf(o) });
  const abs = resolve(path);
  const parent = dirname(abs);
  const base = basename(abs);
  const cwd = process.cwd();
  if (abs === parent || (o.kind === 'dir' && (abs === cwd || cwd.startsWith(abs + sep)))) {
    throw new ConfigError('bad_option', o.kind === 'dir' ? 'the output folder cannot be the current folder or one that contains it' : 'the output path is a folder', {
      field: labelOf(o),
      found: path,
      hint: `name a new ${o.kind === 'dir' ? 'folder' : 'file'}, e.g. ${labelOf(o)} ./${o.kind === 'dir' ? 'quantized' : 'model.gguf'}`,
    });
  }
  const ps = await statOrNull(parent);
  if (!ps) throw new IoError('missing_file', "the output's parent folder does not exist", { file: parent, field: labelOf(o), hint: `create it first (mkdir -p ${parent}) or choose another ${labelOf(o)}` });
  if (!ps.isDirectory()) throw new IoError('io', "the output's parent is not a folder", { file: parent, field: labelOf(o), hint: `choose another ${labelOf(o)}` });
  try {
    await access(parent, fsConstants.W_OK | fsConstants.X_OK);
  } catch (e) {
    throw fsError(e, parent, "cannot write in the output's folder");
  }
  return { abs, parent, base };
}

/**
 * Every refusal, before any work: see the file comment. Throws a typed error naming the path and
 * what to do; returns nothing when the output may be written.
 */
export async function checkOutput(path: string, o: OutputOptions): Promise<void> {
  const { abs, parent } = await checkPlace(path, o);
  const label = labelOf(o);
  const sidecars = (o.sidecars ?? []).map((s) => join(parent, s));
  for (const input of o.inputs ?? []) {
    if (!input) continue;
    for (const p of [abs, ...sidecars]) {
      if (await sameFile(p, input)) {
        throw new IoError('would_overwrite_input', 'the output would replace one of the inputs', { file: p, field: label, found: input, hint: `choose another ${label}` });
      }
    }
    if (await inside(input, abs)) {
      throw new IoError('would_overwrite_input', 'the output folder holds one of the inputs', { file: abs, field: label, found: input, hint: `choose another ${label}` });
    }
  }
  const st = await lstatOrNull(abs);
  const target = st?.isSymbolicLink() ? await statOrNull(abs) : st;
  if (st && o.kind === 'file') {
    if (target?.isDirectory()) throw new IoError('exists', 'the output path is a folder; a file output never replaces a folder', { file: path, field: label, hint: `choose a file name for ${label}` });
    if (!o.force) throw new IoError('exists', 'the output file already exists', { file: path, field: label, hint: 'pass --force to replace it' });
  }
  if (st && o.kind === 'dir') {
    if (!target?.isDirectory()) throw new IoError('exists', 'the output path is a file, not a folder', { file: path, field: label, hint: `choose a folder name for ${label}` });
    const entries = await readdir(abs).catch((e: unknown) => {
      throw fsError(e, abs, 'cannot list the output folder');
    });
    if (entries.length) {
      if (!o.force && !o.update) throw new IoError('exists', 'the output folder already exists', { file: path, field: label, hint: 'pass --force to replace a folder bitscale wrote' });
      const own = await folderOwnership(abs);
      if (!own.manifest) {
        throw new IoError('exists', `the output folder was not written by bitscale (it has no ${MANIFEST_FILE}); --force replaces only bitscale's own output`, {
          file: path,
          field: label,
          found: `${entries.length} entries, e.g. ${entries.slice(0, 3).join(', ')}`,
          hint: `remove it yourself or choose another ${label}`,
        });
      }
      if (own.foreign.length) {
        throw new IoError('exists', 'the output folder holds files bitscale did not write; --force never deletes them', {
          file: path,
          field: label,
          found: own.foreign.slice(0, 5).join(', ') + (own.foreign.length > 5 ? `, … (${own.foreign.length} in all)` : ''),
          hint: `move them out or choose another ${label}`,
        });
      }
    }
  }
  for (const s of sidecars) {
    const ss = await statOrNull(s);
    if (!ss) continue;
    if (ss.isDirectory()) throw new IoError('exists', 'a file the output writes beside it is a folder', { file: s, field: label, hint: `choose another ${label}` });
    // a manifest beside the output is replaced only when it is bitscale's (even with --force)
    if (s.endsWith('.manifest.json') ? !(await readManifest(s)) : !o.force) {
      throw new IoError('exists', 'a file the output writes beside it already exists', { file: s, field: label, hint: s.endsWith('.manifest.json') ? 'it is not a bitscale manifest: move it or choose another output name' : 'pass --force to replace it' });
    }
  }
}

interface LockToken {
  path: string;
  token: string;
}

async function acquireLock(parent: string, base: string, label: string, display: string): Promise<LockToken> {
  const path = join(parent, `.${base}.lock`);
  const token = `${process.pid} ${randomBytes(6).toString('hex')}`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, 'wx');
      try {
        await fh.writeFile(token + '\n');
      } finally {
        await fh.close();
      }
      return { path, token };
    } catch (e) {
      if (errno(e) !== 'EEXIST') throw fsError(e, path, 'cannot lock the output');
    }
    const held = (await readFile(path, 'utf8').catch(() => '')).trim();
    const pid = Number(held.split(' ')[0]);
    if (processAlive(pid)) {
      throw new IoError('locked', 'another bitscale run is writing this output', { file: display, field: label, found: `process ${pid} (lock ${path})`, hint: `wait for it to finish or choose another ${label}` });
    }
    // the owner died (killed): take the lock over
    await unlink(path).catch(() => undefined);
  }
  throw new IoError('locked', 'could not lock the output (another run took it)', { file: display, field: label, hint: 'try again' });
}

async function releaseLock(l: LockToken | null): Promise<void> {
  if (!l) return;
  const held = (await readFile(l.path, 'utf8').catch(() => '')).trim();
  if (held === l.token) await unlink(l.path).catch(() => undefined);
}

/** A staged output: write at `staged` (and sidecars at `stagedSidecar(name)`), verify, then commit. */
export class OutputTxn {
  private state: 'open' | 'committed' | 'aborted' = 'open';

  private constructor(
    /** the final path as the caller gave it */
    readonly final: string,
    readonly kind: OutputKind,
    private readonly abs: string,
    private readonly root: string,
    private readonly lock: LockToken | null,
    private readonly opts: OutputOptions,
  ) {}

  /** Checks (checkOutput), locks the output, recovers dead runs' staging, and opens a staging folder. */
  static async begin(path: string, opts: OutputOptions): Promise<OutputTxn> {
    const { abs, parent, base } = await checkPlace(path, opts);
    const lock = await acquireLock(parent, base, labelOf(opts), path);
    try {
      await recoverStaleStaging(parent, base);
      await removeStaleTempFiles(parent, base);
      const root = opts.resumable ? join(parent, `${base}.partial`) : join(parent, `.${base}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
      if (opts.resumable) await recoverPartial(root, abs, base);
      await checkOutput(path, opts);
      try {
        if (opts.resumable) {
          if (!opts.resumable.adopt) await rm(root, { recursive: true, force: true });
          await mkdir(join(root, base), { recursive: true });
        } else {
          await mkdir(root);
          if (opts.kind === 'dir') await mkdir(join(root, base));
          if (opts.kind === 'dir' && opts.update && (await statOrNull(abs))?.isDirectory()) await linkTree(abs, join(root, base));
        }
      } catch (e) {
        if (!opts.resumable) await rm(root, { recursive: true, force: true }).catch(() => undefined);
        throw fsError(e, root, 'cannot create the staging folder');
      }
      return new OutputTxn(path, opts.kind, abs, root, lock, opts);
    } catch (e) {
      await releaseLock(lock);
      throw e;
    }
  }

  /** Where the output is written before the commit (an empty folder for folder outputs). */
  get staged(): string {
    return join(this.root, basename(this.abs));
  }

  /** Where a sidecar (a file beside a file output) is written before the commit. */
  stagedSidecar(name: string): string {
    return join(this.root, name);
  }

  /** The final path of a staged path (paths outside the staging folder come back unchanged). */
  finalPath(p: string): string {
    const a = resolve(p);
    if (a === this.staged) return this.final;
    if (a.startsWith(this.staged + sep)) return join(this.final, relative(this.staged, a));
    if (a.startsWith(this.root + sep)) return join(dirname(this.final), relative(this.root, a));
    return p;
  }

  private async stagedFiles(): Promise<string[]> {
    return this.kind === 'dir' ? walkFiles(this.staged) : [basename(this.abs)];
  }

  /**
   * Puts sha256 digests of the staged output into its manifest (the folder's, or a
   * `*.manifest.json` sidecar), writing a minimal one for a folder that has none; rewrites
   * staged paths in `output.files` to final paths.
   */
  private async stampManifest(): Promise<void> {
    const parentOfFiles = this.kind === 'dir' ? this.staged : this.root;
    const files = (await this.stagedFiles()).filter((f) => f !== MANIFEST_FILE);
    const manifests = this.kind === 'dir' ? [join(this.staged, MANIFEST_FILE)] : (this.opts.sidecars ?? []).filter((s) => s.endsWith('.manifest.json')).map((s) => this.stagedSidecar(s));
    for (const mp of manifests) {
      const have = await statOrNull(mp);
      if (!have && this.kind === 'file') continue;
      const m: Manifest = have ? JSON.parse(await readFile(mp, 'utf8')) : { tool: 'bitscale', version: BITSCALE_VERSION, command: this.opts.command ?? null, output: {} };
      const sha: Record<string, string> = {};
      const extra = this.kind === 'file' ? (this.opts.sidecars ?? []).filter((s) => !s.endsWith('.manifest.json')) : [];
      for (const f of [...files, ...extra]) {
        const p = join(parentOfFiles, f);
        if (await statOrNull(p)) sha[f] = await sha256File(p);
      }
      const output = (m.output && typeof m.output === 'object' ? m.output : {}) as Record<string, unknown>;
      if (Array.isArray(output.files)) output.files = output.files.map((f) => (typeof f === 'string' ? this.finalPath(f) : f));
      else output.files = files;
      output.sha256 = sha;
      m.output = output;
      await replaceFile(mp, JSON.stringify(m, null, 2) + '\n');
    }
  }

  /** Moves the staged output (and sidecars) into place; see the file comment for the order. */
  async commit(): Promise<void> {
    if (this.state !== 'open') throw new IoError('io', `commit after ${this.state}`, { file: this.final });
    const parent = dirname(this.abs);
    const base = basename(this.abs);
    try {
      if (!(await lstatOrNull(this.staged))) throw new IoError('internal', 'nothing was written at the staging path', { file: this.staged });
      await this.stampManifest();
      if (this.lock && (await readFile(this.lock.path, 'utf8').catch(() => '')).trim() !== this.lock.token) {
        throw new IoError('locked', 'another run took over the output lock; nothing was replaced', { file: this.final });
      }
      // the checks again, now: something may have appeared at the final path during the run
      await checkOutput(this.final, this.opts);
      const sidecars = [...new Set([...(this.opts.sidecars ?? []), `${base}.manifest.json`])];
      let movedOld = false;
      if (await lstatOrNull(this.abs)) {
        await rename(this.abs, join(this.root, REPLACED));
        movedOld = true;
      }
      for (const s of sidecars) {
        const at = join(parent, s);
        const st = await lstatOrNull(at);
        // an old sidecar of this output (its manifest) would describe the replaced bytes
        if (st?.isFile() && ((this.opts.sidecars ?? []).includes(s) || (await readManifest(at)))) await rename(at, join(this.root, REPLACED_SIDECAR(s)));
      }
      try {
        await rename(this.staged, this.abs);
        await noteRenamed(this.staged, this.abs);
      } catch (e) {
        if (movedOld) await rename(join(this.root, REPLACED), this.abs).catch(() => undefined);
        throw e;
      }
      for (const s of this.opts.sidecars ?? []) {
        if (await lstatOrNull(this.stagedSidecar(s))) await rename(this.stagedSidecar(s), join(parent, s));
      }
      this.state = 'committed';
      await rm(this.root, { recursive: true, force: true }).catch(() => undefined);
    } catch (e) {
      if (this.state !== 'committed') await this.abort();
      throw fsError(e, this.final, 'cannot put the output in place');
    } finally {
      await releaseLock(this.lock);
    }
  }

  /**
   * Deletes the staging folder and releases the lock; safe to call more than once. `keep` (resumable
   * outputs only) leaves the staging folder for a later run to continue.
   */
  async abort(opts: { keep?: boolean } = {}): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    // an old output moved aside during a failed commit goes back
    const aside = join(this.root, REPLACED);
    if ((await lstatOrNull(aside)) && !(await lstatOrNull(this.abs))) await rename(aside, this.abs).catch(() => undefined);
    if (!(opts.keep && this.opts.resumable)) await rm(this.root, { recursive: true, force: true }).catch(() => undefined);
    await releaseLock(this.lock);
  }

  /** Whether a resumable output's staging folder was left by an earlier run (and adopted). */
  get stagingRoot(): string {
    return this.root;
  }
}

/** `OutputTxn.begin`, run `body` against it, commit on success, abort (and rethrow) on failure. */
export async function withOutput<T>(path: string, opts: OutputOptions, body: (txn: OutputTxn) => Promise<T>): Promise<T> {
  const txn = await OutputTxn.begin(path, opts);
  try {
    const r = await body(txn);
    await txn.commit();
    return r;
  } catch (e) {
    await txn.abort();
    throw e;
  }
}

/**
 * A folder a command fills over time and resumes in (sweep, demo, law experiment, law plot): it is
 * never replaced, only added to, each file atomically. Checked (a file there is an error, not a
 * crash), created with its parents, and locked (`.bitscale.lock` inside) so that two runs never
 * interleave their writes. Call `release()` when done.
 */
export async function openWorkspace(dir: string, opts: { label?: string } = {}): Promise<{ release(): Promise<void> }> {
  const label = opts.label ?? '--out';
  if (!dir) throw new ConfigError('bad_option', 'the output folder is empty', { field: label });
  const st = await statOrNull(dir);
  if (st && !st.isDirectory()) throw new IoError('exists', 'the output path is a file, not a folder', { file: dir, field: label, hint: `choose a folder for ${label}` });
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    throw fsError(e, dir, 'cannot create the output folder');
  }
  const lock = await acquireLock(resolve(dir), 'bitscale', label, dir);
  return { release: () => releaseLock(lock) };
}
