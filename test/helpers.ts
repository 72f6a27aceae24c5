// Shared test plumbing: the ../shared data folder (real model, goldens, text) and temporary folders.
// ../shared is not in the repository, so tests that need it skip without it; but with CI=true and
// ../shared present, a missing file is a failure (a renamed golden must not turn a test into a skip).
import { after } from 'node:test';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** ../shared, relative to the repository root (tests run from there) */
export const SHARED = resolve('..', 'shared');

/** A path under ../shared. */
export function sharedPath(...rel: string[]): string {
  return resolve(SHARED, ...rel);
}

/**
 * The skip reason for a test needing ../shared/<rel> (each given path), or false when all exist.
 * Without ../shared: a reason naming what is missing. With ../shared present but a file missing:
 * a reason as well, except under CI=true, where it throws (the test file fails to load).
 */
export function sharedSkip(...rel: string[]): string | false {
  return sharedSkipIn(SHARED, rel, process.env);
}

/** sharedSkip on a given root and environment (for its own test). */
export function sharedSkipIn(root: string, rel: readonly string[], env: Record<string, string | undefined>): string | false {
  const missing = rel.filter((r) => !existsSync(resolve(root, r)));
  if (!missing.length && existsSync(root)) return false;
  const what = missing.length ? missing.join(', ') : '.';
  if (!existsSync(root)) return `needs ../shared (${what})`;
  if (env.CI === 'true') throw new Error(`CI=true and ../shared is present, but ${missing.map((m) => `../shared/${m}`).join(', ')} is missing: a failure, not a skip`);
  return `../shared is present but lacks ${what}`;
}

/**
 * A fresh folder under the system temp dir, removed (with its contents) after the current test
 * (or, called outside a test, after the file's last test).
 */
export function tempDir(prefix = 'bitscale-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs `fn` with a fresh temp folder and removes the folder when `fn` settles, result or error. */
export async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T> | T): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
